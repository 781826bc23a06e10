-- ARGV: prefix, queue, now, error (recorded as the stalled attempt's error).
-- A flat list: id, new state ('waiting' or 'dead'), for each job whose lease ended before now.
local queue, now, reason = ARGV[2], ARGV[3], ARGV[4]
local active = queue_key(queue, 'active')
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', active, '-inf', '(' .. now)) do
  local key = job_key(id)
  local job = redis.call('HMGET', key, 'attempts', 'max_attempts', 'priority', 'member', 'created_at')
  redis.call('ZREM', active, id)
  redis.call('HDEL', key, 'token')
  redis.call('HSET', key, 'last_error', reason)
  if tonumber(job[1]) < tonumber(job[2]) then
    redis.call('HSET', key, 'state', 'waiting', 'run_at', now)
    redis.call('ZADD', wait_key(queue, job[3]), now, job[4])
    table.insert(out, id)
    table.insert(out, 'waiting')
  else
    redis.call('HSET', key, 'state', 'dead')
    redis.call('ZADD', queue_key(queue, 'dead'), job[5], job[4])
    table.insert(out, id)
    table.insert(out, 'dead')
  end
end
return out

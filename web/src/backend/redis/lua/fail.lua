-- ARGV: prefix, id, token, error, retry_at ('' for none: the job dies).
-- 1 if the lease was token's, else 0.
local id, token, reason, retry_at = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not leased(id, token) then
  return 0
end
local key = job_key(id)
local job = redis.call('HMGET', key, 'queue', 'priority', 'member', 'created_at')
local queue, priority, member, created_at = job[1], job[2], job[3], job[4]
redis.call('ZREM', queue_key(queue, 'active'), id)
redis.call('HDEL', key, 'token')
redis.call('HSET', key, 'last_error', reason)
if retry_at ~= '' then
  redis.call('HSET', key, 'state', 'waiting', 'run_at', retry_at)
  redis.call('ZADD', wait_key(queue, priority), retry_at, member)
else
  redis.call('HSET', key, 'state', 'dead')
  redis.call('ZADD', queue_key(queue, 'dead'), created_at, member)
end
return 1

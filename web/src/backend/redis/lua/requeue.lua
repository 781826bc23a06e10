-- ARGV: prefix, id, now. 1 if a dead job had this id and waits again, else 0.
local id, now = ARGV[2], ARGV[3]
local key = job_key(id)
local job = redis.call('HMGET', key, 'state', 'queue', 'priority', 'member')
if job[1] ~= 'dead' then
  return 0
end
local queue, priority, member = job[2], job[3], job[4]
redis.call('ZREM', queue_key(queue, 'dead'), member)
redis.call('HSET', key, 'state', 'waiting', 'run_at', now, 'attempts', 0)
redis.call('ZADD', wait_key(queue, priority), now, member)
return 1

-- ARGV: prefix, queue, now, lease_until, token.
-- The reserved job's fields, or nil when no job of the queue is due.
local queue, now, lease_until, token = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
for priority = 0, 2 do
  local wait = wait_key(queue, priority)
  local member = redis.call('ZRANGEBYSCORE', wait, '-inf', now, 'LIMIT', 0, 1)[1]
  if member then
    redis.call('ZREM', wait, member)
    local id = id_of_member(member)
    local key = job_key(id)
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'state', 'active', 'run_at', lease_until, 'token', token)
    redis.call('ZADD', queue_key(queue, 'active'), lease_until, id)
    return job_fields(id)
  end
end
return false

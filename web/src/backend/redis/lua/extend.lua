-- ARGV: prefix, id, token, lease_until. 1 if the lease is token's and was moved, else 0.
local id, token, lease_until = ARGV[2], ARGV[3], ARGV[4]
if not leased(id, token) then
  return 0
end
local key = job_key(id)
redis.call('HSET', key, 'run_at', lease_until)
redis.call('ZADD', queue_key(redis.call('HGET', key, 'queue'), 'active'), lease_until, id)
return 1

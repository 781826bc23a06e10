-- ARGV: prefix, id, token. 1 if the lease was token's and the job is removed, else 0.
local id, token = ARGV[2], ARGV[3]
if not leased(id, token) then
  return 0
end
local key = job_key(id)
redis.call('ZREM', queue_key(redis.call('HGET', key, 'queue'), 'active'), id)
redis.call('DEL', key)
return 1

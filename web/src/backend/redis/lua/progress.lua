-- ARGV: prefix, id, token, percent, message. 1 if the lease was token's, else 0.
local id, token = ARGV[2], ARGV[3]
if not leased(id, token) then
  return 0
end
redis.call('HSET', job_key(id), 'progress_percent', ARGV[4], 'progress_message', ARGV[5])
return 1

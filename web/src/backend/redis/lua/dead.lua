-- ARGV: prefix, queue, limit (at least 1). The fields of the first `limit` dead jobs, oldest
-- (by time added, then order added) first.
local queue, limit = ARGV[2], tonumber(ARGV[3])
local out = {}
for _, member in ipairs(redis.call('ZRANGE', queue_key(queue, 'dead'), 0, limit - 1)) do
  table.insert(out, job_fields(id_of_member(member)))
end
return out

-- ARGV: prefix, queue, limit (at least 1). The fields of the first `limit` dead jobs, in
-- the order they died.
local queue, limit = ARGV[2], tonumber(ARGV[3])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', queue_key(queue, 'dead'), 0, limit - 1)) do
  table.insert(out, job_fields(id))
end
return out

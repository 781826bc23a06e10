-- ARGV: prefix, id. The job's fields, or nil if no job has this id.
local id = ARGV[2]
if redis.call('EXISTS', job_key(id)) == 0 then
  return false
end
return job_fields(id)

-- ARGV: prefix, id, queue, name, data, priority, run_at, now, max_attempts, backoff.
-- 1 if added, 0 if a job with this id is stored.
local id, queue, priority, run_at = ARGV[2], ARGV[3], ARGV[6], ARGV[7]
local key = job_key(id)
if redis.call('EXISTS', key) == 1 then
  return 0
end
local member = string.format('%0' .. SEQ_DIGITS .. 'd', next_seq()) .. id
redis.call('HSET', key,
  'queue', queue, 'name', ARGV[4], 'data', ARGV[5], 'priority', priority,
  'state', 'waiting', 'run_at', run_at, 'created_at', ARGV[8], 'attempts', 0,
  'max_attempts', ARGV[9], 'backoff', ARGV[10], 'member', member)
redis.call('ZADD', wait_key(queue, priority), run_at, member)
return 1

-- Prepended to every script. ARGV[1] is the key prefix; the keys a script touches are built
-- from it (one Redis server, not a cluster: see the module docs).
local prefix = ARGV[1]

-- A job's hash.
local function job_key(id)
  return prefix .. ':job:' .. id
end

-- One of a queue's sorted sets: 'active' (ids by lease end), 'dead' (members by time added)
-- or 'wait:<priority>' (members by due time). Members are described below.
local function queue_key(queue, part)
  return prefix .. ':q:' .. queue .. ':' .. part
end

local function wait_key(queue, priority)
  return queue_key(queue, 'wait:' .. priority)
end

-- A counter that orders jobs as they are added.
local function next_seq()
  return redis.call('INCR', prefix .. ':seq')
end

-- Members of the waiting and dead sets are a 16-digit sequence number then the id, so that
-- jobs with the same score come out in the order they were added (ties sort by member).
-- A job keeps its member (hash field 'member') for life.
local SEQ_DIGITS = 16
local function id_of_member(member)
  return string.sub(member, SEQ_DIGITS + 1)
end

-- The fields of a job record, in the order record.rs reads them (after the id).
local FIELDS = {
  'queue', 'name', 'data', 'priority', 'state', 'run_at', 'created_at', 'attempts',
  'max_attempts', 'backoff', 'progress_percent', 'progress_message', 'last_error',
}

local function job_fields(id)
  local values = redis.call('HMGET', job_key(id), unpack(FIELDS))
  table.insert(values, 1, id)
  return values
end

-- Whether the job is active under the lease `token`.
local function leased(id, token)
  local held = redis.call('HMGET', job_key(id), 'state', 'token')
  return held[1] == 'active' and held[2] == token
end

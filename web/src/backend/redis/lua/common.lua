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

-- Leases the waiting `member` of set `wait` (queue `queue`) to `token` until `lease_until`,
-- counting the attempt. The job's fields.
local function lease_member(queue, wait, member, lease_until, token)
  redis.call('ZREM', wait, member)
  local id = id_of_member(member)
  local key = job_key(id)
  redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('HSET', key, 'state', 'active', 'run_at', lease_until, 'token', token)
  redis.call('ZADD', queue_key(queue, 'active'), lease_until, id)
  return job_fields(id)
end

-- Reserves the next job of `queue` due by `now` (urgent first, then by due time, then order
-- added) under `token`. Its fields, or nil when none is due.
local function reserve_next(queue, now, lease_until, token)
  for priority = 0, 2 do
    local wait = wait_key(queue, priority)
    local member = redis.call('ZRANGEBYSCORE', wait, '-inf', now, 'LIMIT', 0, 1)[1]
    if member then
      return lease_member(queue, wait, member, lease_until, token)
    end
  end
  return nil
end

-- Removes the job if its lease is `token`'s: 1 if so, else 0.
local function complete_job(id, token)
  if not leased(id, token) then
    return 0
  end
  local key = job_key(id)
  redis.call('ZREM', queue_key(redis.call('HGET', key, 'queue'), 'active'), id)
  redis.call('DEL', key)
  return 1
end

-- Records a failed attempt if the lease is `token`'s: the job waits until `retry_at`, or, if
-- that is '', goes to the dead-letter set. 1 if the lease was token's, else 0.
local function fail_job(id, token, reason, retry_at)
  if not leased(id, token) then
    return 0
  end
  local key = job_key(id)
  local job = redis.call('HMGET', key, 'queue', 'priority', 'member', 'created_at')
  local queue, priority, member, created_at = job[1], job[2], job[3], job[4]
  redis.call('ZREM', queue_key(queue, 'active'), id)
  redis.call('HDEL', key, 'token')
  redis.call('HSET', key, 'last_error', reason)
  if retry_at ~= '' then
    redis.call('HSET', key, 'state', 'waiting', 'run_at', retry_at)
    redis.call('ZADD', wait_key(queue, priority), retry_at, member)
  else
    redis.call('HSET', key, 'state', 'dead')
    redis.call('ZADD', queue_key(queue, 'dead'), created_at, member)
  end
  return 1
end

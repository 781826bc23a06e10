-- ARGV: prefix, queue, now, lease_until, token.
-- The reserved job's fields, or nil when no job of the queue is due.
return reserve_next(ARGV[2], ARGV[3], ARGV[4], ARGV[5]) or false

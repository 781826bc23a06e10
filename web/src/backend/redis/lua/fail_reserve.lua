-- ARGV: prefix, id, token, error, retry_at ('' for none), queue, now, lease_until, next_token.
-- Fails the attempt (as fail.lua), then reserves the next due job of the queue under
-- next_token (as reserve.lua): {1 or 0, the reserved job's fields or nil}.
local failed = fail_job(ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return { failed, reserve_next(ARGV[6], ARGV[7], ARGV[8], ARGV[9]) or false }

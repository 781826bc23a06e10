-- ARGV: prefix, id, token, queue, now, lease_until, next_token.
-- Completes the job (as complete.lua), then reserves the next due job of the queue under
-- next_token (as reserve.lua): {1 or 0, the reserved job's fields or nil}.
local completed = complete_job(ARGV[2], ARGV[3])
return { completed, reserve_next(ARGV[4], ARGV[5], ARGV[6], ARGV[7]) or false }

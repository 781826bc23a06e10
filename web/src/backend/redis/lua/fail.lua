-- ARGV: prefix, id, token, error, retry_at ('' for none: the job dies).
-- 1 if the lease was token's, else 0.
return fail_job(ARGV[2], ARGV[3], ARGV[4], ARGV[5])

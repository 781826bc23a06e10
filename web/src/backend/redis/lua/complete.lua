-- ARGV: prefix, id, token. 1 if the lease was token's and the job is removed, else 0.
return complete_job(ARGV[2], ARGV[3])

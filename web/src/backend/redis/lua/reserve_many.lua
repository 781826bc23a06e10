-- ARGV: prefix, queue, now, lease_until, then one token per job wanted (at least one).
-- The fields of each job reserved, in the order reserve.lua would hand them out, the i-th
-- under the i-th token; empty when none is due.
local queue, now, lease_until = ARGV[2], ARGV[3], ARGV[4]
local max = #ARGV - 4
local out = {}
for priority = 0, 2 do
  local wanted = max - #out
  if wanted == 0 then
    break
  end
  local wait = wait_key(queue, priority)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', wait, '-inf', now, 'LIMIT', 0, wanted)) do
    table.insert(out, lease_member(queue, wait, member, lease_until, ARGV[5 + #out]))
  end
end
return out

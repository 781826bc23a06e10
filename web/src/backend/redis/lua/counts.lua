-- ARGV: prefix, queue, now. {waiting (due), delayed, active, dead}.
local queue, now = ARGV[2], ARGV[3]
local waiting, delayed = 0, 0
for priority = 0, 2 do
  local wait = wait_key(queue, priority)
  waiting = waiting + redis.call('ZCOUNT', wait, '-inf', now)
  delayed = delayed + redis.call('ZCOUNT', wait, '(' .. now, '+inf')
end
return {
  waiting, delayed,
  redis.call('ZCARD', queue_key(queue, 'active')),
  redis.call('ZCARD', queue_key(queue, 'dead')),
}

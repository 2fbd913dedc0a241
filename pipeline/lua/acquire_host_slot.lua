-- Take a politeness slot for one request to a host, or say how long to wait. Redis's clock is
-- the only clock, so workers on machines with skewed clocks still share one schedule. A slot is
-- a lease: a worker that dies mid-request frees it when the lease ends.
-- KEYS[1]=host_slots  KEYS[2]=host_next_start  ARGV: token, max in flight, gap ms, lease ms
-- Returns 0 (taken) or the milliseconds to wait before asking again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.min(250, tonumber(first[2]) - now))
end
local next_start = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < next_start then return next_start - now end
local gap, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
if gap > 0 then redis.call('SET', KEYS[2], now + gap, 'PX', gap) end
return 0

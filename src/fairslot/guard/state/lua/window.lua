-- What is left of one moving-window limit, for the refusal headers. KEYS[1] is the list
-- admit.lua keeps (newest entry first). ARGV: now (the guard's clock), limit, window in
-- seconds. Returns {entries inside the window, the oldest of them as a string, or "" when
-- there are none}.
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local horizon = now - window
-- Entries are in time order, newest first: find the last one still inside the window.
local low, high, last = 0, limit - 1, -1
while low <= high do
    local mid = math.floor((low + high) / 2)
    local value = tonumber(redis.call('lindex', KEYS[1], mid))
    if value and value > horizon then
        last = mid
        low = mid + 1
    else
        high = mid - 1
    end
end
if last < 0 then
    return {0, ''}
end
return {last + 1, redis.call('lindex', KEYS[1], last)}

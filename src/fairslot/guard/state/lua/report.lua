-- The browsing counters' report (fairslot.guard.local_windows), one call per batch of keys:
-- store this worker's count of each key and answer the sum of the other workers' counts.
--
-- KEYS[i]: one hash per limit and key, one field per worker, holding "count,time".
-- ARGV[1]: this worker's name. ARGV[2]: the age in seconds past which a report is stale
-- (its worker stopped or lost Redis): dropped, not summed; a report is never trusted for
-- longer than the key's window either. ARGV[3]: now, on the guard's clock (the workers'
-- clocks must agree, as they must for the moving windows admit.lua stamps).
-- ARGV[3 + i]: "count,window in ms" for KEYS[i].
local out = {}
local worker = ARGV[1]
local max_age = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
for i = 1, #KEYS do
    local count, window = string.match(ARGV[i + 3], "^(%d+),(%d+)$")
    local stale = now - math.min(max_age, tonumber(window) / 1000)
    redis.call('hset', KEYS[i], worker, count .. ',' .. string.format('%.6f', now))
    redis.call('pexpire', KEYS[i], tonumber(window))
    local fields = redis.call('hgetall', KEYS[i])
    local others = 0
    for f = 1, #fields, 2 do
        if fields[f] ~= worker then
            local n, at = string.match(fields[f + 1], "^(%d+),([%d.]+)$")
            if n and tonumber(at) >= stale then
                others = others + tonumber(n)
            else
                redis.call('hdel', KEYS[i], fields[f])
            end
        end
    end
    out[i] = others
end
return out

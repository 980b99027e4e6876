-- Admission of every request that asked in the same turn of a worker's event loop, in one
-- call (fairslot.guard.state.batch). For each request in turn, exactly as if each had been
-- a call of its own:
--   1. every moving-window limit is tested and, only if all have room, consumed: the rule
--      and list layout of the `limits` library's moving window (a list per key, newest entry
--      first, one entry per unit of cost, trimmed to the limit), so window.lua reads the same
--      lists for the refusal headers;
--   2. if the request was admitted and names one, the device's set of accounts gets the
--      account and its size is returned;
--   3. if the request was admitted and asks for it, the account's one-at-a-time slot is
--      taken, unless another request holds it and its hold has not run out;
--   4. if the request was admitted, holds its slot and names one, its action token is
--      spent (the ledger's key, set if absent; the same spender asking again is a retry).
--
-- KEYS: each request's keys in turn: its n limit lists, then its device set if it adds a
--       member, then its slot key if it takes one, then its spent-token key if it spends.
-- ARGV[1]: now, seconds since the epoch on the guard's clock (every entry is stamped with
--          it; Redis's own clock is never read, so the simulator's virtual time works).
-- ARGV[1 + j], request j, as one string:
--       "n|limit,window,cost;...|member|set ttl|owner|slot ttl in ms|spender|spend ttl in ms"
--       with member, owner and spender empty when not asked for.
-- Returns per request {first refused limit (1-based) or 0, set size or -1, 1 if busy,
--                      1 if spent by this spender, 0 if spent before, -1 if not asked}.
local now = tonumber(ARGV[1])
local out = {}
local k = 0
for j = 2, #ARGV do
    local n, spec, member, set_ttl, owner, slot_ttl, spender, spend_ttl = string.match(
        ARGV[j], "^(%d+)|([^|]*)|([^|]*)|(%d*)|([^|]*)|(%d*)|([^|]*)|(%d*)$")
    n = tonumber(n)
    local limits = {}
    for limit, window, cost in string.gmatch(spec, "(%d+),(%d+),(%d+);") do
        limits[#limits + 1] = {tonumber(limit), tonumber(window), tonumber(cost)}
    end
    local refused = 0
    for i = 1, n do
        local limit, window, cost = limits[i][1], limits[i][2], limits[i][3]
        if cost > limit then
            refused = i
            break
        end
        -- The entry that would be pushed out of the first `limit` by this request's cost:
        -- still inside the window means no room.
        local entry = redis.call('lindex', KEYS[k + i], limit - cost)
        if entry and tonumber(entry) > now - window then
            refused = i
            break
        end
    end
    if refused == 0 then
        for i = 1, n do
            local limit, window, cost = limits[i][1], limits[i][2], limits[i][3]
            for _ = 1, cost do
                redis.call('lpush', KEYS[k + i], ARGV[1])
            end
            redis.call('ltrim', KEYS[k + i], 0, limit - 1)
            redis.call('expire', KEYS[k + i], window)
        end
    end
    k = k + n
    local size, busy = -1, 0
    if member ~= '' then
        k = k + 1
        if refused == 0 then
            redis.call('sadd', KEYS[k], member)
            size = redis.call('scard', KEYS[k])
            redis.call('expire', KEYS[k], tonumber(set_ttl))
        end
    end
    if owner ~= '' then
        k = k + 1
        if refused == 0 then
            -- A slot holds "owner|until"; an expired hold is judged on the guard's clock,
            -- and Redis's own expiry (PX) only collects the key later.
            local held = redis.call('get', KEYS[k])
            local held_until = held and tonumber(string.match(held, "|([%d.]+)$"))
            -- The same owner asking again is a retry of a call that timed out: it holds it.
            if held_until and held_until > now
                    and string.sub(held, 1, #owner + 1) ~= owner .. '|' then
                busy = 1
            else
                local ttl = tonumber(slot_ttl)
                redis.call('set', KEYS[k], owner .. '|' .. string.format('%.3f', now + ttl / 1000),
                           'PX', ttl)
            end
        end
    end
    local spent = -1
    if spender ~= '' then
        k = k + 1
        if refused == 0 and busy == 0 then
            local before = redis.call('set', KEYS[k], spender, 'NX', 'GET', 'PX',
                                      tonumber(spend_ttl))
            spent = (not before or before == spender) and 1 or 0
        end
    end
    out[#out + 1] = {refused, size, busy, spent}
end
return out

-- One more failed log-in for a scope (fairslot.guard.login), atomically: concurrent
-- failures each count. KEYS[1]: the scope's hash {n = failures, at = latest failure}.
-- ARGV[1]: now (the guard's clock), ARGV[2]: seconds after the latest failure when the
-- count is forgotten (judged on the guard's clock; the key's EXPIRE only collects it).
local now, memory = tonumber(ARGV[1]), tonumber(ARGV[2])
local at = tonumber(redis.call('hget', KEYS[1], 'at') or '0')
if now - at > memory then
    redis.call('hset', KEYS[1], 'n', 0)
end
redis.call('hincrby', KEYS[1], 'n', 1)
redis.call('hset', KEYS[1], 'at', ARGV[1])
redis.call('expire', KEYS[1], math.ceil(memory))
return 1

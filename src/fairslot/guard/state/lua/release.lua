-- Release a batch of one-at-a-time slots: KEYS[j] is released only if ARGV[1 + j] (its
-- owner) still holds it, so a request that outlived its hold cannot free the hold of a
-- later request. ARGV[1] is the batch's time and is not needed here.
for j = 1, #KEYS do
    local held = redis.call('get', KEYS[j])
    local owner = ARGV[j + 1]
    if held and string.sub(held, 1, #owner + 1) == owner .. '|' then
        redis.call('del', KEYS[j])
    end
end
return {}

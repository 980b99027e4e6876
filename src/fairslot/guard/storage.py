"""Where the guard keeps its counters and short-lived state: Redis, or this process.

Two implementations of the same small set of operations (rate-limit hits, spend-once sets,
per-device account sets, one-at-a-time slots, guard levels): one on Redis, shared by all
workers; one in process memory, for the embedded deployment and as the fallback when Redis
is unreachable. ``SharedState`` chooses between them per call. On a Redis error it logs one
warning, answers from memory, and tries Redis again after a back-off (doubling from
``guard_redis_retry_seconds`` up to a minute); on the first success it logs the recovery.
Memory state is not copied back to Redis: while Redis is down each worker counts alone.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import limits
import limits.aio.storage
import limits.aio.strategies
import limits.storage
import limits.strategies
import redis.asyncio
import redis.exceptions

__all__ = ["Admission", "MemoryState", "SharedState", "WindowHit"]

_log = logging.getLogger("fairslot.guard")

T = TypeVar("T")

_MAX_BACKOFF = 60.0

# Compare-and-delete, for a batch of slots (KEYS[j], owner ARGV[1 + j]; ARGV[1] unused): a
# slot is released only by the request that holds it, so a request that outlived its slot's
# expiry cannot free a later request's slot.
_RELEASE = """
for j = 1, #KEYS do
    if redis.call('get', KEYS[j]) == ARGV[j + 1] then redis.call('del', KEYS[j]) end
end
return {}
"""


# The admission of every request that asked in the same turn of the event loop, in one call:
# for each request, every moving-window limit is tested and, only if all have room,
# consumed -- the algorithm and list layout of `limits`' own moving-window script
# (acquire_moving_window.lua), applied to several keys at once, so that `limits` reads the
# same keys (window stats for the headers). Then the device's account set and, if asked,
# the account's one-at-a-time slot. Requests are handled in order, exactly as if each had
# been a call of its own; one call per batch saves the client most of its encoding work
# and Redis most of its per-command overhead.
#
# KEYS: each request's keys in turn: its n limit lists, then its device set if it adds a
# member, then its slot key if it takes one.
# ARGV[1]: now. ARGV[1 + j], request j, one string (every argument costs the client time
# to encode): "n|limit,expiry,amount;...|member|set ttl|owner|slot ttl in ms", with member
# and owner empty when not asked for.
# Returns, per request, {refused list index (1-based) or 0, set size or -1, 1 if the slot
# is busy else 0}.
_ADMIT = """
local now = tonumber(ARGV[1])
local out = {}
local k = 0
for j = 2, #ARGV do
    local n, spec, member, set_ttl, owner, slot_ttl =
        string.match(ARGV[j], "^(%d+)|([^|]*)|([^|]*)|(%d*)|([^|]*)|(%d*)$")
    n = tonumber(n)
    local specs = {}
    for limit, expiry, amount in string.gmatch(spec, "(%d+),(%d+),(%d+);") do
        specs[#specs + 1] = {tonumber(limit), tonumber(expiry), tonumber(amount)}
    end
    local refused = 0
    for i = 1, n do
        local limit, amount = specs[i][1], specs[i][3]
        if amount > limit then refused = i break end
        local entry = redis.call('lindex', KEYS[k + i], limit - amount)
        if entry and tonumber(entry) >= now - specs[i][2] then refused = i break end
    end
    local size, busy = -1, 0
    if refused == 0 then
        for i = 1, n do
            local limit, expiry, amount = specs[i][1], specs[i][2], specs[i][3]
            for _ = 1, amount do redis.call('lpush', KEYS[k + i], ARGV[1]) end
            redis.call('ltrim', KEYS[k + i], 0, limit - 1)
            redis.call('expire', KEYS[k + i], expiry)
        end
    end
    k = k + n
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
        if refused == 0 and not redis.call('set', KEYS[k], owner, 'NX', 'PX',
                                           tonumber(slot_ttl)) then
            busy = 1
        end
    end
    out[#out + 1] = {refused, size, busy}
end
return out
"""

@functools.lru_cache(maxsize=16)
def _digest(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


# Callers per script call: bounds how long one call keeps Redis busy.
_SCRIPT_BATCH = 128


class _ScriptBatch:
    """Calls of one Lua script made in the same turn of the event loop, sent to Redis as one
    call. A round trip and a command cost the worker far more than a script's arguments
    do, so under load this is the guard's main saving. The script receives every caller's
    keys one after the other in KEYS, the time in ARGV[1] and caller j's one argument in
    ARGV[1 + j], and returns one reply per caller (or none at all)."""

    def __init__(self, run: Callable[[str, list[str], list[str]], Awaitable[Any]],
                 script: str) -> None:
        self._run = run
        self._script = script
        self._pending: list[tuple[list[str], str, asyncio.Future[Any]]] = []
        self._flushes: set[asyncio.Future[None]] = set()

    async def call(self, keys: list[str], arg: str) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, arg, future))
        if len(self._pending) == 1:
            loop.call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), _SCRIPT_BATCH):
            task = asyncio.ensure_future(self._flush(pending[start:start + _SCRIPT_BATCH]))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[list[str], str, asyncio.Future[Any]]]) -> None:
        keys = [key for caller_keys, _, _ in batch for key in caller_keys]
        args = [repr(time.time()), *(arg for _, arg, _ in batch)]
        try:
            replies = await self._run(self._script, keys, args)
        except BaseException as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        replies = replies or [None] * len(batch)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if not future.done():
                future.set_result(reply)


class Admission:
    """The outcome of ``SharedState.admit``."""

    __slots__ = ("busy", "device_accounts", "on_redis", "refused")

    def __init__(self, refused: int | None, device_accounts: int | None, busy: bool,
                 on_redis: bool) -> None:
        self.refused = refused
        """Index of the first limit without room (nothing was consumed), or None."""
        self.device_accounts = device_accounts
        self.busy = busy
        """The one-at-a-time slot was asked for and is held by another request."""
        self.on_redis = on_redis


class WindowHit:
    """The answer to one rate-limit hit: allowed or not, and the window for headers."""

    __slots__ = ("allowed", "remaining", "reset_at")

    def __init__(self, allowed: bool, remaining: int = 0, reset_at: float = 0.0) -> None:
        self.allowed = allowed
        self.remaining = remaining
        self.reset_at = reset_at


class MemoryState:
    """Per-process state. Expired entries are dropped lazily and by a periodic sweep."""

    def __init__(self) -> None:
        self._limits_storage = limits.storage.MemoryStorage()
        self._limiter = limits.strategies.MovingWindowRateLimiter(self._limits_storage)
        self._spent: dict[str, float] = {}
        self._sets: dict[str, tuple[set[str], float]] = {}
        self._slots: dict[str, tuple[str, float]] = {}
        self.levels: dict[str, str] = {}
        self._next_sweep = 0.0

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + 10.0
        self._spent = {k: exp for k, exp in self._spent.items() if exp > now}
        self._sets = {k: v for k, v in self._sets.items() if v[1] > now}
        self._slots = {k: v for k, v in self._slots.items() if v[1] > now}

    def hit(self, item: limits.RateLimitItem, key: str, cost: int) -> bool:
        return bool(self._limiter.hit(item, key, cost=cost))

    def admit(
        self,
        hits: list[tuple[limits.RateLimitItem, str, int]],
        member: tuple[str, str, float] | None,
        slot: tuple[str, str, float] | None,
    ) -> Admission:
        for index, (item, key, cost) in enumerate(hits):
            if not self._limiter.test(item, key, cost=cost):
                return Admission(index, None, False, False)
        for item, key, cost in hits:
            self._limiter.hit(item, key, cost=cost)
        size = self.add_member(*member) if member is not None else None
        busy = slot is not None and not self.acquire(*slot)
        return Admission(None, size, busy, False)

    def window(self, item: limits.RateLimitItem, key: str) -> WindowHit:
        stats = self._limiter.get_window_stats(item, key)
        return WindowHit(False, int(stats.remaining), float(stats.reset_time))

    def spend(self, key: str, ttl: float) -> bool:
        now = time.time()
        self._sweep(now)
        expires = self._spent.get(key)
        if expires is not None and expires > now:
            return False
        self._spent[key] = now + ttl
        return True

    def add_member(self, key: str, member: str, ttl: float) -> int:
        now = time.time()
        self._sweep(now)
        members, expires = self._sets.get(key, (set(), 0.0))
        if expires <= now:
            members = set()
        members.add(member)
        self._sets[key] = (members, now + ttl)
        return len(members)

    def acquire(self, key: str, owner: str, ttl: float) -> bool:
        now = time.time()
        held = self._slots.get(key)
        if held is not None and held[1] > now:
            return False
        self._slots[key] = (owner, now + ttl)
        return True

    def release(self, key: str, owner: str) -> None:
        held = self._slots.get(key)
        if held is not None and held[0] == owner:
            del self._slots[key]


class SharedState:
    """Redis when configured and reachable, this process's memory otherwise."""

    def __init__(self, redis_url: str | None, prefix: str, retry_seconds: float) -> None:
        self.prefix = prefix
        self.memory = MemoryState()
        self._retry_base = retry_seconds
        self._backoff = retry_seconds
        self._down_until = 0.0
        self._down = False
        self.client: redis.asyncio.Redis[bytes] | None = None
        self._limiter: limits.aio.strategies.MovingWindowRateLimiter | None = None
        self._release: _ScriptBatch | None = None
        self._admit: _ScriptBatch | None = None
        self._suffixes: dict[int, tuple[str, str]] = {}
        if redis_url:
            # Short timeouts: a hung Redis must cost a request milliseconds, not seconds,
            # before the guard falls back to memory.
            # A blocking pool waits for a free connection instead of failing a burst.
            pool: redis.asyncio.ConnectionPool[Any] = (
                redis.asyncio.BlockingConnectionPool.from_url(
                    redis_url,
                    socket_connect_timeout=0.25,
                    socket_timeout=0.5,
                    max_connections=64,
                    timeout=0.5,
                )
            )
            self.client = redis.asyncio.Redis(connection_pool=pool)
            pool_option: dict[str, Any] = {"connection_pool": pool}
            storage = limits.aio.storage.RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=prefix + "limits",
                # One pool for the limiter and our own commands: fewer sockets, and
                # one place where the short timeouts above apply.
                **pool_option,
            )
            self._limiter = limits.aio.strategies.MovingWindowRateLimiter(storage)
            self._admit = _ScriptBatch(self.run_script, _ADMIT)
            self._release = _ScriptBatch(self.run_script, _RELEASE)

    # -- health ---------------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        return self.client is not None

    @property
    def degraded(self) -> bool:
        """True while Redis is configured but answering from memory."""
        return self.client is not None and self._down

    def use_redis(self) -> bool:
        return self.client is not None and (not self._down or time.monotonic() >= self._down_until)

    def failed(self, exc: BaseException) -> None:
        if not self._down:
            # Exception class only: messages can carry the URL and so the password.
            _log.warning(
                "Redis unreachable (%s); guard falls back to per-process limits",
                type(exc).__name__,
            )
            self._backoff = self._retry_base
        else:
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
        self._down = True
        self._down_until = time.monotonic() + self._backoff

    def succeeded(self) -> None:
        if self._down:
            self._down = False
            _log.warning("Redis reachable again; guard limits are shared across workers")

    async def _run(self, on_redis: Callable[[], Awaitable[T]], in_memory: Callable[[], T]) -> T:
        if self.use_redis():
            try:
                result = await on_redis()
            except (TimeoutError, redis.exceptions.RedisError, OSError) as exc:
                self.failed(exc)
            else:
                self.succeeded()
                return result
        return in_memory()

    async def run_script(self, script: str, keys: list[str], args: list[str]) -> Any:
        """Run a Lua script by its digest, loading it first if Redis does not know it.
        Errors are the caller's to handle (``failed``)."""
        assert self.client is not None
        sha = _digest(script)
        try:
            return await self.client.evalsha(sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:
            await self.client.script_load(script)  # type: ignore[no-untyped-call]
            return await self.client.evalsha(sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]

    async def ping(self) -> bool:
        """Try Redis now (ignoring the back-off); used by health checks and the CLI."""
        if self.client is None:
            return False
        try:
            await self.client.ping()
        except (TimeoutError, redis.exceptions.RedisError, OSError) as exc:
            self.failed(exc)
            return False
        self.succeeded()
        return True

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()  # type: ignore[attr-defined]

    # -- operations -----------------------------------------------------------------------

    async def admit(
        self,
        hits: list[tuple[limits.RateLimitItem, str, int]],
        member: tuple[str, str, float] | None = None,
        slot: tuple[str, str, float] | None = None,
    ) -> Admission:
        """Admit one request: test all ``hits`` (item, key, cost) and consume them only if
        every one has room; then add ``member`` = (set, member, ttl) to a set and count
        it; then take ``slot`` = (name, owner, ttl). One round trip on Redis."""
        async def on_redis() -> Admission:
            assert self._admit is not None
            keys = [self.limit_key(item, key) for item, key, _ in hits]
            specs = "".join(
                f"{item.amount},{item.get_expiry()},{cost};" for item, _, cost in hits
            )
            set_part = slot_part = "|"
            if member is not None:
                keys.append(self.prefix + "set:" + member[0])
                set_part = f"{member[1]}|{max(1, int(member[2]))}"
            if slot is not None:
                keys.append(self.prefix + "slot:" + slot[0])
                slot_part = f"{slot[1]}|{max(1, int(slot[2] * 1000))}"
            refused, size, busy = await self._admit.call(
                keys, f"{len(hits)}|{specs}|{set_part}|{slot_part}"
            )
            return Admission(int(refused) - 1 if int(refused) > 0 else None,
                             int(size) if int(size) >= 0 else None, bool(busy), True)

        def in_memory() -> Admission:
            kept = (self.prefix + "set:" + member[0], member[1], member[2]) if member else None
            held = (self.prefix + "slot:" + slot[0], slot[1], slot[2]) if slot else None
            return self.memory.admit(hits, kept, held)

        return await self._run(on_redis, in_memory)

    def limit_key(self, item: limits.RateLimitItem, key: str) -> str:
        """The Redis key `limits` uses for ``item`` and ``key`` (its prefix + ':' + key)."""
        suffix = self._suffixes.get(id(item))
        if suffix is None:
            # key_for() is "namespace/<key>/amount/multiples/granularity"; its constant parts
            # are cached per item, as this runs for every limit of every request.
            namespace, _, rest = item.key_for("\x00").partition("/\x00")
            suffix = self._suffixes[id(item)] = (f"{self.prefix}limits:{namespace}/", rest)
        return f"{suffix[0]}{key}{suffix[1]}"

    async def window(self, item: limits.RateLimitItem, key: str) -> WindowHit:
        limiter = self._limiter

        async def on_redis() -> WindowHit:
            assert limiter is not None
            stats = await limiter.get_window_stats(item, key)
            return WindowHit(False, int(stats.remaining), float(stats.reset_time))

        return await self._run(on_redis, lambda: self.memory.window(item, key))

    async def spend(self, name: str, ttl: float) -> bool:
        """Mark ``name`` used; False if it already was (within ``ttl``)."""
        key = self.prefix + "spent:" + name
        client = self.client

        async def on_redis() -> bool:
            assert client is not None
            return bool(await client.set(key, b"1", nx=True, px=max(1, int(ttl * 1000))))

        return await self._run(on_redis, lambda: self.memory.spend(key, ttl))

    async def add_member(self, name: str, member: str, ttl: float) -> int:
        """Add to a set that expires ``ttl`` after its last addition; its size after."""
        key = self.prefix + "set:" + name
        client = self.client

        async def on_redis() -> int:
            assert client is not None
            async with client.pipeline(transaction=False) as pipe:
                pipe.sadd(key, member)
                pipe.scard(key)
                pipe.expire(key, max(1, int(ttl)))
                _, size, _ = await pipe.execute()
            return int(size)

        return await self._run(on_redis, lambda: self.memory.add_member(key, member, ttl))

    async def acquire(self, name: str, owner: str, ttl: float) -> tuple[bool, bool]:
        """Take the slot ``name`` for ``owner``. Returns (taken, on_redis)."""
        key = self.prefix + "slot:" + name
        client = self.client

        async def on_redis() -> tuple[bool, bool]:
            assert client is not None
            taken = await client.set(key, owner, nx=True, px=max(1, int(ttl * 1000)))
            return bool(taken), True

        return await self._run(on_redis, lambda: (self.memory.acquire(key, owner, ttl), False))

    async def release(self, name: str, owner: str, on_redis: bool) -> None:
        key = self.prefix + "slot:" + name
        if not on_redis or self.client is None:
            self.memory.release(key, owner)
            return
        try:
            assert self._release is not None
            await self._release.call([key], owner)
        except (TimeoutError, redis.exceptions.RedisError, OSError) as exc:
            # The slot expires on its own; nothing else to do.
            self.failed(exc)

    async def get_levels(self) -> dict[str, str]:
        key = self.prefix + "levels"
        client = self.client

        async def on_redis() -> dict[str, str]:
            assert client is not None
            raw = await client.hgetall(key)
            levels = {k.decode(): v.decode() for k, v in raw.items()}
            self.memory.levels = dict(levels)
            return levels

        return await self._run(on_redis, lambda: dict(self.memory.levels))

    async def set_level(self, group: str, level: str) -> bool:
        """Store a level; returns True if it reached Redis (all workers), False if only
        this process holds it."""
        key = self.prefix + "levels"
        client = self.client
        self.memory.levels[group] = level

        async def on_redis() -> bool:
            assert client is not None
            await client.hset(key, group, level)
            return True

        return await self._run(on_redis, lambda: False)

    async def delete_prefix(self) -> int:
        """Remove every key under this state's prefix (tests and ``guard reset``)."""
        if self.client is None:
            return 0
        removed = 0
        async for key in self.client.scan_iter(match=self.prefix + "*", count=500):
            removed += int(await self.client.delete(key))
        return removed

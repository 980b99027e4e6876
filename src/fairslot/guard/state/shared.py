"""Redis when configured and reachable, this process's memory otherwise.

Redis is taken for down when it cannot be reached (a refused or reset connection) or when
its calls have kept outlasting the socket timeout for ``SLOW_SECONDS_DOWN`` with none
answered in between: a slow call, common on a busy host at a release's peak (where the
worker's own event loop can be late to read a reply), is not an outage. A call that times
out is tried once more at once; if that fails too, that one call is answered from memory
(``Admission.on_redis`` says so) without taking Redis for down. While down, the guard logs
one warning,
answers from memory, and tries Redis again after a back-off (doubling from
``guard_redis_retry_seconds`` up to a minute, on the injected clock); the first success
logs the recovery. Memory state is not copied back to Redis: while Redis is down each
worker counts alone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.exceptions

from fairslot.clock import Clock
from fairslot.guard.state.memory import MemoryState
from fairslot.guard.state.redis import RedisState
from fairslot.guard.state.scripts import Script
from fairslot.guard.state.types import Admission, LoginRecord, WindowHit
from fairslot.guard.windows import Hit

__all__ = ["REDIS_ERRORS", "SLOW_SECONDS_DOWN", "SharedState", "is_slow"]

_log = logging.getLogger("fairslot.guard")

T = TypeVar("T")

REDIS_ERRORS = (TimeoutError, redis.exceptions.RedisError, OSError)
"""What a Redis call raises when Redis is down, slow or refusing."""

_MAX_BACKOFF = 60.0

SLOW_SECONDS_DOWN = 2.0
"""How long calls may keep outlasting the socket timeout (each after its retry), with none
answered, before Redis is taken for down. A time, not a count: the callers of one batched
script call all fail together."""


def is_slow(exc: BaseException) -> bool:
    """A call that took too long, not one that could not reach Redis: a socket timeout, or
    no pooled connection freed in time (the pool's wait raises ``ConnectionError`` from a
    timeout)."""
    if isinstance(exc, TimeoutError | redis.exceptions.TimeoutError):
        return True
    return isinstance(exc, redis.exceptions.ConnectionError) and isinstance(
        exc.__cause__, TimeoutError)


class SharedState:
    def __init__(self, redis_url: str | None, prefix: str, retry_seconds: float,
                 clock: Clock, mark: str = "-") -> None:
        self.prefix = prefix
        self._clock = clock
        self.memory = MemoryState(clock)
        self.redis = RedisState(redis_url, prefix, clock, mark) if redis_url else None
        self._retry_base = retry_seconds
        self._backoff = retry_seconds
        self._down_until = 0.0
        self._down = False
        self._slow_since: float | None = None

    # -- health ---------------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        return self.redis is not None

    @property
    def degraded(self) -> bool:
        """True while Redis is configured but answering from memory."""
        return self.redis is not None and self._down

    def use_redis(self) -> bool:
        return self.redis is not None and (
            not self._down or self._clock.monotonic() >= self._down_until)

    def failed(self, exc: BaseException) -> None:
        """Note a failed call: Redis is down after a connection error, or once calls have
        been slow for ``SLOW_SECONDS_DOWN`` with none answered."""
        if is_slow(exc) and not self._down:
            now = self._clock.monotonic()
            if self._slow_since is None:
                self._slow_since = now
            if now - self._slow_since < SLOW_SECONDS_DOWN:
                return
        self._slow_since = None
        if not self._down:
            # Exception class only: messages can carry the URL and so the password.
            _log.warning("Redis unreachable (%s); guard falls back to per-process limits",
                         type(exc).__name__)
            self._backoff = self._retry_base
        else:
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
        self._down = True
        self._down_until = self._clock.monotonic() + self._backoff

    def succeeded(self) -> None:
        self._slow_since = None
        if self._down:
            self._down = False
            _log.warning("Redis reachable again; guard limits are shared across workers")

    async def _run(self, on_redis: Callable[[RedisState], Awaitable[T]],
                   in_memory: Callable[[], T]) -> T:
        if self.redis is not None and self.use_redis():
            try:
                result = await self.retrying(on_redis, self.redis)
            except REDIS_ERRORS as exc:
                self.failed(exc)
            else:
                self.succeeded()
                return result
        return in_memory()

    @staticmethod
    async def retrying(call: Callable[[RedisState], Awaitable[T]], redis_state: RedisState
                       ) -> T:
        """``call``, once more if it was slow (it may have run the first time too). A repeat
        errs on the safe side only: the admission's slot and the token spend answer the
        same owner and spender alike (``RedisState``); a limit or a failed log-in may be
        counted twice; a decision's drop may report that Redis did not have it."""
        try:
            return await call(redis_state)
        except REDIS_ERRORS as exc:
            if not is_slow(exc):
                raise
        return await call(redis_state)

    async def run_script(self, lua: Script, keys: list[str], args: list[str]) -> Any:
        """Run a script on Redis; errors are the caller's to handle (``failed``)."""
        assert self.redis is not None
        return await self.redis.run_script(lua, keys, args)

    async def ping(self) -> bool:
        """Try Redis now (ignoring the back-off); for health checks and the CLI."""
        if self.redis is None:
            return False
        try:
            await self.redis.ping()
        except REDIS_ERRORS as exc:
            self.failed(exc)
            return False
        self.succeeded()
        return True

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()

    async def delete_prefix(self) -> int:
        """Remove every key under this state's prefix (tests and ``guard reset``)."""
        return await self.redis.delete_prefix() if self.redis is not None else 0

    # -- limits, device sets, slots -------------------------------------------------------

    async def admit(self, hits: list[Hit], member: tuple[str, str, float] | None = None,
                    slot: tuple[str, str, float] | None = None,
                    spend: tuple[str, float] | None = None) -> Admission:
        """Admit one request: test all ``hits`` and consume them only if every one has
        room; then add ``member`` = (device, account, ttl) to the device's set and count
        it; then take ``slot`` = (name, owner, ttl); then, on Redis only, spend ``spend`` =
        (ledger name, ttl) as the token ledger would (``Admission.spent``). One round trip
        on Redis."""
        def in_memory() -> Admission:
            kept = (self.prefix + "set:" + member[0], member[1], member[2]) if member else None
            held = (self.prefix + "slot:" + slot[0], slot[1], slot[2]) if slot else None
            return self.memory.admit(hits, kept, held)

        spending = None
        if spend is not None and self.redis is not None:
            spending = (spend[0], self.redis.spender(), spend[1])  # one spender for a retry
        return await self._run(lambda r: r.admit(hits, member, slot, spending), in_memory)

    async def window(self, hit: Hit) -> WindowHit:
        return await self._run(lambda r: r.window(hit), lambda: self.memory.window(hit))

    async def acquire(self, name: str, owner: str, ttl: float) -> tuple[bool, bool]:
        """Take the slot ``name`` for ``owner``. Returns (taken, on Redis)."""
        async def on_redis(r: RedisState) -> tuple[bool, bool]:
            return await r.acquire(name, owner, ttl), True

        return await self._run(
            on_redis, lambda: (self.memory.acquire(self.prefix + "slot:" + name, owner, ttl),
                               False))

    async def release(self, name: str, owner: str, on_redis: bool) -> None:
        if not on_redis or self.redis is None:
            self.memory.release(self.prefix + "slot:" + name, owner)
            return
        try:
            await self.redis.release(name, owner)
        except REDIS_ERRORS as exc:
            # The hold runs out on its own; nothing else to do.
            self.failed(exc)

    # -- levels ---------------------------------------------------------------------------

    async def get_levels(self) -> dict[str, str]:
        async def on_redis(r: RedisState) -> dict[str, str]:
            levels = await r.get_levels()
            self.memory.levels = dict(levels)
            return levels

        return await self._run(on_redis, lambda: dict(self.memory.levels))

    async def set_level(self, group: str, level: str) -> bool:
        """Store a level; True if it reached Redis (all workers), False if only this
        process holds it."""
        self.memory.levels[group] = level

        async def on_redis(r: RedisState) -> bool:
            await r.set_level(group, level)
            return True

        return await self._run(on_redis, lambda: False)

    # -- log-in failures ------------------------------------------------------------------

    async def login_record(self, scope: str, pair: str | None) -> LoginRecord:
        return await self._run(lambda r: r.login_record(scope, pair),
                               lambda: self.memory.login_record(scope, pair))

    async def login_failed(self, scope: str, forget_after: float) -> None:
        await self._run(lambda r: r.login_failed(scope, forget_after),
                        lambda: self.memory.login_failed(scope, forget_after))

    async def login_succeeded(self, scope: str, pair: str | None, known_for: float) -> None:
        await self._run(lambda r: r.login_succeeded(scope, pair, known_for),
                        lambda: self.memory.login_succeeded(scope, pair, known_for))

    # -- decisions ------------------------------------------------------------------------

    async def decisions_version(self) -> int:
        return await self._run(lambda r: r.decisions_version(),
                               lambda: self.memory.decisions_version)

    async def load_decisions(self) -> tuple[int, dict[str, str]]:
        async def on_redis(r: RedisState) -> tuple[int, dict[str, str]]:
            version, records = await r.load_decisions()
            self.memory.decisions = dict(records)
            return version, records

        return await self._run(on_redis, lambda: (self.memory.decisions_version,
                                                  dict(self.memory.decisions)))

    async def put_decision(self, decision_id: str, record: str) -> bool:
        """Store a decision; True if it reached Redis (every worker), False if only this
        process holds it."""
        self.memory.decisions[decision_id] = record
        self.memory.decisions_version += 1

        async def on_redis(r: RedisState) -> bool:
            await r.put_decision(decision_id, record)
            return True

        return await self._run(on_redis, lambda: False)

    async def drop_decisions(self, decision_ids: list[str]) -> bool:
        """Remove decisions; True if Redis had them."""
        removed_here = [self.memory.decisions.pop(d, None) for d in decision_ids]
        self.memory.decisions_version += 1

        async def on_redis(r: RedisState) -> bool:
            return await r.drop_decisions(decision_ids) > 0

        return await self._run(on_redis,
                               lambda: any(r is not None for r in removed_here))

"""The guard's state in Redis, shared by every worker. Each method makes one round trip
(the admission is batched further, see ``batch``) and lets Redis errors through: choosing
what to do when Redis fails is ``SharedState``'s job.

Every time stored or compared here is the guard's clock, passed in; Redis's own expiries
(EXPIRE, PX) only collect keys that no longer matter.
"""

from __future__ import annotations

import itertools
from typing import Any

import limits
import redis.asyncio
import redis.exceptions

from fairslot.clock import Clock
from fairslot.guard.state.batch import ScriptBatch
from fairslot.guard.state.lean import LeanScripts
from fairslot.guard.state.scripts import Script, script
from fairslot.guard.state.types import Admission, LoginRecord, WindowHit
from fairslot.guard.windows import Hit

__all__ = ["RedisState"]


class RedisState:
    def __init__(self, url: str, prefix: str, clock: Clock, mark: str = "-") -> None:
        """``mark``: this process's own random string, which makes its spends its own
        (``spender``)."""
        self.prefix = prefix
        self._clock = clock
        # Short timeouts: a hung Redis must cost a request milliseconds, not seconds, before
        # the guard falls back to memory. A blocking pool waits for a free connection
        # instead of failing a burst.
        pool: redis.asyncio.ConnectionPool[Any] = redis.asyncio.BlockingConnectionPool.from_url(
            url, socket_connect_timeout=0.25, socket_timeout=0.5, max_connections=64,
            timeout=0.5,
        )
        self.client: redis.asyncio.Redis[bytes] = redis.asyncio.Redis(connection_pool=pool)
        # The scripts every guarded request runs go over plain connections (``lean``).
        self._lean = LeanScripts.for_url(pool, timeout=0.5, connect_timeout=0.25)
        self._admit = ScriptBatch(self.run_script, script("admit"), clock)
        self._release = ScriptBatch(self.run_script, script("release"), clock)
        self._suffixes: dict[int, tuple[str, str]] = {}
        self._mark = mark
        self._spends = itertools.count()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    async def run_script(self, lua: Script, keys: list[str], args: list[str]) -> Any:
        """Run a script by its digest, loading it first if Redis does not know it yet."""
        lean = self._lean
        if lean is not None:
            try:
                return await lean.evalsha(lua.sha, keys, args)
            except redis.exceptions.NoScriptError:
                await self.client.script_load(lua.source)  # type: ignore[no-untyped-call]
                return await lean.evalsha(lua.sha, keys, args)
            except LookupError:
                pass  # every lean connection busy: redis-py's pool below
        try:
            return await self.client.evalsha(lua.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:
            await self.client.script_load(lua.source)  # type: ignore[no-untyped-call]
            return await self.client.evalsha(lua.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        if self._lean is not None:
            self._lean.close()
        await self.client.aclose()  # type: ignore[attr-defined]

    # -- limits, device sets, slots -------------------------------------------------------

    def limit_key(self, item: limits.RateLimitItem, key: str) -> str:
        """The key `limits` itself would use for ``item`` and ``key`` under our prefix."""
        suffix = self._suffixes.get(id(item))
        if suffix is None:
            # key_for() is "namespace/<key>/amount/multiples/granularity"; its constant parts
            # are cached per item, as this runs for every limit of every request.
            namespace, _, rest = item.key_for("\x00").partition("/\x00")
            suffix = self._suffixes[id(item)] = (f"{self.prefix}limits:{namespace}/", rest)
        return f"{suffix[0]}{key}{suffix[1]}"

    async def admit(self, hits: list[Hit], member: tuple[str, str, float] | None,
                    slot: tuple[str, str, float] | None,
                    spend: tuple[str, str, float] | None = None) -> Admission:
        """``spend`` = (name, spender, ttl): spend the name (``spend``) in the same call,
        if the request is admitted and holds its slot."""
        keys = [self.limit_key(item, key) for item, key, _ in hits]
        specs = "".join(f"{item.amount},{item.get_expiry()},{cost};" for item, _, cost in hits)
        set_part = slot_part = spend_part = "|"
        if member is not None:
            keys.append(self.prefix + "set:" + member[0])
            set_part = f"{member[1]}|{max(1, int(member[2]))}"
        if slot is not None:
            keys.append(self.prefix + "slot:" + slot[0])
            slot_part = f"{slot[1]}|{max(1, int(slot[2] * 1000))}"
        if spend is not None:
            keys.append(self.prefix + "spent:" + spend[0])
            spend_part = f"{spend[1]}|{max(1, int(spend[2] * 1000))}"
        refused, size, busy, spent = await self._admit.call(
            keys, f"{len(hits)}|{specs}|{set_part}|{slot_part}|{spend_part}")
        return Admission(int(refused) - 1 if int(refused) > 0 else None,
                         int(size) if int(size) >= 0 else None, bool(busy), True,
                         None if int(spent) < 0 else bool(spent))

    async def window(self, hit: Hit) -> WindowHit:
        item, key, _ = hit
        expiry = item.get_expiry()
        now = self._now()
        count, oldest = await self.run_script(
            script("window"), [self.limit_key(item, key)], [repr(now), str(item.amount),
                                                            str(expiry)])
        if not int(count):
            return WindowHit(item.amount, 0.0)
        return WindowHit(max(0, item.amount - int(count)),
                         max(0.0, float(oldest) + expiry - now))

    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        """Take a slot outside an admission (``Guard.exclusive``)."""
        reply = await self._admit.call([self.prefix + "slot:" + name],
                                       f"0||||{owner}|{max(1, int(ttl * 1000))}||")
        return not int(reply[2])

    async def release(self, name: str, owner: str) -> None:
        await self._release.call([self.prefix + "slot:" + name], owner)

    # -- levels ---------------------------------------------------------------------------

    async def get_levels(self) -> dict[str, str]:
        raw = await self.client.hgetall(self.prefix + "levels")
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def set_level(self, group: str, level: str) -> None:
        await self.client.hset(self.prefix + "levels", group, level)

    # -- log-in failures ------------------------------------------------------------------

    async def login_record(self, scope: str, pair: str | None) -> LoginRecord:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(self.prefix + "login:fail:" + scope, "n", "at")
            if pair:
                pipe.get(self.prefix + "login:known:" + pair)
                pipe.hmget(self.prefix + "login:fail:" + pair, "n", "at")
            replies = await pipe.execute()
        known = bool(pair) and float(replies[1] or 0.0) > self._now()
        failures, last = replies[2] if known else replies[0]
        return LoginRecord(int(failures or 0), float(last or 0.0), known)

    async def login_failed(self, scope: str, forget_after: float) -> None:
        await self.run_script(script("login_failed"), [self.prefix + "login:fail:" + scope],
                              [repr(self._now()), repr(forget_after)])

    async def login_succeeded(self, scope: str, pair: str | None, known_for: float) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.prefix + "login:fail:" + scope)
            if pair:
                # The value is when it stops being known, on the guard's clock.
                pipe.set(self.prefix + "login:known:" + pair, repr(self._now() + known_for),
                         ex=max(1, int(known_for)))
            await pipe.execute()

    # -- decisions ------------------------------------------------------------------------

    async def decisions_version(self) -> int:
        return int(await self.client.get(self.prefix + "decisions:version") or 0)

    async def load_decisions(self) -> tuple[int, dict[str, str]]:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(self.prefix + "decisions:version")
            pipe.hgetall(self.prefix + "decisions")
            version, raw = await pipe.execute()
        return int(version or 0), {k.decode(): v.decode() for k, v in raw.items()}

    async def put_decision(self, decision_id: str, record: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.prefix + "decisions", decision_id, record)
            pipe.incr(self.prefix + "decisions:version")
            await pipe.execute()

    async def drop_decisions(self, decision_ids: list[str]) -> int:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self.prefix + "decisions", *decision_ids)
            pipe.incr(self.prefix + "decisions:version")
            removed, _ = await pipe.execute()
        return int(removed)

    # -- spent tokens ---------------------------------------------------------------------

    def spender(self) -> str:
        """A mark of one spend, unique among every spend of every worker, before and after
        a restart (a worker's process id can come back; its random mark does not)."""
        return f"{self._mark}:{next(self._spends)}"

    async def spend(self, name: str, ttl: float, spender: str) -> bool:
        """Spend ``name`` for ``spender``: True if nobody else had. The same spender asking
        again (a retry after a timeout) is told True again."""
        # NX with GET: sets only if absent, and answers the value found (None if absent).
        before: bytes | None = await self.client.set(  # type: ignore[assignment]
            self.prefix + "spent:" + name, spender, nx=True, get=True,
            px=max(1, int(ttl * 1000)))
        return before is None or before == spender.encode()

    async def delete_prefix(self) -> int:
        removed = 0
        async for key in self.client.scan_iter(match=self.prefix + "*", count=500):
            removed += int(await self.client.delete(key))
        return removed

"""Calls of one Lua script made in the same turn of the event loop, sent to Redis as one.

A round trip and a command cost a worker far more than a script's arguments do, so under
load this is the guard's main saving: every request that asks for admission while the loop
is busy waits at most until the loop comes round, then all of them go in one call.

A call nobody waits for (``defer``: giving back a request's one-at-a-time slot) rides along
with the next call that someone waits for, or goes on its own after a short delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fairslot.clock import Clock
from fairslot.guard.state.scripts import Script

__all__ = ["ScriptBatch"]

# Callers per script call: bounds how long one call keeps Redis busy.
_BATCH = 128

Runner = Callable[[Script, list[str], list[str]], Awaitable[Any]]


class ScriptBatch:
    """The script receives every caller's keys one after the other in KEYS, the time (the
    guard's clock, seconds since the epoch) in ARGV[1] and caller j's one argument in
    ARGV[1 + j], and returns one reply per caller (or none at all)."""

    def __init__(self, run: Runner, script: Script, clock: Clock) -> None:
        self._run = run
        self._script = script
        self._clock = clock
        self._pending: list[tuple[list[str], str, asyncio.Future[Any] | None]] = []
        self._flushes: set[asyncio.Future[None]] = set()
        self._flush_soon = False
        self._flush_later: asyncio.TimerHandle | None = None

    async def call(self, keys: list[str], arg: str) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, arg, future))
        if not self._flush_soon:
            self._flush_soon = True
            loop.call_soon(self._start_flush)
        return await future

    def defer(self, keys: list[str], arg: str, delay: float) -> None:
        """Queue a call whose reply nobody needs: it goes with the next ``call``, in order,
        or on its own after ``delay`` seconds. Its errors are dropped."""
        self._pending.append((keys, arg, None))
        if self._flush_later is None and not self._flush_soon:
            self._flush_later = asyncio.get_running_loop().call_later(delay, self._start_flush)

    async def drain(self) -> None:
        """Send what is queued now and wait for every call under way (before closing)."""
        if self._pending:
            self._start_flush()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _start_flush(self) -> None:
        self._flush_soon = False
        if self._flush_later is not None:
            self._flush_later.cancel()
            self._flush_later = None
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), _BATCH):
            task = asyncio.ensure_future(self._flush(pending[start:start + _BATCH]))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[list[str], str, asyncio.Future[Any] | None]]
                     ) -> None:
        keys = [key for caller_keys, _, _ in batch for key in caller_keys]
        args = [repr(self._clock.now().timestamp()), *(arg for _, arg, _ in batch)]
        try:
            replies = await self._run(self._script, keys, args)
        except BaseException as exc:
            for _, _, future in batch:
                if future is not None and not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        replies = replies or [None] * len(batch)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future is not None and not future.done():
                future.set_result(reply)

"""Calls of one Lua script made in the same turn of the event loop, sent to Redis as one.

A round trip and a command cost a worker far more than a script's arguments do, so under
load this is the guard's main saving: every request that asks for admission while the loop
is busy waits at most until the loop comes round, then all of them go in one call.
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
        for start in range(0, len(pending), _BATCH):
            task = asyncio.ensure_future(self._flush(pending[start:start + _BATCH]))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[tuple[list[str], str, asyncio.Future[Any]]]) -> None:
        keys = [key for caller_keys, _, _ in batch for key in caller_keys]
        args = [repr(self._clock.now().timestamp()), *(arg for _, arg, _ in batch)]
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

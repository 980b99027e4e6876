"""Rate limits a request never waits for: moving windows in this worker, shared in the
background.

Browsing (pages and the public catalogue) is most of a hospital's traffic and its limits
are set where scraping starts, hundreds of requests a minute. A Redis round trip on every
page view cost a tenth of the page's throughput (docs/performance.md), so for such groups
each worker keeps an exact moving window per key in memory, and every ``interval`` seconds
reports its count of each busy key to Redis (one hash per key, one field per worker) and
reads back what the other workers counted. A request is allowed when

    this worker's count in the window + the other workers' last reported counts + cost
        <= the limit.

One worker alone is exact. Several workers see each other's counts at most ``interval``
late, so a flood spread over ``W`` workers can overshoot a limit by about
``W x rate x interval`` before every worker refuses it; a worker's report stays visible
until the next report, and a worker keeps reporting a key while it or the others count it;
a report older than ten intervals (at least 2 s) or than its window (a stopped worker's, or
every report while Redis is down) is no longer counted, in Redis or in the worker. Report
times are the guard's clock, like every time the guard stores (the workers' clocks must
agree, as they must for the moving windows in Redis). Only keys that pass 1% of their limit
in a worker are shared at all, so a patient's few page views cost Redis nothing. A worker
keeps at most ``_MAX_KEYS`` keys. Without Redis, or while it is down, each worker counts
alone. The reports go out on a timer of the event loop; what they count and when a count is
stale is judged on the guard's clock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os

import limits

from fairslot.clock import Clock
from fairslot.guard.state import REDIS_ERRORS, SharedState
from fairslot.guard.state.scripts import script
from fairslot.guard.windows import Hit, Window

__all__ = ["LocalWindows"]

_log = logging.getLogger("fairslot.guard")

_MAX_KEYS = 200_000
# A key is shared once this worker has counted 1/_SHARE_FRACTION of its limit: a patient's
# few page views then cost no Redis work at all, and a key that W workers never share can
# pass its limit by at most W percent.
_SHARE_FRACTION = 100
_REPORT_BATCH = 256


class _SharedWindow(Window):
    """A window of this worker, and the other workers' count of the same key."""

    __slots__ = ("others", "others_at", "share_at")

    def __init__(self, expiry: float, share_at: int) -> None:
        super().__init__(expiry)
        self.others = 0
        """The other workers' count as last read, at ``others_at`` (monotonic)."""
        self.others_at = 0.0
        self.share_at = share_at


class LocalWindows:
    """Moving-window counters of this worker, reconciled with the others through Redis."""

    def __init__(self, state: SharedState, worker: str, interval: float, clock: Clock) -> None:
        self._state = state
        self._worker = worker
        self._interval = interval
        self._clock = clock
        self._windows: dict[str, _SharedWindow] = {}
        self._shared: set[str] = set()
        """Keys this worker reports every interval: those that passed their threshold,
        until this worker's count of them is back to zero (and reported as such)."""
        self._flushing: asyncio.Future[None] | None = None
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        # The other workers' counts are trusted for as long as their own reports are.
        self._stale = max(2.0, 10 * interval)

    def _key(self, item: limits.RateLimitItem, key: str) -> str:
        return f"{self._state.prefix}lw:{key}/{item.amount}/{item.get_expiry()}"

    def admit(self, hits: list[Hit]) -> int | None:
        """Count ``hits`` (item, key, cost) if every one has room; else the index of the
        first without room, counting none."""
        now = self._clock.monotonic()
        windows = []
        for index, (item, key, cost) in enumerate(hits):
            name = self._key(item, key)
            window = self._windows.get(name)
            if window is None:
                if len(self._windows) >= _MAX_KEYS:
                    self._forget(now)
                window = self._windows[name] = _SharedWindow(
                    float(item.get_expiry()), max(1, item.amount // _SHARE_FRACTION)
                )
            others = self._others(name, window, now)
            if window.count(now) + others + cost > item.amount:
                return index
            windows.append((name, window, cost))
        for name, window, cost in windows:
            window.add(now, cost)
            if window.total >= window.share_at and self._state.configured:
                self._shared.add(name)
        self._schedule_if_needed()
        return None

    def _others(self, name: str, window: _SharedWindow, now: float) -> int:
        """The other workers' count of a key, if recent enough to trust. A key the others
        count is shared again (reported, and their count read back at the next report),
        so that a worker where the key went quiet does not go on with an old figure."""
        if not window.others:
            return 0
        if now - window.others_at > min(self._stale, window.expiry):
            window.others = 0
            return 0
        self._shared.add(name)
        self._schedule_if_needed()
        return window.others

    def _schedule_if_needed(self) -> None:
        if self._shared and not self._scheduled and self._state.configured:
            self._schedule()

    def remaining(self, item: limits.RateLimitItem, key: str) -> tuple[int, float]:
        """What is left of a limit, and in how many seconds room frees up (at least 1: the
        other workers' counts age out on their own schedule)."""
        window = self._windows.get(self._key(item, key))
        if window is None:
            return item.amount, 1.0
        now = self._clock.monotonic()
        used = window.count(now) + self._others(self._key(item, key), window, now)
        return max(0, item.amount - used), max(1.0, window.frees_in(now))

    def _forget(self, now: float) -> None:
        """Make room when the table is full: drop the windows with nothing left in them
        (and whose other workers' counts are stale), then, if a scan of more live keys than
        the table holds is under way, the oldest; down to nine tenths of the cap, so that
        the next pass is many new keys away."""
        target = _MAX_KEYS * 9 // 10
        for name, window in list(self._windows.items()):
            quiet = not window.others or now - window.others_at > min(self._stale,
                                                                      window.expiry)
            if window.count(now) == 0 and quiet:
                del self._windows[name]
                self._shared.discard(name)
        if len(self._windows) > target:
            # Oldest first (insertion order): an evicted key starts counting again from zero.
            for name in list(itertools.islice(self._windows, len(self._windows) - target)):
                del self._windows[name]
                self._shared.discard(name)

    def _schedule(self) -> None:
        if self._closed:
            return
        self._scheduled = True
        self._timer = asyncio.get_running_loop().call_later(self._interval, self._start_flush)

    async def close(self) -> None:
        """Stop reporting (the worker is shutting down); its last reports go stale."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._flushing is not None and not self._flushing.done():
            await self._flushing

    def _start_flush(self) -> None:
        self._scheduled = False
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self.flush())
            self._flushing.add_done_callback(self._after_flush)
        else:
            self._schedule()

    def _after_flush(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            _log.error("browsing counters: report failed", exc_info=done.exception())
        if self._shared and not self._scheduled:
            self._schedule()

    async def flush(self) -> None:
        """Report this worker's count of every shared key and read the others' counts.
        A key reported at zero stops being shared (the others then stop counting it)."""
        if not self._state.configured or not self._shared or not self._state.use_redis():
            return
        now = self._clock.monotonic()
        sent = [(name, w) for name in self._shared if (w := self._windows.get(name)) is not None]
        worker = f"{self._worker}:{os.getpid()}"  # distinct even in workers forked from one
        for start in range(0, len(sent), _REPORT_BATCH):
            chunk = sent[start:start + _REPORT_BATCH]
            counts = [w.count(now) for _, w in chunk]
            args = [f"{count},{int(w.expiry * 1000)}"
                    for (_, w), count in zip(chunk, counts, strict=True)]
            try:
                replies = await self._state.run_script(
                    script("report"), [name for name, _ in chunk],
                    [worker, repr(self._stale), repr(self._clock.now().timestamp()), *args])
            except REDIS_ERRORS as exc:
                self._state.failed(exc)
                return
            self._state.succeeded()
            read_at = self._clock.monotonic()
            for (name, window), count, others in zip(chunk, counts, replies, strict=True):
                window.others, window.others_at = int(others), read_at
                if count == 0 and window.count(read_at) == 0 and not window.others:
                    self._shared.discard(name)

"""Exact moving windows in this process, on the injected clock.

The guard counts in process memory in two places: every limit in embedded mode (and while
Redis is down), and browsing limits in every mode (``local_windows``). Both use these
windows. They follow the moving-window rule of the `limits` library (a request is allowed
when the requests of the last ``window`` seconds plus its cost stay within the limit), but
read time from the guard's ``Clock`` instead of the ``time`` module, so the simulator and
the tests move them by moving a ``FixedClock``.

Why not `limits`' own in-memory storage: it reads the ``time`` module itself, and a storage of
our own behind `limits`' extension points (``Storage`` + ``MovingWindowSupport``) is two
to four times slower than a deque per key (``bench/guard.py --only windows``).
"""

from __future__ import annotations

import itertools
from collections import deque

import limits

from fairslot.clock import Clock

__all__ = ["Hit", "MovingWindows", "Window"]

Hit = tuple[limits.RateLimitItem, str, int]
"""One limit a request must fit in: the limit, its key, and what the request costs."""


class Window:
    """The requests of one key inside its window: (time, cost) oldest first, and their sum."""

    __slots__ = ("events", "expiry", "total")

    def __init__(self, expiry: float) -> None:
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0
        self.expiry = expiry

    def count(self, now: float) -> int:
        """What the window holds at ``now`` (dropping what has left it)."""
        events, horizon = self.events, now - self.expiry
        while events and events[0][0] <= horizon:
            self.total -= events.popleft()[1]
        return self.total

    def add(self, now: float, cost: int) -> None:
        self.events.append((now, cost))
        self.total += cost

    def frees_in(self, now: float) -> float:
        """Seconds until the oldest request leaves the window (0 when empty)."""
        if not self.events:
            return 0.0
        return max(0.0, self.events[0][0] + self.expiry - now)


class MovingWindows:
    """A table of windows keyed by limit and key, bounded to ``max_keys`` entries."""

    def __init__(self, clock: Clock, *, max_keys: int = 200_000) -> None:
        self._clock = clock
        self.max_keys = max_keys
        self.windows: dict[str, Window] = {}

    @staticmethod
    def name(item: limits.RateLimitItem, key: str) -> str:
        return f"{key}/{item.amount}/{item.get_expiry()}"

    def admit(self, hits: list[Hit]) -> int | None:
        """Count every hit if all of them have room; else the index of the first without
        room, counting none."""
        now = self._clock.monotonic()
        found: list[tuple[Window, int]] = []
        for index, (item, key, cost) in enumerate(hits):
            window = self._window(item, key, now)
            if window.count(now) + cost > item.amount:
                return index
            found.append((window, cost))
        for window, cost in found:
            window.add(now, cost)
        return None

    def remaining(self, item: limits.RateLimitItem, key: str) -> tuple[int, float]:
        """What is left of a limit, and in how many seconds room frees up."""
        window = self.windows.get(self.name(item, key))
        if window is None:
            return item.amount, 0.0
        now = self._clock.monotonic()
        return max(0, item.amount - window.count(now)), window.frees_in(now)

    def _window(self, item: limits.RateLimitItem, key: str, now: float) -> Window:
        name = self.name(item, key)
        window = self.windows.get(name)
        if window is None:
            if len(self.windows) >= self.max_keys:
                self.forget(now)
            window = self.windows[name] = Window(float(item.get_expiry()))
        return window

    def forget(self, now: float) -> None:
        """Make room: drop the empty windows, then (a scan of more live keys than the table
        holds) the oldest, down to nine tenths of the cap so the next pass is far off."""
        for name, window in list(self.windows.items()):
            if window.count(now) == 0:
                del self.windows[name]
        target = self.max_keys * 9 // 10
        if len(self.windows) > target:
            for name in list(itertools.islice(self.windows, len(self.windows) - target)):
                del self.windows[name]

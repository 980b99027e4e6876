"""Short-lived, per-process memory of figures that many patients read at once and that
change slowly or only by a little: how many have entered each session of an open round,
how often a doctor's slots free up. At a release's peak every patient opens the same
round's screen; counting its entries afresh for each one would cost the database work that
grows with the square of the crowd. A count a second or two old is as good to a patient,
and this process forgets a round's counts as soon as it writes an entry into it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

from fairslot.clock import Clock

__all__ = ["ViewCache"]

T = TypeVar("T")


class ViewCache:
    def __init__(self, clock: Clock, *, max_items: int = 4096) -> None:
        self._clock = clock
        self._max = max_items
        self._items: dict[Hashable, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, seconds: float, compute: Callable[[], T]) -> T:
        """The value kept for ``key`` if it is younger than ``seconds``, else ``compute()``
        (kept for next time). ``seconds`` of 0 always computes."""
        now = self._clock.monotonic()
        with self._lock:
            kept = self._items.get(key)
        if kept is not None and now - kept[0] < seconds:
            return kept[1]  # type: ignore[return-value]
        value = compute()
        if seconds > 0:
            with self._lock:
                if len(self._items) >= self._max:
                    self._items.clear()
                self._items[key] = (now, value)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

"""The one source of "now". Production uses the system clock; tests and the simulator inject
a clock they control, so no rule in fairslot ever reads the wall clock on its own.

``now()`` is the civil time (timezone-aware, UTC) that rules and records use;
``monotonic()`` is seconds on a clock that never goes back, for measuring intervals (rate
windows, back-offs, time-outs). A ``FixedClock`` moves both together, so code that measures
intervals runs in the simulator's virtual time exactly as in production."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

__all__ = ["UTC", "Clock", "FixedClock", "SystemClock"]

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock:
    """A clock that moves only when told to: for tests and the simulator's virtual time.
    Its monotonic reading is its civil time as a POSIX timestamp, so the two stay in step."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._now.timestamp()

    def set(self, when: dt.datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FixedClock needs timezone-aware times")
        self._now = when.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)


def N_(text: str) -> str:
    """Marks a text for the pages' catalogue (``scripts/i18n.sh`` extracts ``N_`` calls)."""
    return text


ZONE_NAMES = {"Asia/Shanghai": N_("Beijing time"), "Asia/Chongqing": N_("Beijing time"),
              "PRC": N_("Beijing time"), "Asia/Hong_Kong": N_("Hong Kong time"),
              "Asia/Macau": N_("Macau time"), "Asia/Taipei": N_("Taipei time")}
"""Time zones a reader knows by another name than its IANA id (others are shown as they
are): the pages and the investigation report say these, in English or translated."""

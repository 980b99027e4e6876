"""The one source of "now". Production uses the system clock; tests and the simulator inject
a clock they control, so no rule in fairslot ever reads the wall clock on its own."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

__all__ = ["UTC", "Clock", "FixedClock", "SystemClock"]

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FixedClock:
    """A clock that moves only when told to: for tests and the simulator's virtual time."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, when: dt.datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FixedClock needs timezone-aware times")
        self._now = when.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)

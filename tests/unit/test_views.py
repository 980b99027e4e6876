"""The per-process memory of much-read figures: kept for the time asked, forgotten on
demand, never kept when asked for 0 seconds."""

from __future__ import annotations

import datetime as dt

from fairslot.clock import FixedClock
from fairslot.services.views import ViewCache


def test_a_figure_is_kept_for_its_time_then_computed_again() -> None:
    clock = FixedClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    cache = ViewCache(clock)
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("round", 2, count) == 1
    clock.advance(1.9)
    assert cache.get("round", 2, count) == 1
    clock.advance(0.2)
    assert cache.get("round", 2, count) == 2
    cache.forget("round")
    assert cache.get("round", 2, count) == 3
    assert cache.get("round", 0, count) == 4
    assert cache.get("other", 2, count) == 5


def test_the_memory_is_bounded() -> None:
    cache = ViewCache(FixedClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC)), max_items=3)
    for n in range(10):
        cache.get(n, 60, lambda n=n: n)
    assert len(cache._items) <= 3

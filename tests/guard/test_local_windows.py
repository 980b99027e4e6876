"""Browsing limits are counted in each worker and shared through Redis in the background:
one worker alone is exact, two workers see each other's counts after a report, a
patient's few page views cost Redis nothing, and without Redis each worker counts alone."""

from __future__ import annotations

import pytest
import redis

from fairslot.clock import FixedClock
from fairslot.guard import Guard, RateLimited, Requester

from .conftest import GuardFactory

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

LIMIT = {"browsing": {"ip": "40/minute", "prefix": "none", "device": "none"}}


async def _served(guard: Guard, ip: str, attempts: int, device: str | None = None) -> int:
    served = 0
    for _ in range(attempts):
        try:
            await guard.decide(Requester(client_ip=ip, device_id=device), "browsing")
        except RateLimited:
            continue
        served += 1
    return served


async def test_one_worker_is_exact_and_its_refusal_says_when_to_come_back(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard(guard_limits=LIMIT)
    assert await _served(guard, "198.51.100.1", 55) == 40
    with pytest.raises(RateLimited) as refused:
        await guard.decide(Requester(client_ip="198.51.100.1"), "browsing")
    assert refused.value.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    # Another address is not affected.
    assert await _served(guard, "198.51.100.2", 5) == 5


async def test_two_workers_share_one_limit_after_reporting(
    make_guard: GuardFactory,
) -> None:
    one = make_guard(guard_limits=LIMIT)
    two = make_guard(guard_limits=LIMIT)
    assert one.local_windows is not None and two.local_windows is not None
    assert await _served(one, "198.51.100.7", 25) == 25
    await one.local_windows.flush()
    # The second worker learns the first one's 25 with its own first report.
    assert await _served(two, "198.51.100.7", 1) == 1
    await two.local_windows.flush()
    assert await _served(two, "198.51.100.7", 30) == 14
    await two.local_windows.flush()
    await one.local_windows.flush()
    # ... and the first worker now knows of the second one's 15: nothing left for anyone.
    assert await _served(one, "198.51.100.7", 5) == 0


async def test_a_patients_few_page_views_cost_redis_nothing(
    make_guard: GuardFactory, redis_url: str, prefix: str,
) -> None:
    guard = make_guard()  # the default browsing limits: 600 a minute per address
    assert guard.local_windows is not None
    for n in range(4):
        await guard.decide(Requester(client_ip=f"203.0.113.{n}", device_id=f"d{n}"),
                           "browsing")
    await guard.local_windows.flush()
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=prefix + "lw:*")) == []
        # A scraper's address passes the sharing threshold (1% of its limit) and is shared.
        assert await _served(guard, "203.0.113.99", 10) == 10
        await guard.local_windows.flush()
        shared = [key.decode() for key in client.scan_iter(match=prefix + "lw:*")]
    finally:
        client.close()
    assert any("203.0.113.99" in key for key in shared)


async def test_without_redis_each_worker_counts_alone(make_guard: GuardFactory) -> None:
    guard = make_guard(redis_url=None, guard_limits=LIMIT)
    assert await _served(guard, "198.51.100.9", 50) == 40


async def test_zero_sync_interval_checks_browsing_in_redis_on_every_request(
    make_guard: GuardFactory,
) -> None:
    one = make_guard(guard_limits=LIMIT, guard_browsing_sync_seconds=0)
    two = make_guard(guard_limits=LIMIT, guard_browsing_sync_seconds=0)
    assert one.local_windows is None
    assert await _served(one, "198.51.100.11", 25) == 25
    assert await _served(two, "198.51.100.11", 25) == 15


async def test_a_stopped_workers_counts_are_dropped_once_stale(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    one = make_guard(guard_limits=LIMIT, guard_browsing_sync_seconds=0.1)
    two = make_guard(guard_limits=LIMIT, guard_browsing_sync_seconds=0.1)
    assert one.local_windows is not None and two.local_windows is not None
    assert await _served(one, "198.51.100.20", 30) == 30
    await one.local_windows.flush()
    await one.close()  # the first worker stops without reporting again
    await _served(two, "198.51.100.20", 1)
    await two.local_windows.flush()
    assert await _served(two, "198.51.100.20", 20) == 9
    clock.advance(2.1)  # ten intervals, at least two seconds
    await two.local_windows.flush()
    assert await _served(two, "198.51.100.20", 40) == 30


async def test_a_worker_refused_by_the_others_counts_serves_again_once_they_stop(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    # A four-second window, reports every 0.5 s: a report is stale after the window (4 s),
    # sooner than ten intervals (5 s).
    short = {"browsing": {"ip": "40/4 second", "prefix": "none", "device": "none"}}
    one = make_guard(guard_limits=short, guard_browsing_sync_seconds=0.5)
    two = make_guard(guard_limits=short, guard_browsing_sync_seconds=0.5)
    assert one.local_windows is not None and two.local_windows is not None
    assert await _served(one, "198.51.100.30", 40) == 40
    await one.local_windows.flush()
    await one.close()  # stops; its report of 40 stays in Redis until it is stale
    assert await _served(two, "198.51.100.30", 1) == 1
    await two.local_windows.flush()
    assert await _served(two, "198.51.100.30", 3) == 0
    # After the four-second window neither the second worker's own count nor the first
    # one's report counts any more: the second worker must not keep the 40 for ever.
    clock.advance(4.1)
    assert await _served(two, "198.51.100.30", 3) == 3


async def test_the_table_of_windows_stays_bounded_without_redis(
    make_guard: GuardFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fairslot.guard import local_windows

    monkeypatch.setattr(local_windows, "_MAX_KEYS", 100)
    guard = make_guard(redis_url=None, guard_limits=LIMIT)
    assert guard.local_windows is not None
    for n in range(150):  # a scan of 150 addresses, each busy enough to be shared
        assert await _served(guard, f"198.51.100.{n}", 3) == 3
    windows = guard.local_windows._windows
    assert 0 < len(windows) <= 100
    assert not guard.local_windows._shared  # nothing to share without Redis
    # The newest addresses are still counted; the oldest were let go.
    assert any("198.51.100.149/" in name for name in windows)
    assert not any("198.51.100.0/" in name for name in windows)

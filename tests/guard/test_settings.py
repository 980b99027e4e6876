"""The guard's remaining settings do what docs/guard.md says (the others are tested where
their feature is: limits, tokens, devices, log-in, browsing counters, Redis failure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from fairslot.clock import FixedClock
from fairslot.guard import (
    BookingInProgress,
    Guard,
    GuardLevel,
    RateLimited,
    Requester,
    RouteGroup,
)

from .conftest import Events, GuardFactory, asgi_call, build_app

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

PERSON = Requester("198.51.100.20", "person-device")


@pytest.fixture(params=["redis", "in-process"])
def either_guard(request: pytest.FixtureRequest, make_guard: GuardFactory
                 ) -> Callable[..., Guard]:
    def factory(**overrides: Any) -> Guard:
        if request.param == "in-process":
            overrides["redis_url"] = None
        return make_guard(**overrides)
    return factory


async def test_the_default_level_applies_to_groups_nobody_switched(
    either_guard: Callable[..., Guard],
) -> None:
    guard = either_guard(guard_default_level="elevated")
    await guard.set_level("booking", "normal")
    levels = await guard.levels()
    assert levels.pop(RouteGroup.BOOKING) is GuardLevel.NORMAL
    assert set(levels.values()) == {GuardLevel.ELEVATED}


async def test_difficulty_starts_at_the_base_and_never_passes_the_ceiling(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard(guard_pow_base_maxnumber=2000, guard_pow_max_maxnumber=5000)
    assert (await guard.new_challenge("entering"))["maxNumber"] == 2000
    assert (await guard.new_challenge("entering", risk=1))["maxNumber"] == 4000
    assert (await guard.new_challenge("entering", risk=2))["maxNumber"] == 5000


async def test_the_device_header_name_is_a_setting(make_guard: GuardFactory) -> None:
    app = build_app(make_guard(guard_device_header="X-App-Device"))
    _, first, _ = await asgi_call(app, "GET", "/whoami", ip="198.51.100.20")
    given = first["x-app-device"]
    _, _, body = await asgi_call(app, "GET", "/whoami", ip="198.51.100.20",
                                 headers={"x-app-device": given})
    assert given.split(".")[0] in body.decode()
    _, _, body = await asgi_call(app, "GET", "/whoami", ip="198.51.100.20",
                                 headers={"x-device-id": given})
    assert b'"device_id":null' in body


async def test_a_slot_never_released_frees_itself_after_the_exclusive_seconds(
    either_guard: Callable[..., Guard], clock: FixedClock,
) -> None:
    guard = either_guard(guard_exclusive_seconds=15)
    await guard.decide(PERSON, "booking", account_id="mother", exclusive=True)  # a dead worker
    clock.advance(14)
    with pytest.raises(BookingInProgress):
        await guard.decide(PERSON, "booking", account_id="mother", exclusive=True)
    clock.advance(1.1)
    passed = await guard.decide(PERSON, "booking", account_id="mother", exclusive=True)
    await guard.release(passed)


@pytest.mark.parametrize(("cache_seconds", "refused_again"), [(1.0, True), (0.0, False)])
async def test_a_worker_refuses_a_key_it_just_saw_over_its_limit_without_asking_redis(
    make_guard: GuardFactory, redis_url: str, prefix: str, clock: FixedClock,
    cache_seconds: float, refused_again: bool,
) -> None:
    guard = make_guard(guard_deny_cache_seconds=cache_seconds,
                       guard_limits={"search": {"ip": "3/minute", "prefix": "none",
                                                "device": "none"}})
    for _ in range(3):
        await guard.decide(PERSON, "search")
    with pytest.raises(RateLimited):
        await guard.decide(PERSON, "search")
    client = redis.Redis.from_url(redis_url)
    try:  # the count goes away in Redis (as if the window had moved on)
        for key in client.scan_iter(match=prefix + "limits:*"):
            client.delete(key)
    finally:
        client.close()
    if refused_again:
        with pytest.raises(RateLimited):
            await guard.decide(PERSON, "search")
        clock.advance(1.0)
    await guard.decide(PERSON, "search")


async def test_allows_are_reported_in_aggregate(
    make_guard: GuardFactory, events: Events,
) -> None:
    guard = make_guard(guard_allow_event_every=3)
    for _ in range(7):
        await guard.decide(PERSON, "search")
    allows = [e for e in events if e.decision == "allow"]
    assert [(e.count, e.client_ip) for e in allows] == [(3, "*"), (3, "*")]

"""The guard runs on the clock and the randomness it is given: a guard on a clock years
away from the wall clock behaves exactly as one on the wall clock, the same seed gives the
same identifiers, and no guard module reads time or randomness of its own."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from fairslot.clock import FixedClock
from fairslot.guard import BookingInProgress, ChallengeRequired, RateLimited, Requester
from fairslot.randomness import SeededRandomness

from .conftest import GuardFactory, make_settings, solve

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

GUARD_SOURCE = Path(__file__).parents[2] / "src" / "fairslot" / "guard"
PERSON = Requester("198.51.100.20", "person-device")


@pytest.mark.parametrize("redis_mode", ["redis", "in-process"])
async def test_a_guard_in_virtual_time_counts_waits_and_expires_on_that_time_only(
    make_guard: GuardFactory, redis_mode: str,
) -> None:
    from fairslot.guard import Guard

    clock = FixedClock(dt.datetime(2001, 5, 1, 12, 0, tzinfo=dt.UTC))
    overrides = {"redis_url": None} if redis_mode == "in-process" else {}
    template = make_guard(**overrides)  # for its Redis prefix and settings
    guard = Guard(template.settings.model_copy(update={
        "guard_limits": {"search": {"ip": "3/minute", "prefix": "none", "device": "none"}}}),
        clock=clock)
    try:
        for _ in range(3):
            await guard.decide(PERSON, "search")
        with pytest.raises(RateLimited) as refused:
            await guard.decide(PERSON, "search")
        assert refused.value.headers["Retry-After"] == "60"
        clock.advance(60)  # a virtual minute, no real time
        await guard.decide(PERSON, "search")

        token = guard.issue_token("mother", "book", "s1")
        clock.advance(2)
        assert (await guard.tokens.redeem(token, "mother", "book", "s1")).ok

        held = await guard.decide(PERSON, "booking", account_id="mother", exclusive=True)
        clock.advance(guard.settings.guard_exclusive_seconds - 1)
        with pytest.raises(BookingInProgress):
            await guard.decide(PERSON, "booking", account_id="mother", exclusive=True)
        await guard.release(held)

        await guard.set_level("entering", "under_attack")
        with pytest.raises(ChallengeRequired) as asked:
            await guard.decide(PERSON, "entering", account_id="mother")
        await guard.decide(PERSON, "entering", account_id="mother",
                           pow_payload=solve(asked.value.extra["challenge"]))
    finally:
        await guard.close()


async def test_the_same_seed_gives_the_same_devices_tokens_and_challenges() -> None:
    from fairslot.guard import Guard

    def made(seed: int) -> tuple[str, str, str]:
        clock = FixedClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
        guard = Guard(make_settings(redis_url=None), clock=clock,
                      randomness=SeededRandomness(seed))
        _, device = guard.devices.mint()
        token = guard.issue_token("mother", "book", "s1")
        salt = guard.challenges.issue("-", "entering", 1000)["salt"]
        return device, token, salt

    assert made(7) == made(7)
    assert made(7) != made(8)


def test_no_guard_module_reads_the_clock_or_randomness_itself() -> None:
    forbidden = re.compile(r"\btime\.(time|monotonic|perf_counter)\(|^\s*import (time|secrets|"
                           r"random)\b|^\s*from (time|secrets|random) import|\bos\.urandom\(",
                           re.MULTILINE)
    offenders = [str(path.relative_to(GUARD_SOURCE)) for path in GUARD_SOURCE.rglob("*.py")
                 if forbidden.search(path.read_text())]
    assert offenders == []

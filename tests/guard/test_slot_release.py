"""A booking's one-at-a-time slot is given back without a Redis round trip of its own: the
release rides with the worker's next admission call, or goes alone after a short delay."""

from __future__ import annotations

import asyncio

import pytest

from fairslot.clock import FixedClock
from fairslot.guard import BookingInProgress, Requester
from fairslot.guard.state.redis import RELEASE_DELAY

from .conftest import GuardFactory

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

PERSON = Requester("198.51.100.20", "person-device")


async def test_the_same_worker_takes_the_slot_again_at_once(make_guard: GuardFactory) -> None:
    worker = make_guard()
    passed = await worker.decide(PERSON, "booking", account_id="mother", exclusive=True)
    await worker.release(passed)
    again = await worker.decide(PERSON, "booking", account_id="mother", exclusive=True)
    await worker.release(again)


async def test_another_worker_finds_the_slot_free_once_the_release_is_sent(
    make_guard: GuardFactory,
) -> None:
    first, second = make_guard(), make_guard()
    passed = await first.decide(PERSON, "booking", account_id="mother", exclusive=True)
    await first.release(passed)
    with pytest.raises(BookingInProgress):  # queued on the first worker, not sent yet
        await second.decide(PERSON, "booking", account_id="mother", exclusive=True)
    await asyncio.sleep(RELEASE_DELAY * 4)
    taken = await second.decide(PERSON, "booking", account_id="mother", exclusive=True)
    await second.release(taken)


async def test_a_late_release_does_not_free_a_later_hold(make_guard: GuardFactory,
                                                        clock: FixedClock) -> None:
    first, second = make_guard(guard_exclusive_seconds=15), make_guard()
    stale = await first.decide(PERSON, "booking", account_id="mother", exclusive=True)
    clock.advance(16)  # the hold ran out
    later = await second.decide(PERSON, "booking", account_id="mother", exclusive=True)
    await first.release(stale)
    await asyncio.sleep(RELEASE_DELAY * 4)
    with pytest.raises(BookingInProgress):
        await first.decide(PERSON, "booking", account_id="mother", exclusive=True)
    await second.release(later)

"""The monitor's decisions (made by a scenario or an operator in a `fairslot monitor`
process, which has no guard of its own) are enforced by every web worker within a second,
and lifting one ends it everywhere within a second."""

from __future__ import annotations

import datetime as dt

import anyio
import pytest

from fairslot.clock import FixedClock
from fairslot.guard import Blocked, ChallengeRequired, Requester
from fairslot.monitoring.assemble import make_monitor
from fairslot.monitoring.enforce import GuardDecisionSink, standalone_guard_sink
from fairslot.monitoring.runner import Monitor
from fairslot.monitoring.scenarios import Entity
from fairslot.monitoring.store import MemoryStore

from .conftest import GuardFactory, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

TEN_MINUTES = dt.timedelta(minutes=10)
BOT = Requester("203.0.113.9", "bot-device")
PERSON = Requester("198.51.100.20", "person-device")


def _monitor(redis_url: str, prefix: str, clock: FixedClock,
             ) -> tuple[Monitor, GuardDecisionSink]:
    settings = make_settings(redis_url=redis_url, guard_redis_prefix=prefix,
                             database_url="sqlite://")
    sink = standalone_guard_sink(settings, clock)
    assert sink is not None
    return make_monitor(settings, clock=clock, sink=sink, store=MemoryStore(),
                        notify=False), sink


async def test_a_monitors_decisions_reach_every_worker_within_a_second(
    make_guard: GuardFactory, redis_url: str, prefix: str, clock: FixedClock,
) -> None:
    one, two = make_guard(), make_guard()
    for worker in (one, two):
        await worker.decide(BOT, "search")  # both workers have just read the decisions
    monitor, sink = _monitor(redis_url, prefix, clock)
    try:
        block = await anyio.to_thread.run_sync(
            monitor.decide, "block", Entity("ip", "203.0.113.9"), TEN_MINUTES, "li",
            "scraping the timetable")
        await anyio.to_thread.run_sync(
            monitor.decide, "require_pow", Entity("account", "77"), TEN_MINUTES, "li",
            "sniping releases")
        hold = await anyio.to_thread.run_sync(
            monitor.decide, "hold_bookings", Entity("patient", "42"), TEN_MINUTES, "li",
            "booked in five departments")
        clock.advance(1.0)
        for worker in (one, two):
            with pytest.raises(Blocked):
                await worker.decide(BOT, "search")
            await worker.decide(PERSON, "search")  # nobody else is affected
            with pytest.raises(ChallengeRequired):
                await worker.decide(PERSON, "entering", account_id="77")
            assert (await worker.decide(PERSON, "entering", account_id="78")).level == "normal"
            passed = await worker.decide(PERSON, "booking", account_id="78", patient_id="42")
            assert passed.held_for_review == (f"monitor-{hold.id}",)

        # Lifted by hand: every worker lets the address through again within a second.
        await anyio.to_thread.run_sync(monitor.lift, block.id or 0, "li", "a hospital proxy")
        clock.advance(1.0)
        for worker in (one, two):
            await worker.decide(BOT, "search")
        # Applying a decision again (a restarted monitor) replaces its record.
        await anyio.to_thread.run_sync(sink.reapply, monitor.store.decisions(
            active_at=clock.now()))
        assert sorted(d.id for d in await one.decisions.active()) == sorted(
            f"monitor-{d.id}" for d in monitor.store.decisions(active_at=clock.now()))
    finally:
        await anyio.to_thread.run_sync(sink.close)


async def test_a_decision_on_an_entity_the_guard_does_not_key_is_recorded_only(
    make_guard: GuardFactory, redis_url: str, prefix: str, clock: FixedClock,
) -> None:
    guard = make_guard()
    monitor, sink = _monitor(redis_url, prefix, clock)
    try:
        decision = await anyio.to_thread.run_sync(
            monitor.decide, "hold_bookings", Entity("phone", "b1ind"), TEN_MINUTES, "li",
            "one phone behind nine patients")
        assert decision.id is not None and monitor.store.decisions(active_at=clock.now())
        assert await guard.decisions.active() == []
    finally:
        await anyio.to_thread.run_sync(sink.close)

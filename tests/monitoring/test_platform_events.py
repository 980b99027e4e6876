"""The platform publishes what it committed to the monitor's stream; the monitor inside
`fairslot serve` (embedded mode) raises alerts from it and the server's guard enforces the
decisions; through the Redis stream, a killed monitor's events are taken over and
replaying them changes nothing."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.domain.errors import InvalidInput, NotFound
from fairslot.monitoring.assemble import make_monitor
from fairslot.monitoring.decisions import MemoryDecisionBook
from fairslot.monitoring.engine import Engine
from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.publish import PlatformPublisher
from fairslot.monitoring.scenarios import Entity, Finding, build_scenarios
from fairslot.monitoring.store import MemoryStore
from fairslot.monitoring.stream import InProcessStream, RedisStreamConsumer, RedisStreamPublisher
from fairslot.monitoring.windows import MemoryWindows
from fairslot.services import accounts, booking
from fairslot.services.context import RequestContext
from fairslot.storage import tables as t
from fairslot.web.app import create_app
from tests.conftest import World, api_book, api_pay
from tests.integration.test_release import _close_and_draw, _draw_world, _enter_all
from tests.monitoring.conftest import settings

CTX = RequestContext(ip="198.51.100.7", device_id="dev-1")
# Made-up identities as a farm tries them: a new name with each invalid number.
FARMED = (("110101199003071111", "张三"), ("110101199003072222", "李四"),
          ("110101199003073333", "王五"))


def _drain(stream: InProcessStream) -> list[MonitorEvent]:
    return stream.read(10_000, 0.01).events


def test_committed_events_reach_the_stream_with_what_the_scenarios_need(world: World) -> None:
    stream = InProcessStream()
    world.platform.on_commit.append(PlatformPublisher(stream))
    run = world.platform.run
    account, (patient_id,), _ = world.patient_account("li.na")
    _drain(stream)
    session_id = world.session_ids[0]
    view = run(booking.book, account, patient_id, session_id, CTX)
    run(booking.pay, account, view.booking.id or 0, "alipay:li.na@example.com", CTX)
    run(booking.cancel, account, view.booking.id or 0, CTX)
    events = {e.kind: e for e in _drain(stream)}
    assert {"booking.created", "booking.paid", "booking.cancelled"} <= set(events)

    created = events["booking.created"]
    assert (created.account, created.patient, created.session) == (
        str(account.id), str(patient_id), str(session_id))
    assert created.department == str(world.department_id)
    assert created.doctor == str(world.doctor_id)
    assert created.ip == "198.51.100.7" and created.device == "dev-1"
    assert created.channel == "web" and created.release_ts is not None
    paid = events["booking.paid"]
    # The payer is the blind index of who the provider says pays, never the account
    # number itself.
    assert paid.payer == world.platform.keyring.blind_index(
        "payer", world.platform.payments.payer_of("alipay:li.na@example.com"))
    assert "li.na@example.com" not in repr(paid)
    assert len({e.id for e in events.values()}) == len(events)


def test_a_refused_booking_and_a_refused_identity_publish_only_what_committed(
        world: World) -> None:
    stream = InProcessStream()
    world.platform.on_commit.append(PlatformPublisher(stream))
    run = world.platform.run
    account, (patient_id,), _ = world.patient_account("zhao.lei")
    _drain(stream)
    with pytest.raises(NotFound):  # the patient's id on another account: refused
        run(booking.book, account, patient_id + 999, world.session_ids[0], CTX)
    assert _drain(stream) == []
    with pytest.raises(InvalidInput):
        run(accounts.add_patient, account, "110101199003077777", "张三", None, CTX)
    (rejected,) = _drain(stream)
    assert rejected.kind == "identity.rejected"
    assert rejected.detail["reason"] == "invalid_id_number"
    assert "110101199003077777" not in repr(rejected)


def test_the_access_log_and_the_guards_log_are_published_too(world: World) -> None:
    stream = InProcessStream()
    world.platform.on_commit.append(PlatformPublisher(stream))
    at = world.platform.clock.now()
    world.platform.write_events([
        {"at": at, "kind": "access", "account_id": 3, "ip": "203.0.113.5", "device_id": None,
         "patient_id": None, "session_id": None, "booking_id": None,
         "detail": {"method": "GET", "path": "/", "status": 200}},
        {"at": at, "kind": "guard.deny", "account_id": None, "ip": "203.0.113.5",
         "device_id": "d", "patient_id": None, "session_id": None, "booking_id": None,
         "detail": {"reason": "rate_limited", "group": "browsing"}}])
    access, deny = _drain(stream)
    assert (access.kind, access.account, access.detail["status"]) == ("access", "3", 200)
    assert (deny.kind, deny.device, deny.detail["reason"]) == ("guard.deny", "d",
                                                              "rate_limited")


def _embedded_client(world: World, **overrides: Any) -> TestClient:
    import dataclasses

    platform = dataclasses.replace(
        world.platform,
        settings=world.platform.settings.model_copy(update={"monitor_mode": "embedded",
                                                            **overrides}))
    return TestClient(create_app(platform))


def test_the_monitor_inside_serve_alerts_and_the_guard_enforces_its_decision(
        world: World) -> None:
    client = _embedded_client(world, monitor_responses={"bad_identities": ["block 1h"]})
    account, _, token = world.patient_account("farm.01")
    headers = {"Authorization": f"Bearer {token}"}
    with client:
        assert client.app.state.monitoring.mode == "embedded"  # type: ignore[attr-defined]
        for number, name in FARMED:
            r = client.post("/api/v1/me/patients", headers=headers,
                            json={"id_number": number, "name": name})
            assert r.status_code == 422, r.text
        monitoring = client.app.state.monitoring  # type: ignore[attr-defined]
        monitoring.embedded.stop()  # processes what was published, then stops the thread
        (alert,) = [a for a in monitoring.monitor.store.alerts()
                    if a.scenario == "bad_identities"]
        assert str(alert.entity) == f"account:{account.id}"
        # The decision is the guard's: the account's next booking is refused.
        clock = world.platform.clock
        assert isinstance(clock, FixedClock)
        r = client.get(f"/api/v1/sessions/{world.session_ids[0]}/booking-screen",
                       headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "blocked", r.text
        # Another account is not touched by it.
        _, (other_patient,), other = world.patient_account("someone.else")
        r = api_book(client, other, world.session_ids[0], other_patient, clock)
        assert r.status_code == 201, r.text


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_killed_monitors_platform_events_are_taken_over_and_replay_changes_nothing(
        world: World, redis_client: redis.Redis[Any], prefix: str) -> None:
    key = prefix + "stream"
    publisher = RedisStreamPublisher(redis_client, key, maxlen=10_000)
    world.platform.on_commit.append(PlatformPublisher(publisher))
    dead = RedisStreamConsumer(redis_client, key, "monitors", "dead", claim_idle_seconds=0.05)
    dead.ensure_group()
    # Three invalid identities tried from one account: the bad-identities scenario fires.
    account, _, _ = world.patient_account("farm.02")
    for number, name in FARMED:
        with pytest.raises(InvalidInput):
            world.platform.run(accounts.add_patient, account, number, name, None, CTX)
    publisher.flush()
    taken = dead.read(1000, 0.1)  # the dead monitor read them and never acknowledged
    assert any(e.kind == "identity.rejected" for e in taken.events)

    store, book = MemoryStore(), MemoryDecisionBook()
    monitor = make_monitor(settings(monitor_redis_prefix=prefix), clock=world.platform.clock,
                           sink=book, store=store, notify=False, redis_client=redis_client)
    alive = RedisStreamConsumer(redis_client, key, "monitors", "alive",
                                claim_idle_seconds=0.05, claim_every=0.0)
    time.sleep(0.1)  # let the dead monitor's entries pass the claim idle time
    batch = alive.read(1000, 0.1)
    assert sorted(e.id for e in batch.events) == sorted(e.id for e in taken.events)
    monitor.process(batch.events)
    alive.ack(batch)
    alerts = [a for a in store.alerts() if a.scenario == "bad_identities"]
    assert sorted(str(a.entity) for a in alerts) == [f"account:{account.id}", "device:dev-1"]
    decisions = len(book)
    # Replayed (a monitor died after storing, before acknowledging): nothing changes.
    monitor.process(batch.events)
    monitor.process(list(reversed(batch.events)))
    again = [a for a in store.alerts() if a.scenario == "bad_identities"]
    assert [(a.id, a.figures) for a in again] == [(a.id, a.figures) for a in alerts]
    assert len(book) == decisions
    assert redis_client.xpending(key, "monitors")["pending"] == 0


def test_a_decision_made_in_another_process_reaches_the_embedded_servers_guard(
        world: World) -> None:
    import datetime as dt

    from fairslot.monitoring.scenarios import Entity

    client = _embedded_client(world)
    _, _, token = world.patient_account("tout.3")
    headers = {"Authorization": f"Bearer {token}"}
    screen = f"/api/v1/sessions/{world.session_ids[0]}/booking-screen"
    with client:
        monitoring = client.app.state.monitoring  # type: ignore[attr-defined]
        monitoring.sync.stop()  # the test makes the sync's once-a-second reads itself
        # `fairslot monitor decide` in another process: the database, not this guard.
        other = make_monitor(world.platform.settings, clock=world.platform.clock,
                             sink=MemoryDecisionBook(), db=world.platform.engine,
                             notify=False)
        block = other.decide("block", Entity("ip", "testclient"), dt.timedelta(hours=1),
                             "cli:li", "scraping")
        assert client.get(screen, headers=headers).status_code == 200
        monitoring.sync.sync()  # what the server's sync thread does every second
        r = client.get(screen, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "blocked"
        other.lift(block.id or 0, "cli:li", "a hospital proxy after all")
        monitoring.sync.sync()
        assert client.get(screen, headers=headers).status_code == 200


def test_a_servers_booking_screen_and_its_screen_to_action_time_are_published(
        world: World) -> None:
    client = TestClient(create_app(world.platform))
    stream = InProcessStream()
    world.platform.on_commit.append(PlatformPublisher(stream))  # after the app's own hooks
    account, (patient_id,), token = world.patient_account("wang.fang")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    session_id = world.session_ids[0]
    with client:
        r = api_book(client, token, session_id, patient_id, clock)  # 3 s on the screen
        assert r.status_code == 201, r.text
        clock.advance(10)
        booking_id = r.json()["id"]
        r = api_pay(client, token, booking_id, "alipay:wang.fang@example.com", clock)
        assert r.status_code == 200, r.text
    events = _drain(stream)  # the access log is written when the server stops
    (screen,) = [e for e in events if e.kind == "screen.booking"]
    with world.platform.uow() as uow:
        session = uow.schedule.session(session_id)
        assert session is not None
    assert (screen.account, screen.session) == (str(account.id), str(session_id))
    assert screen.release_ts == session.release_at.timestamp()
    created = next(e for e in events if e.kind == "booking.created")
    paid = next(e for e in events if e.kind == "booking.paid")
    # The guard measured each action's token age: the seconds spent on its screen.
    assert created.detail["screen_age_s"] == 3.0
    assert paid.detail["screen_age_s"] == 3.0
    paths = [e.detail["path"] for e in events
             if e.kind == "access" and e.account == str(account.id)]
    assert f"/api/v1/sessions/{session_id}/booking-screen" in paths
    assert "/api/v1/bookings" in paths


def _snipes(events: list[MonitorEvent]) -> list[Finding]:
    engine = Engine(build_scenarios(settings()), MemoryWindows())
    return [f for f in engine.run(sorted(events, key=lambda e: e.ts))
            if f.scenario == "release_snipe"]


def test_a_slot_taken_moments_after_a_cancellation_is_a_snipe_from_its_reopening(
        world: World) -> None:
    """A poller catching freed slots: released a day before, each slot taken 0.3 s after
    another account cancelled it. Measured from the release it is a day late; the booking's
    event says when the slot re-opened, and the snipe is measured from that."""
    stream = InProcessStream()
    world.platform.on_commit.append(PlatformPublisher(stream))
    run = world.platform.run
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    poller, poller_patients, _ = world.patient_account("poller", patients=2)
    cancelled_at = []
    for n, session_id in enumerate(world.session_ids[:2]):
        holder, (holder_patient,), _ = world.patient_account(f"holder{n}")
        held = run(booking.book, holder, holder_patient, session_id, CTX)
        clock.advance(600)
        run(booking.cancel, holder, held.booking.id or 0, CTX)
        cancelled_at.append(clock.now())
        with world.platform.uow() as uow:
            freed = uow.db.execute(sa.select(t.slots.c.freed_at, t.slots.c.taken).where(
                t.slots.c.id == held.booking.slot_id)).one()
        assert freed == (clock.now(), False)  # back in the pool, stamped
        clock.advance(0.3)
        taken = run(booking.book, poller, poller_patients[n], session_id,
                    RequestContext(ip="198.51.100.99", device_id="poll-1"))
        assert taken.booking.slot_id == held.booking.slot_id  # the freed slot itself
        clock.advance(3600)
    events = _drain(stream)
    created = [e for e in events if e.kind == "booking.created"]
    holders, caught = created[0::2], created[1::2]
    assert all("freed_ts" not in e.detail for e in holders)  # free since the release
    # A cancellation names the slot it let go, the one the next booking took (``launder``
    # pairs only a booking of that very slot with it).
    cancels = [e for e in events if e.kind == "booking.cancelled"]
    assert [e.detail["slot"] for e in cancels] == [e.detail["slot"] for e in caught]
    assert [e.detail["freed_ts"] for e in caught] == [at.timestamp() for at in cancelled_at]
    assert all(e.ts - (e.release_ts or 0) > 3600 for e in caught)  # long after release
    # The stored event row carries it too (the records export reads it from there).
    with world.platform.uow() as uow:
        stored = uow.db.execute(sa.select(t.events.c.detail).where(
            t.events.c.kind == "booking.created").order_by(t.events.c.id)).scalars().all()
    assert [dt.datetime.fromisoformat(d["freed_at"]) for d in stored[1::2]] == cancelled_at
    snipes = _snipes(events)
    assert {f.entity for f in snipes} == {Entity("account", str(poller.id)),
                                          Entity("device", "poll-1")}
    last = snipes[-1]
    assert last.figures["from"] == "reopened"
    assert last.figures["last_s"] == pytest.approx(0.3, abs=0.001)


def test_a_slot_handed_to_the_waitlist_is_no_reopening(platform: Platform,
                                                      clock: FixedClock) -> None:
    """A cancelled draw slot goes to the waitlist's head as an offer: it never re-opens to
    the public, so it is not stamped, no booking is published for it, and a fast payment of
    the offer is no snipe."""
    dw = _draw_world(platform, clock, people=6, capacity=1)
    _enter_all(dw)
    _close_and_draw(dw)
    stream = InProcessStream()
    platform.on_commit.append(PlatformPublisher(stream))
    with platform.uow() as uow:
        winner = uow.bookings.of_session(dw.sessions[0])[0]
        owner = uow.accounts.get(winner.account_id)
    assert owner is not None
    clock.advance(600)
    platform.run(booking.cancel, owner, winner.id or 0, CTX)
    clock.advance(0.3)
    with platform.uow() as uow:
        offered = uow.bookings.active_for(
            next(b.patient_id for b in uow.bookings.of_session(dw.sessions[0])
                 if b.channel.value == "waitlist"), dw.sessions[0])
        freed = uow.db.execute(sa.select(t.slots.c.freed_at, t.slots.c.taken).where(
            t.slots.c.id == winner.slot_id)).one()
        taker = uow.accounts.get(offered.account_id) if offered else None
    assert offered is not None and offered.slot_id == winner.slot_id and taker is not None
    assert freed == (None, True)
    platform.run(booking.pay, taker, offered.id or 0, "alipay:quick@example.com", CTX)
    events = _drain(stream)
    assert "waitlist.offered" in {e.kind for e in events}
    assert not [e for e in events if e.kind == "booking.created"]
    assert _snipes(events) == []

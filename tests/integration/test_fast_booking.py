"""PostgreSQL's fast booking path (migration 0018's functions) against the statements it
replaces: the quota facts it reads are the ones ``QuotaRepository.facts`` reads, over every
kind of fact (bookings in each state, entries of an open round, the account's and the
phone's patients); and a booking made through it is the one the statements make."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
import sqlalchemy as sa

from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.domain.errors import Conflict
from fairslot.domain.residents import make_phone
from fairslot.services import accounts, booking, release, rules
from fairslot.services.context import RequestContext
from fairslot.storage.repositories.quotas import facts_of
from tests.conftest import PASSWORD
from tests.integration.test_quotas_parallel import _move
from tests.integration.test_release import _draw_world

POSTGRES_ONLY = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
"""The functions and the fast path exist on PostgreSQL only."""

CTX = RequestContext(ip="203.0.113.70", device_id="dev-fast")


def _sorted(facts: Any) -> dict[str, Any]:
    return {k: sorted(v) if isinstance(v, list) else v for k, v in vars(facts).items()}


@POSTGRES_ONLY
def test_the_functions_read_the_same_quota_facts_as_the_statements(platform: Any,
                                                                   clock: FixedClock) -> None:
    dw = _draw_world(platform, clock, people=4)
    world = dw.world
    phone = make_phone(random.Random(3))
    family, pids, _ = world.patient_account("fast-family", patients=3, phone=phone)
    # A second account on the same phone (its patients count for the phone's quota).
    other = platform.run(accounts.create_user, "fast-other", PASSWORD,
                         Role.PATIENT, phone, phone_verified=True)
    identity = world.residents.pop()
    other_pid = platform.run(accounts.add_patient, other, identity.id_number, identity.name,
                             None, CTX).id or 0
    made = [platform.run(booking.book, family, pids[0], world.session_ids[0], CTX),
            platform.run(booking.book, family, pids[0], world.session_ids[1], CTX),
            platform.run(booking.book, family, pids[1], world.session_ids[0], CTX),
            platform.run(booking.book, family, pids[2], world.session_ids[1], CTX),
            platform.run(booking.book, other, other_pid, world.session_ids[0], CTX)]
    platform.run(release.enter, family, dw.round_id, pids[0], dw.sessions, CTX)
    # The family moves to a second phone and on to a third, within the quota window: its
    # facts name both, each with the patients it served.
    rng = random.Random(4)
    for number in (make_phone(rng), make_phone(rng)):
        family = _move(platform, family, number)
    # Past states, written as the jobs and the desk would leave them.
    ids = [v.booking.id for v in made]
    now = clock.now()
    with platform.engine.begin() as conn:
        for booking_id, values in zip(ids[1:4], (
                {"status": "no_show", "closed_at": now - dt.timedelta(days=3)},
                {"status": "expired", "closed_at": now - dt.timedelta(days=1)},
                {"status": "cancelled", "late_cancel": True,
                 "cancelled_at": now - dt.timedelta(hours=5)}), strict=True):
            conn.execute(sa.text("UPDATE bookings SET " + ", ".join(
                f"{k} = :{k}" for k in values) + " WHERE id = :id"), {**values, "id": booking_id})
    clock.advance(60)
    seen: set[str] = set()
    phones = 0
    for pid in (*pids, other_pid):
        for session_id in (world.session_ids[0], None):
            for account in (family, other, None):
                with platform.uow() as uow:
                    query = rules.facts_query(uow, platform.deps, account,
                                              session_id=session_id)
                    expected = uow.quotas.facts(pid, **query)
                    _, rows = uow.bookings.read_for_booking(
                        [], account.id or 0 if account else 0, pid,
                        world.session_ids[0], query)
                    assert _sorted(facts_of(rows)) == _sorted(expected), (pid, account)
                    seen |= {k for k, v in vars(expected).items() if v}
                    phones = max(phones, len(expected.phones))
    # Every kind of fact was there to compare.
    assert seen == set(vars(expected)), set(vars(expected)) - seen
    assert phones == 2


@POSTGRES_ONLY
def test_a_booking_made_on_the_fast_path_holds_its_slot_event_and_quota(
        platform: Any, clock: FixedClock) -> None:
    dw = _draw_world(platform, clock, people=1)
    world = dw.world
    family, (pid,), _ = world.patient_account("fast-one")
    view = platform.run(booking.book, family, pid, world.session_ids[0], CTX)
    with platform.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT b.status, b.slot_id, s.taken, e.kind, e.ip, e.device_id, e.detail::text"
            " FROM bookings b JOIN slots s ON s.id = b.slot_id"
            " JOIN events e ON e.booking_id = b.id WHERE b.id = :id"),
            {"id": view.booking.id}).one()
    assert row[0] == "held" and row[2] is True and row[1] == view.booking.slot_id
    assert row[3:6] == ("booking.created", "203.0.113.70", "dev-fast")
    assert f'"slot": {view.booking.slot_id}' in row[6] and '"channel": "web"' in row[6]


def _book_in_autocommit(platform: Any, account: Any, pid: int, session_id: int,
                        ctx: RequestContext) -> Any:
    """As ``POST /bookings`` runs the use case: the unit of work in autocommit first."""
    with platform.uow() as uow:
        uow.autocommit()
        return booking.book(uow, platform.deps, account, pid, session_id, ctx)


def test_in_autocommit_a_held_booking_commits_with_its_notice_and_a_refusal_writes_nothing(
        world: Any) -> None:
    platform = world.platform
    family, (first, second), _ = world.patient_account("fast-review", patients=2)
    held = _book_in_autocommit(platform, family, first, world.session_ids[0],
                               RequestContext(ip="203.0.113.71", held_for_review=("monitor-1",)))
    assert held.booking.review == "pending"
    with platform.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT review FROM bookings WHERE id = :id"),
                            {"id": held.booking.id}).scalar_one() == "pending"
        assert conn.execute(sa.text(
            "SELECT count(*) FROM notifications WHERE account_id = :a AND kind = 'booking.review'"),
            {"a": family.id}).scalar_one() == 1
    # The same patient in the same session again: refused, and nothing written.
    with pytest.raises(Conflict) as refused:
        _book_in_autocommit(platform, family, first, world.session_ids[0], CTX)
    assert refused.value.code == "already_booked"
    plain = _book_in_autocommit(platform, family, second, world.session_ids[0], CTX)
    with platform.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM bookings")).scalar_one() == 2
        assert conn.execute(sa.text(
            "SELECT count(*) FROM events WHERE kind = 'booking.created'")).scalar_one() == 2
    assert plain.booking.review is None and plain.slot_number == 2

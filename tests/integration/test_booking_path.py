"""The booking request's database cost, and calls to the payment provider made outside the
transaction with nothing lost when they fail."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.domain.booking import BookingStatus
from fairslot.domain.errors import Conflict
from fairslot.domain.schedule import Period
from fairslot.services import accounts, booking, catalog, outbox
from fairslot.services.context import RequestContext
from fairslot.services.payments import PaymentFailed, TestPaymentProvider, identify_payer
from fairslot.web.app import create_app
from tests.conftest import World

CTX = RequestContext(ip="203.0.113.60")


class _Meter:
    """Statements executed and connections checked out by the request's threads (the access
    log's writer thread, which batches rows in the background, is not the request's)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements: list[str] = []
        self.checkouts = 0
        self.on = False
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine.pool, "checkout", self._checkout)

    def _mine(self) -> bool:
        return self.on and threading.current_thread().name != "fairslot-access-log"

    def _statement(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        if self._mine():
            self.statements.append(statement.split()[0].upper() + " " + statement[:60])

    def _checkout(self, *args: object) -> None:
        if self._mine():
            self.checkouts += 1


@pytest.fixture
def meter(world: World) -> Iterator[_Meter]:
    yield _Meter(world.platform.engine)


class _Trips:
    """PostgreSQL: the messages the request's pooled connection exchanged with the server
    (libpq's protocol trace, from checkout to check-in); a round trip ends with the
    server's ``ReadyForQuery``. The booking's fast path sends two of its statements, or a
    statement and the commit, in one message, past SQLAlchemy's statement events."""

    def __init__(self, engine: sa.Engine, trace: IO[str]) -> None:
        self.on = False
        self.trace = trace
        sa.event.listen(engine.pool, "checkout", self._checkout)
        sa.event.listen(engine.pool, "checkin", self._checkin)

    def _checkout(self, dbapi_connection: object, *args: object) -> None:
        if self.on and threading.current_thread().name != "fairslot-access-log":
            pgconn = dbapi_connection.pgconn  # type: ignore[attr-defined]
            pgconn.trace(self.trace.fileno())
            pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def _checkin(self, dbapi_connection: object, *args: object) -> None:
        with contextlib.suppress(AttributeError):
            dbapi_connection.pgconn.untrace()  # type: ignore[attr-defined]

    def queries(self) -> list[str]:
        """The texts of the simple-protocol queries sent (SQLAlchemy's statements go as
        ``Parse``/``Bind`` messages instead)."""
        self.trace.flush()
        self.trace.seek(0)
        return [line.split("\t", 3)[3].strip().strip('"')
                for line in self.trace.read().splitlines()
                if line.startswith("F\t") and line.split("\t")[2] == "Query"]

    def round_trips(self) -> int:
        self.trace.seek(0)
        return sum("\tReadyForQuery\t" in line for line in self.trace.read().splitlines())


@pytest.fixture
def trips(world: World) -> Iterator[_Trips | None]:
    if world.platform.dialect != "postgresql":
        yield None
        return
    with tempfile.TemporaryFile("w+") as trace:
        yield _Trips(world.platform.engine, trace)


def test_a_booking_is_three_round_trips_on_postgresql_and_six_statements_on_sqlite(
        world: World, meter: _Meter, trips: _Trips | None) -> None:
    _, (pid,), token = world.patient_account("measured")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    with TestClient(create_app(world.platform)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        screen = client.get(f"/api/v1/sessions/{world.session_ids[0]}/booking-screen",
                            headers=headers).json()
        clock.advance(3)
        meter.on = True
        if trips is not None:
            trips.on = True
        answer = client.post("/api/v1/bookings",
                             json={"session_id": world.session_ids[0], "patient_id": pid},
                             headers={**headers, screen["token_header"]: screen["action_token"]})
        meter.on = False
        if trips is not None:
            trips.on = False
    assert answer.status_code == 201, answer.text
    assert meter.checkouts == 1
    if trips is None:
        # SQLite: the account, the look-up, the quota facts, the slot, the booking and its
        # event, one statement each.
        work = [s for s in meter.statements if not s.startswith(("BEGIN", "COMMIT",
                                                                 "ROLLBACK"))]
        assert len(work) <= 6, work
        return
    # PostgreSQL: the account (in autocommit, no BEGIN of its own); BEGIN with the locked
    # look-up and the quota facts; the hold (slot, booking, event) with the COMMIT.
    queries = trips.queries()
    assert trips.round_trips() == 3, queries
    assert len(queries) == 2, queries
    assert queries[0].startswith("BEGIN; SELECT") and "fairslot_quota_facts(" in queries[0]
    assert "fairslot_hold_booking(" in queries[1] and queries[1].endswith("; COMMIT")


def test_a_booking_screen_is_one_checkout_and_three_reads(world: World,
                                                         meter: _Meter) -> None:
    """The screen a patient opens before booking (at a release, every patient opens it):
    the account, the session at a glance (doctor, free slots, open round) and the account's
    patients, on one pooled connection; then the guard's screens check and the token."""
    _, (pid,), token = world.patient_account("screened")
    with TestClient(create_app(world.platform)) as client:
        meter.on = True
        answer = client.get(f"/api/v1/sessions/{world.session_ids[0]}/booking-screen",
                            headers={"Authorization": f"Bearer {token}"})
        meter.on = False
        missing = client.get("/api/v1/sessions/999999/booking-screen",
                             headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["session"]["id"] == world.session_ids[0] and body["session"]["free"] > 0
    assert [p["id"] for p in body["patients"]] == [pid] and body["action_token"]
    assert meter.checkouts == 1
    reads = [s for s in meter.statements if not s.startswith(("BEGIN", "COMMIT",
                                                              "ROLLBACK"))]
    # On PostgreSQL the account is read on the pooled connection's own cursor, past
    # SQLAlchemy's statement events.
    accounts_read = [] if world.platform.dialect == "postgresql" else reads[:1]
    assert len(reads) == len(accounts_read) + 2, reads
    assert "sessions.id" in reads[-2] and "patients.id" in reads[-1], reads
    assert missing.status_code == 404
    assert missing.json()["code"] == "session_not_found"


class _ReleaseInstant:
    """A clock at ``release_at`` minus a microsecond for its first reading and at
    ``release_at`` for every later one: a screen opened at the release instant."""

    def __init__(self, release_at: dt.datetime) -> None:
        self.readings = [release_at - dt.timedelta(microseconds=1)]
        self.release_at = release_at

    def now(self) -> dt.datetime:
        return self.readings.pop(0) if self.readings else self.release_at

    def monotonic(self) -> float:
        return self.now().timestamp()


def test_a_screen_at_the_release_instant_never_issues_a_token_for_an_unreleased_view(
        world: World) -> None:
    """The session is checked and shown as of one reading of the clock: either the screen
    is refused as not released, or it shows the session released (never a token beside
    "not released, no free slots")."""
    platform = world.platform
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    later, = platform.run(catalog.schedule_sessions, world.doctor_id,
                          [today + dt.timedelta(days=5)], [Period.AFTERNOON], 5, 5000,
                          release_days_before=1)
    deps = dataclasses.replace(platform.deps,
                               clock=_ReleaseInstant(later.release_at))
    with platform.uow() as uow, pytest.raises(Conflict) as refused:
        booking.bookable_view(uow, deps, later.id or 0)
    assert refused.value.code == "not_released"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_an_entry_through_the_api_is_three_round_trips_on_postgresql(
        platform: Platform, clock: FixedClock) -> None:
    from tests.integration.test_release import _draw_world

    # Round trips are PostgreSQL's (on SQLite, test_release.py counts the statements).
    dw = _draw_world(platform, clock, people=2)
    with tempfile.TemporaryFile("w+") as trace, TestClient(create_app(platform)) as client:
        trips = _Trips(platform.engine, trace)
        answers = []
        for n, (account, pid) in enumerate(dw.patients):
            token = platform.run(accounts.issue_token, account.id or 0)
            headers = {"Authorization": f"Bearer {token}"}
            screen = client.get(f"/api/v1/rounds/{dw.round_id}/entry-screen",
                                headers=headers).json()
            clock.advance(3)
            trips.on = n == 1  # the first entry reads the round's opening, once per process
            answers.append(client.post(
                f"/api/v1/rounds/{dw.round_id}/entries",
                json={"patient_id": pid, "choices": dw.sessions},
                headers={**headers, screen["token_header"]: screen["action_token"]}))
            trips.on = False
        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        # The account (in autocommit, no BEGIN of its own); BEGIN with the locked look-up
        # and the quota facts; the entry, its event and its receipt with the COMMIT.
        queries = trips.queries()
        assert trips.round_trips() == 3, queries
        assert len(queries) == 2, queries
        assert queries[0].startswith("BEGIN; SELECT") and "fairslot_entry_target(" in queries[0]
        assert "fairslot_add_entry(" in queries[1] and queries[1].endswith("; COMMIT")
    with platform.uow() as uow:
        entries = uow.rounds.live_entries(dw.round_id)
        assert sorted(e.patient_id for e in entries) == sorted(p for _, p in dw.patients)
        receipts = uow.draw.latest_receipts([e.id for e in entries])
        assert {e.id: receipts[e.id]["ref"] for e in entries} == {e.id: e.ref for e in entries}


def test_a_refund_goes_through_the_provider_and_a_failed_one_is_retried(world: World) -> None:
    platform = world.platform
    provider = platform.payments
    assert isinstance(provider, TestPaymentProvider)
    account, (pid,), _ = world.patient_account("refunded")
    view = platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    platform.run(booking.pay, account, view.booking.id or 0, "wechat:wxid_refund", CTX)
    assert len(provider.charges) == 1
    provider.fail_next_refunds = 1
    cancelled = platform.run(booking.cancel, account, view.booking.id or 0, CTX)
    assert cancelled.booking.status is BookingStatus.REFUNDED
    assert provider.refunds == {}  # the provider was down: nothing refunded yet...
    with platform.uow() as uow:
        assert [i.kind for i in uow.outbox.pending()] == [outbox.REFUND]
    assert platform.run_job(outbox.run_due) == 0  # ...and not retried before its time
    clock = platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(60)
    assert platform.run_job(outbox.run_due) == 1
    assert len(provider.refunds) == 1
    with platform.uow() as uow:
        assert uow.outbox.pending() == []


def test_a_declined_charge_leaves_the_booking_awaiting_payment(world: World) -> None:
    platform = world.platform
    provider = platform.payments
    assert isinstance(provider, TestPaymentProvider)
    account, (pid,), _ = world.patient_account("declined")
    view = platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    provider.fail_next_charges = 1
    with pytest.raises(PaymentFailed):
        platform.run(booking.pay, account, view.booking.id or 0, "card:6222020000001111", CTX)
    again = platform.run(booking.get_booking, account, view.booking.id or 0)
    assert again.booking.status is BookingStatus.HELD and again.booking.paid_at is None
    paid = platform.run(booking.pay, account, view.booking.id or 0, "card:6222020000001111",
                        CTX)
    assert paid.booking.status is BookingStatus.PAID and len(provider.charges) == 1


def test_a_charge_left_pending_by_a_crash_is_completed_by_the_scheduler(world: World) -> None:
    platform = world.platform
    provider = platform.payments
    assert isinstance(provider, TestPaymentProvider)
    account, (pid,), _ = world.patient_account("crashed")
    view = platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    # The process dies right after the payment's transaction commits: the charge was never
    # attempted (simulated by recording the payment without running its outbox item).
    with platform.uow() as uow:
        held = uow.bookings.get_for_update(view.booking.id or 0)
        assert held is not None
        payer = identify_payer(platform.payments, "alipay:crash@x.cn")
        booking._record_payment(uow, platform.deps, held, payer, account, CTX)
        uow.commit()
    assert provider.charges == {}
    assert platform.run_job(outbox.run_due) == 1
    assert len(provider.charges) == 1
    with platform.uow() as uow:
        payment = uow.bookings.payment_of(view.booking.id or 0)
        assert payment is not None and payment.provider_ref is not None


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_booking_by_an_account_that_moved_phones_starts_again_once_holding_every_lock(
        world: World, trips: _Trips | None) -> None:
    """Its quota facts name the phone it moved off, whose lock the first message did not
    take: it rolls back and sends the first message again with every lock (two round trips
    more than an account on one phone, for such an account only)."""
    from tests.integration.test_quotas_parallel import _mover_and_stayer

    assert trips is not None
    mover, (pid,), _, _ = _mover_and_stayer(world, patients=1)
    trips.on = True
    with world.platform.uow() as uow:
        uow.autocommit()
        booking.book(uow, world.platform.deps, mover, pid, world.session_ids[0], CTX)
    trips.on = False
    queries = trips.queries()
    assert trips.round_trips() == 4, queries
    assert len(queries) == 4, queries
    first, rollback, again, hold = queries
    assert first.startswith("BEGIN; SELECT") and again.startswith("BEGIN; SELECT")
    assert rollback == "ROLLBACK"
    assert "fairslot_hold_booking(" in hold and hold.endswith("; COMMIT")

    def locks(query: str) -> int:
        keys = query.split("fairslot_booking_target(", 1)[1].split("::bigint[]", 1)[0]
        return keys.count(",") + 1

    # The patient, the account and its phone; then the phone it moved off as well.
    assert (locks(first), locks(again)) == (3, 4), (first, again)

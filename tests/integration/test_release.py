"""Fair release end to end on the real services: the window, the draw, the waitlist, and
that a cancelled slot can never be caught by someone else (一退一抢)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
import threading

import pytest
import sqlalchemy as sa

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.domain.accounts import Account
from fairslot.domain.draw.verify import DEFAULT_TRUST, Trust, verify_document
from fairslot.domain.errors import FairslotError
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.storage import tables as t
from tests.conftest import World, build_world, make_settings
from tests.integration.test_booking_path import _Trips

CTX = RequestContext(ip="203.0.113.50")


def trust(platform: Platform) -> Trust:
    """Trust the test platform's local chain (a verifier trusts only chains it is told)."""
    return DEFAULT_TRUST.with_keys([platform.deps.beacons.chain.hash.hex()])


@dataclasses.dataclass
class DrawWorld:
    world: World
    clock: FixedClock
    round_id: int
    sessions: list[int]
    patients: list[tuple[Account, int]]

    @property
    def platform(self) -> Platform:
        return self.world.platform


def _draw_world(platform: Platform, clock: FixedClock, *, people: int = 10,
                capacity: int = 2) -> DrawWorld:
    world = build_world(platform, residents=people + 20)
    doctor = platform.run(catalog.create_doctor, world.department_id, "张华", "主任医师", "心衰",
                                   release_policy=ReleasePolicy.DRAW, hot=True)
    today = clock.now().astimezone(platform.settings.zone).date()
    sessions = platform.run(catalog.schedule_sessions, doctor.id or 0,
                            [today + dt.timedelta(days=2)], [Period.MORNING, Period.AFTERNOON],
                            capacity, 30000, release_days_before=1)
    assert platform.run_job(release.open_due_rounds) == 1
    with platform.uow() as uow:
        round_id = uow.rounds.round_of_session(sessions[0].id or 0)
    assert round_id is not None
    patients = []
    for n in range(people):
        account, (pid,), _ = world.patient_account(f"entrant{n:02d}")
        patients.append((account, pid))
    return DrawWorld(world, clock, round_id, [s.id or 0 for s in sessions], patients)


@pytest.fixture
def dw(platform: Platform, clock: FixedClock) -> DrawWorld:
    return _draw_world(platform, clock)


def _enter_all(dw: DrawWorld) -> None:
    for n, (account, pid) in enumerate(dw.patients):
        choices = dw.sessions if n % 2 == 0 else list(reversed(dw.sessions))
        dw.platform.run(release.enter, account, dw.round_id, pid, choices, CTX)


def _freeze_and_wait_for_the_beacon(dw: DrawWorld) -> None:
    view = dw.platform.run(release.round_view, dw.round_id)
    dw.clock.set(view.round.closes_at)
    assert dw.platform.run(release.freeze_round, dw.round_id)
    due = dw.platform.run(release.round_view, dw.round_id).stage.beacon_due_at
    assert due is not None
    dw.clock.set(due)


def _close_and_draw(dw: DrawWorld) -> None:
    """Close the window (the list is frozen at once), then let the clock reach the beacon
    round's time (the draw runs)."""
    view = dw.platform.run(release.round_view, dw.round_id)
    dw.clock.set(view.round.closes_at)
    assert dw.platform.run_job(release.draw_due_rounds) == 0  # frozen, beacon not out yet
    frozen = dw.platform.run(release.round_view, dw.round_id).stage
    assert frozen.stage == "frozen" and frozen.beacon_due_at is not None
    dw.clock.set(frozen.beacon_due_at)
    assert dw.platform.run_job(release.draw_due_rounds) == 1


def test_the_round_publishes_its_commitment_and_keeps_the_seed_until_the_draw(
        dw: DrawWorld) -> None:
    view = dw.platform.run(release.round_view, dw.round_id)
    assert view.round.status == "open" and len(view.round.commitment) == 64
    assert view.round.revealed_seed is None and view.entries == []
    _enter_all(dw)
    assert dw.platform.run(release.round_view, dw.round_id).entries_count == 10
    document = dw.platform.run(release.export_round_document, dw.round_id)
    assert document["opening"]["commitment"] == view.round.commitment
    assert document["entries"] is None and document["result"] is None
    assert view.round.seed not in json.dumps(document)
    assert verify_document(document, trust=trust(dw.platform)).status == "pending"


def test_the_draw_gives_capacity_winners_held_bookings_and_verifies(dw: DrawWorld) -> None:
    _enter_all(dw)
    _close_and_draw(dw)
    view = dw.platform.run(release.round_view, dw.round_id)
    assert view.round.status == "drawn" and view.round.revealed_seed is not None
    outcomes = [e.outcome for e in view.entries]
    assert outcomes.count("won") == 4 and outcomes.count("waitlist") == 6
    with dw.platform.uow() as uow:
        held = [b for sid in dw.sessions for b in uow.bookings.of_session(sid)]
    assert len(held) == 4 and {b.status.value for b in held} == {"held"}
    document = dw.platform.run(release.export_round_document, dw.round_id)
    report = verify_document(document, trust=trust(dw.platform))
    assert report.ok, report.reasons
    assert len(document["results"]["winners"]) == 4
    document["result"]["seed"] = "00" * 32
    assert not verify_document(document, trust=trust(dw.platform)).ok


def test_entering_is_idempotent_changeable_and_one_per_patient(dw: DrawWorld) -> None:
    account, pid = dw.patients[0]
    first = dw.platform.run(release.enter, account, dw.round_id, pid, [dw.sessions[0]], CTX,
                          idempotency_key="k-1")
    again = dw.platform.run(release.enter, account, dw.round_id, pid, [dw.sessions[1]], CTX,
                          idempotency_key="k-1")
    assert again == first
    changed = dw.platform.run(release.enter, account, dw.round_id, pid, dw.sessions, CTX)
    assert changed.id == first.id and changed.entry.choices == tuple(dw.sessions)
    dw.platform.run(release.withdraw, account, first.id, CTX)
    assert dw.platform.run(release.round_view, dw.round_id).entries_count == 0
    with pytest.raises(FairslotError) as bad:
        dw.platform.run(release.enter, account, dw.round_id, pid, [dw.sessions[0]] * 2, CTX)
    assert bad.value.code == "invalid_choices"


def test_entering_after_the_window_closes_is_refused(dw: DrawWorld) -> None:
    view = dw.platform.run(release.round_view, dw.round_id)
    dw.clock.set(view.round.closes_at)
    account, pid = dw.patients[0]
    with pytest.raises(FairslotError) as late:
        dw.platform.run(release.enter, account, dw.round_id, pid, [dw.sessions[0]], CTX)
    assert late.value.code == "window_closed"


def test_entering_an_unknown_round_another_accounts_patient_or_a_foreign_session_is_refused(
        dw: DrawWorld) -> None:
    (account, pid), (_, other_pid) = dw.patients[:2]
    refusals = []
    for round_id, patient_id, choices in (
            (dw.round_id + 1000, pid, [dw.sessions[0]]),
            (dw.round_id, other_pid, [dw.sessions[0]]),
            (dw.round_id, pid, [dw.sessions[0], dw.sessions[1] + 1000])):
        with pytest.raises(FairslotError) as refused:
            dw.platform.run(release.enter, account, round_id, patient_id, choices, CTX)
        refusals.append(refused.value.code)
    assert refusals == ["round_not_found", "patient_not_found", "invalid_choices"]
    with dw.platform.uow() as uow:
        assert uow.rounds.live_entries(dw.round_id) == []
    # Nothing was left locked: the patient enters at once.
    view = dw.platform.run(release.enter, account, dw.round_id, pid, dw.sessions, CTX)
    assert view.entry.choices == tuple(dw.sessions) and view.receipt is not None


def _waitlist(dw: DrawWorld) -> list[tuple[int, int, list[int]]]:
    with dw.platform.uow() as uow:
        rows = uow.rounds.all_entries(dw.round_id)
    waiting = sorted((e for e in rows if e.outcome == "waitlist"), key=lambda e: e.position)
    return [(e.patient_id, e.account_id, [int(c) for c in e.choices]) for e in waiting]


def test_a_cancelled_slot_always_goes_to_the_waitlist_head_never_to_a_polling_bot(
        dw: DrawWorld) -> None:
    """一退一抢: the holder cancels while the buyer's bot hammers the booking endpoint."""
    _enter_all(dw)
    _close_and_draw(dw)
    buyer_account, (buyer,), _ = dw.world.patient_account("buyer")
    with dw.platform.uow() as uow:
        winners = [b for sid in dw.sessions for b in uow.bookings.of_session(sid)]
    for holder in winners:
        session_id = holder.session_id
        expected = next(p for p, _, choices in _waitlist(dw) if session_id in choices)
        with dw.platform.uow() as uow:
            account = uow.accounts.get(holder.account_id)
        assert account is not None
        stop = threading.Event()
        caught: list[str] = []

        def bot(stop: threading.Event, session_id: int, caught: list[str]) -> None:
            while not stop.is_set():
                try:
                    dw.platform.run(booking.book, buyer_account, buyer, session_id, CTX)
                    caught.append("booked")
                except FairslotError as exc:
                    caught.append(exc.code)

        thread = threading.Thread(target=bot, args=(stop, session_id, caught))
        thread.start()
        dw.clock.advance(60)
        dw.platform.run(booking.cancel, account, holder.id or 0, CTX)
        dw.clock.advance(1)
        stop.set()
        thread.join()
        assert "booked" not in caught and caught
        with dw.platform.uow() as uow:
            now_holding = uow.bookings.active_for(expected, session_id)
            slot_row = uow.db.execute(sa.select(t.slots.c.taken).where(
                t.slots.c.id == holder.slot_id)).scalar_one()
        assert now_holding is not None and now_holding.slot_id == holder.slot_id
        assert now_holding.channel.value == "waitlist" and slot_row is True


def test_an_unanswered_offer_moves_on_and_an_exhausted_waitlist_goes_to_a_short_window(
        platform: Platform, clock: FixedClock) -> None:
    dw = _draw_world(platform, clock, people=3, capacity=1)
    _enter_all(dw)
    _close_and_draw(dw)
    # Both winners let their holds lapse: one slot is offered to the one waitlisted entrant,
    # the other has nobody left and goes to a short request window. Then the offer lapses.
    for _ in range(2):
        clock.advance(5 * 3600)
        platform.run_job(booking.expire_overdue)
    with platform.uow() as uow:
        slots = uow.db.execute(sa.select(t.slots.c.session_id, t.slots.c.taken,
                                         t.slots.c.open_from)
                               .where(t.slots.c.session_id.in_(dw.sessions))).all()
        short = {sid: uow.rounds.rounds_of_session(sid)[1:] for sid in dw.sessions}
    assert all(not s.taken for s in slots)
    assert all(len(r) == 1 for r in short.values())  # one short window per freed slot
    late_account, (late,), _ = dw.world.patient_account("latecomer")
    # The offer lapsed just now: its slot's window is the one open now.
    views = {sid: platform.run(release.round_view, r[0]) for sid, r in short.items()}
    (sid,) = [sid for sid, v in views.items() if v.round.is_open_at(clock.now())]
    with pytest.raises(FairslotError) as early:
        platform.run(booking.book, late_account, late, sid, CTX)
    assert early.value.code == "request_window"
    platform.run(release.enter, late_account, short[sid][0], late, [sid], CTX)
    # The short window is frozen at its close and drawn with the beacon its opening named.
    clock.advance(platform.settings.request_window_minutes * 60)
    platform.run_job(release.draw_due_rounds)  # (the other slot's window, long closed, is drawn)
    stage = platform.run(release.round_view, short[sid][0]).stage
    assert stage.stage == "frozen" and stage.beacon_due_at is not None
    clock.set(stage.beacon_due_at)
    assert platform.run_job(release.draw_due_rounds) == 1
    with platform.uow() as uow:
        won = uow.bookings.active_for(late, sid)
    assert won is not None and won.status.value == "held"


def test_a_draw_that_fails_half_way_leaves_no_trace_and_runs_again(dw: DrawWorld) -> None:
    _enter_all(dw)
    # Sabotage: one slot of a drawn session is taken behind the draw's back.
    with dw.platform.engine.begin() as conn:
        conn.execute(sa.update(t.slots).where(t.slots.c.session_id == dw.sessions[1])
                     .values(taken=True))
    _freeze_and_wait_for_the_beacon(dw)
    with pytest.raises(RuntimeError):
        dw.platform.run(release.draw_round, dw.round_id)
    with dw.platform.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(t.bookings)) == 0
        assert conn.scalar(sa.select(t.release_rounds.c.status)) == "open"
    with dw.platform.engine.begin() as conn:
        conn.execute(sa.update(t.slots).values(taken=False))
    assert dw.platform.run(release.draw_round, dw.round_id)
    assert dw.platform.run(release.export_round_document, dw.round_id)["results"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_schedulers_racing_on_one_round_make_one_draw(dw: DrawWorld) -> None:
    _enter_all(dw)
    _freeze_and_wait_for_the_beacon(dw)
    other = bootstrap(make_settings(database_url=str(dw.platform.engine.url.render_as_string(
        hide_password=False))), clock=dw.clock)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def run(platform: Platform) -> None:
        barrier.wait()
        results.append(platform.run(release.draw_round, dw.round_id))

    threads = [threading.Thread(target=run, args=(p,)) for p in (dw.platform, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.engine.dispose()
    assert sorted(results) == [False, True]
    with dw.platform.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(t.bookings)) == 4


def test_a_no_show_suspends_booking_and_entering_for_30_days(dw: DrawWorld) -> None:
    world = dw.world
    account, (pid,), _ = world.patient_account("absent")
    view = dw.platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    dw.platform.run(booking.pay, account, view.booking.id or 0, "alipay:absent01", CTX)
    dw.clock.set(view.session.ends_at + dt.timedelta(hours=1))
    assert dw.platform.run_job(booking.record_no_shows) == 1
    with pytest.raises(FairslotError) as suspended:
        dw.platform.run(booking.book, account, pid, world.session_ids[1], CTX)
    assert suspended.value.code == "credit_suspended"
    assert "30 days" in suspended.value.detail and suspended.value.extra["until"]


def test_the_active_bookings_quota_names_itself(platform: Platform, clock: FixedClock) -> None:
    world = build_world(platform)
    today = clock.now().astimezone(platform.settings.zone).date()
    more = platform.run(catalog.schedule_sessions, world.doctor_id,
                        [today + dt.timedelta(days=d) for d in (3, 4, 5)], [Period.MORNING], 10,
                        5000, release_days_before=5)
    account, (pid,), _ = world.patient_account("greedy")
    sessions = world.session_ids + [s.id or 0 for s in more]
    for sid in sessions[:4]:
        platform.run(booking.book, account, pid, sid, CTX)
    with pytest.raises(FairslotError) as quota:
        platform.run(booking.book, account, pid, sessions[4], CTX)
    assert quota.value.code == "quota_active_bookings"
    assert "active bookings per patient" in quota.value.detail


def test_the_desk_enters_a_walk_in_patient_who_then_cannot_be_entered_twice(
        dw: DrawWorld) -> None:
    from fairslot.domain.accounts import Role

    desk = dw.world.staff[Role.REGISTRATION]
    elderly = dw.world.residents.pop()
    entry = dw.platform.run(release.enter_at_desk, desk, dw.round_id, elderly.id_number,
                                  elderly.name, [dw.sessions[0]], CTX)
    assert entry.entry.outcome is None and entry.entry.choices == (dw.sessions[0],)
    assert dw.platform.run(release.round_view, dw.round_id).entries_count == 1
    account, _ = dw.patients[0]
    from fairslot.services.accounts import add_patient

    relative = dw.platform.run(add_patient, account, elderly.id_number, elderly.name, None,
                               CTX)
    with pytest.raises(FairslotError) as twice:
        dw.platform.run(release.enter, account, dw.round_id, relative.id or 0, [dw.sessions[1]],
                      CTX)
    assert twice.value.code == "already_entered"
    import random

    from fairslot.domain.residents import make_residents

    stranger = make_residents(random.Random(404), 1)[0]
    with pytest.raises(FairslotError) as unknown:
        dw.platform.run(release.enter_at_desk, desk, dw.round_id, stranger.id_number,
                              stranger.name, [dw.sessions[0]], CTX)
    assert unknown.value.code == "identity_not_verified"


def test_the_desk_sees_its_walk_in_patients_wins_until_they_are_paid(
        platform: Platform, clock: FixedClock) -> None:
    from fairslot.domain.accounts import Role

    # Capacity for everyone, so the walk-in patient wins for sure.
    dw = _draw_world(platform, clock, people=2, capacity=3)
    desk = dw.world.staff[Role.REGISTRATION]
    elderly = dw.world.residents.pop()
    dw.platform.run(release.enter_at_desk, desk, dw.round_id, elderly.id_number, elderly.name,
                          [dw.sessions[0]], CTX)
    _enter_all(dw)
    assert dw.platform.run(booking.desk_awaiting_payment) == []  # nothing won yet
    _close_and_draw(dw)
    waiting = dw.platform.run(booking.desk_awaiting_payment)
    # Only the desk's entrant: the online patients' wins are in their own inboxes.
    assert [v.patient.name for v in waiting] == [elderly.name]
    assert waiting[0].booking.session_id == dw.sessions[0]
    dw.platform.run(booking.pay, desk, waiting[0].booking.id or 0, "card:6222000011112222", CTX)
    assert dw.platform.run(booking.desk_awaiting_payment) == []


def test_an_entry_at_the_peak_is_three_round_trips_on_postgresql_and_six_statements_on_sqlite(
        dw: DrawWorld) -> None:
    # Not one more read per entry than it needs: on SQLite the patient's locks (and that
    # the account manages the patient), then the round, the choices, the first choice's
    # start and the patient's entry so far in one read, then the quotas' facts, then the
    # entry, its event and its receipt. On PostgreSQL (migration 0020's functions) the
    # same reads go in one message and the write with the COMMIT in a second, after
    # psycopg's BEGIN (through the API the account's look-up, in autocommit, takes its
    # place: tests/integration/test_booking_path.py). The round's opening digest, which
    # never changes, is read once.
    (first, first_pid), (second, second_pid) = dw.patients[:2]
    dw.platform.run(release.enter, first, dw.round_id, first_pid, dw.sessions, CTX)
    statements: list[str] = []
    postgres = dw.platform.engine.dialect.name == "postgresql"

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        if threading.current_thread() is threading.main_thread():
            statements.append(statement)

    sa.event.listen(dw.platform.engine, "before_cursor_execute", note)
    with tempfile.TemporaryFile("w+") as trace:
        trips = _Trips(dw.platform.engine, trace) if postgres else None
        if trips is not None:
            trips.on = True
        try:
            view = dw.platform.run(release.enter, second, dw.round_id, second_pid,
                                   dw.sessions, CTX)
        finally:
            sa.event.remove(dw.platform.engine, "before_cursor_execute", note)
            if trips is not None:
                trips.on = False
        if trips is not None:
            queries = trips.queries()
            assert trips.round_trips() == 3, queries
            assert len(queries) == 3 and queries[0] == "BEGIN", queries  # psycopg's own
            assert "fairslot_entry_target(" in queries[-2]
            assert "fairslot_quota_facts(" in queries[-2]
            assert "fairslot_add_entry(" in queries[-1] and queries[-1].endswith("; COMMIT")
            assert statements == [], statements  # nothing through SQLAlchemy

    assert view.entry.patient_id == second_pid and view.receipt is not None
    if not postgres:
        work = [s for s in statements if not s.lstrip().upper().startswith(
            ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"))]
        assert len(work) <= 6, work
    with dw.platform.uow() as uow:
        assert uow.draw.latest_receipts([view.entry.id]) == {view.entry.id: view.receipt}
        assert uow.events.of_account_since(second.id or 0, "entry.created",
                                           view.entry.created_at)
        assert uow.rounds.entry(view.entry.id) == view.entry

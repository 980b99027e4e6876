"""No first-come-first-served for a scarce slot (issue 18): a slot that frees up with nobody
waiting, an unpaid hold that lapses, a draw's leftover and a late-scheduled draw session all
go through a short request window and a draw among everyone who asked. Each test plays the
attack that won before (a poller, a re-holder, a launderer) and shows it now gains nothing
over a patient who looks every few minutes."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.domain.draw.verify import verify_document
from fairslot.domain.errors import FairslotError
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import booking, catalog, release
from fairslot.storage import tables as t
from tests.conftest import build_world
from tests.integration.test_release import CTX, _close_and_draw, _draw_world, trust

WINDOW = 10  # request_window_minutes, the default


def _code(fn: object, *args: object) -> str:
    try:
        fn(*args)  # type: ignore[operator]
    except FairslotError as exc:
        return exc.code
    return "ok"


def _rounds_of(platform: Platform, session_id: int) -> list[int]:
    with platform.uow() as uow:
        return uow.rounds.rounds_of_session(session_id)


def _winners(document: dict[str, object]) -> set[str]:
    """The refs the signed results name as winners (lines ``ref session rank``)."""
    results = document["results"]
    assert isinstance(results, dict)
    return {line.split(" ")[0] for line in results["winners"]}


def _draw_short(platform: Platform, clock: FixedClock, round_id: int) -> None:
    """A short round runs like any round: its list is frozen at the close, and it is drawn
    with the (local chain's) beacon its signed opening named, once that is out."""
    view = platform.run(release.round_view, round_id)
    clock.set(view.round.closes_at)
    assert platform.run_job(release.draw_due_rounds) == 0  # frozen, beacon not out yet
    stage = platform.run(release.round_view, round_id).stage
    assert stage.stage == "frozen" and stage.beacon_due_at is not None
    clock.set(stage.beacon_due_at)
    assert platform.run_job(release.draw_due_rounds) >= 1
    assert platform.run(release.round_view, round_id).stage.stage == "drawn"


def test_a_leftover_poller_gains_nothing_over_a_patient_who_looks_every_few_minutes(
        platform: Platform, clock: FixedClock) -> None:
    """Before: a bot polling once a second took 6 of 6 re-opened slots 37-96 ms after each
    re-opened. Now the slot is in a window; the bot's polling books nothing, and the draw,
    not the order or speed of asking, decides between it and a patient who came 4 min in."""
    dw = _draw_world(platform, clock, people=2, capacity=1)
    for account, pid in dw.patients:
        platform.run(release.enter, account, dw.round_id, pid, dw.sessions, CTX)
    _close_and_draw(dw)  # two entrants, two slots: both win, nobody is left waiting
    bot_account, (bot,), _ = dw.world.patient_account("poller")
    patient_account, (patient,), _ = dw.world.patient_account("patient")
    with platform.uow() as uow:
        holders = [b for sid in dw.sessions for b in uow.bookings.of_session(sid)]
    for holder in holders:
        with platform.uow() as uow:
            owner = uow.accounts.get(holder.account_id)
        assert owner is not None
        clock.advance(3600)
        platform.run(booking.cancel, owner, holder.id or 0, CTX)
        rounds = _rounds_of(platform, holder.session_id)
        assert len(rounds) == 2  # the release round, then a short one for the freed slot
        short = platform.run(release.round_view, rounds[-1])
        assert short.round.kind == "leftover" and short.sessions[0].capacity == 1
        assert short.round.closes_at - clock.now() == dt.timedelta(minutes=WINDOW)
        # The poller asks every second for the first minute: never a booking.
        refused = set()
        for second in range(60):
            refused.add(_code(platform.run, booking.book, bot_account, bot,
                              holder.session_id, CTX))
            if second == 1:
                platform.run(release.enter, bot_account, short.id, bot,
                             [holder.session_id], CTX)
            clock.advance(1)
        assert refused == {"request_window"}
        clock.advance(3 * 60)  # the patient looks 4 minutes in
        platform.run(release.enter, patient_account, short.id, patient,
                     [holder.session_id], CTX)
        _draw_short(platform, clock, short.id)
        doc = platform.run(release.export_round_document, short.id)
        # The winner is what the seed, the frozen list and the beacon say, whoever asked
        # first: the published document verifies on its own.
        assert len(doc["entries"]) == 2
        report = verify_document(doc, trust=trust(platform))
        assert report.ok, report.reasons
        expected = _winners(doc)
        with platform.uow() as uow:
            rows = uow.rounds.all_entries(short.id)
            now_holding = [b for b in uow.bookings.of_session(holder.session_id)
                           if b.status.value == "held"]
        winner = next(e for e in rows if e.outcome == "won")
        assert {winner.ref} == expected
        assert [b.patient_id for b in now_holding] == [winner.patient_id]
        assert now_holding[0].slot_id == holder.slot_id
        # The loser waits on the short round's list for the next freed slot.
        assert [e.outcome for e in rows if e is not winner] == ["waitlist"]
        loser = next(e for e in rows if e is not winner)
        # If the winner does not pay, the slot goes to the loser, not to a poller.
        clock.set(now_holding[0].pay_by + dt.timedelta(seconds=1))
        platform.run_job(booking.expire_overdue)
        with platform.uow() as uow:
            offered = uow.bookings.active_for(loser.patient_id, holder.session_id)
        assert offered is not None and offered.channel.value == "waitlist"


def test_slots_a_draw_leaves_go_through_a_short_window_then_open(
        platform: Platform, clock: FixedClock) -> None:
    """Before: slots nobody entered for re-opened first come first served for a poller.
    Now they get a window of their own; only what nobody asked for in it opens."""
    dw = _draw_world(platform, clock, people=1, capacity=3)
    account, pid = dw.patients[0]
    platform.run(release.enter, account, dw.round_id, pid, [dw.sessions[0]], CTX)
    _close_and_draw(dw)
    short = [_rounds_of(platform, sid)[-1] for sid in dw.sessions]
    views = [platform.run(release.round_view, r) for r in short]
    assert [v.round.kind for v in views] == ["leftover", "leftover"]
    assert [v.sessions[0].capacity for v in views] == [2, 3]
    late_account, (late,), _ = dw.world.patient_account("latecomer")
    assert _code(platform.run, booking.book, late_account, late, dw.sessions[1],
                 CTX) == "request_window"
    platform.run(release.enter, late_account, short[1], late, [dw.sessions[1]], CTX)
    _draw_short(platform, clock, short[1])
    with platform.uow() as uow:
        assert uow.bookings.active_for(late, dw.sessions[1]) is not None
    # Nobody else asked: the two other slots of that session now open to booking.
    other_account, (other,), _ = dw.world.patient_account("other")
    view = platform.run(booking.book, other_account, other, dw.sessions[1], CTX)
    assert view.booking.status.value == "held"


def test_fcfs_a_freed_slot_of_a_sold_out_session_is_never_caught_by_a_rehold_or_a_buyer(
        platform: Platform, clock: FixedClock) -> None:
    """Before: a bot let its 15-minute hold lapse 9 times and re-grabbed the slot 24-44 ms
    after each re-opening; a launderer's buyer booked 16-22 ms after the cancel. Now a freed
    slot of a sold-out session goes to a short window; where slots remain, it simply rejoins
    them (nothing scarce to race for)."""
    world = build_world(platform, capacity=2)
    sid = world.session_ids[1]  # more than a day ahead: cancelling it is not late
    bot_account, (bot,), _ = world.patient_account("reholder")
    holder_account, (holder,), _ = world.patient_account("launderer")
    buyer_account, (buyer,), _ = world.patient_account("buyer")
    first = platform.run(booking.book, bot_account, bot, sid, CTX)
    # One slot still free: a cancellation is not scarce, the slot rejoins the pool.
    platform.run(booking.cancel, bot_account, first.booking.id or 0, CTX)
    assert _rounds_of(platform, sid) == []
    hold = platform.run(booking.book, bot_account, bot, sid, CTX)
    sold = platform.run(booking.book, holder_account, holder, sid, CTX)
    platform.run(booking.pay, holder_account, sold.booking.id or 0, "alipay:launder01", CTX)
    # The bot lets its hold lapse and tries to re-grab it at once.
    clock.set(hold.booking.pay_by + dt.timedelta(seconds=1))
    assert platform.run_job(booking.expire_overdue) == 1
    assert _code(platform.run, booking.book, bot_account, bot, sid, CTX) == "request_window"
    # The launderer cancels for the buyer, who books at once.
    platform.run(booking.cancel, holder_account, sold.booking.id or 0, CTX)
    assert _code(platform.run, booking.book, buyer_account, buyer, sid, CTX) \
        == "request_window"
    rounds = _rounds_of(platform, sid)
    assert len(rounds) == 1  # the cancelled slot joined the lapsed hold's window
    with platform.uow() as uow:
        held_back = uow.db.scalar(sa.select(sa.func.count()).select_from(t.slots).where(
            t.slots.c.session_id == sid, t.slots.c.taken.is_(False)))
        assert held_back == 2 and uow.schedule.free_counts([sid], clock.now())[sid] == 0


def test_a_draw_session_scheduled_after_its_release_time_gets_a_fresh_window(
        platform: Platform, clock: FixedClock) -> None:
    """Before: an extra clinic added after its release time was drawn at once with 0
    entries and all its slots became leftovers for a poller."""
    world = build_world(platform)
    doctor = platform.run(catalog.create_doctor, world.department_id, "王芳", "主任医师", "心律",
                          release_policy=ReleasePolicy.DRAW, hot=True)
    today = clock.now().astimezone(platform.settings.zone).date()
    (late,) = platform.run(catalog.schedule_sessions, doctor.id or 0,
                           [today + dt.timedelta(days=1)], [Period.AFTERNOON], 3, 30000,
                           release_days_before=1)
    assert late.release_at < clock.now()
    assert platform.run_job(release.open_due_rounds) == 1
    (round_id,) = _rounds_of(platform, late.id or 0)
    view = platform.run(release.round_view, round_id)
    assert view.round.kind == "late" and view.sessions[0].capacity == 3
    assert view.round.opens_at == clock.now()
    assert view.round.closes_at == clock.now() + dt.timedelta(
        minutes=platform.settings.late_window_minutes)
    assert platform.run_job(release.draw_due_rounds) == 0  # not drawn among nobody
    account, (pid,), _ = world.patient_account("careful")
    clock.advance(20 * 60)
    platform.run(release.enter, account, round_id, pid, [late.id or 0], CTX)
    _draw_short(platform, clock, round_id)
    with platform.uow() as uow:
        assert uow.bookings.active_for(pid, late.id or 0) is not None
        assert uow.rounds.get(round_id).entries_count == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_freed_slot_too_close_to_the_visit_for_a_window_opens_to_booking(
        platform: Platform, clock: FixedClock) -> None:
    world = build_world(platform, capacity=1)
    sid = world.session_ids[0]
    account, (pid,), _ = world.patient_account("early")
    view = platform.run(booking.book, account, pid, sid, CTX)
    clock.set(view.session.starts_at - dt.timedelta(seconds=30))
    platform.run_job(booking.expire_overdue)
    assert _rounds_of(platform, sid) == []


def test_a_hot_fcfs_doctor_is_proposed_for_the_draw_and_released_through_a_window(
        platform: Platform, clock: FixedClock) -> None:
    """Before: on an fcfs doctor, 10 bots that fetched their tokens early and fired 30 ms
    after the release took 10 of 10 slots. Now a doctor whose slots go within minutes is
    proposed for the draw policy, and their next release opens with a request window in
    which a patient 4 minutes late has the bot's chance."""
    world = build_world(platform)
    doctor_id = world.doctor_id
    today = clock.now().astimezone(platform.settings.zone).date()
    first, nxt = platform.run(catalog.schedule_sessions, doctor_id,
                              [today + dt.timedelta(days=3), today + dt.timedelta(days=4)],
                              [Period.MORNING], 2, 5000, release_days_before=3)
    assert platform.run_job(release.propose_draw_policy) == 0  # nothing sold out yet
    bots = [world.patient_account(f"bot{n}") for n in range(2)]
    clock.set(first.release_at + dt.timedelta(milliseconds=45))
    for account, (pid,), _ in bots:
        platform.run(booking.book, account, pid, first.id or 0, CTX)
        clock.advance(30)
    assert platform.run_job(release.propose_draw_policy) == 1
    assert platform.run_job(release.propose_draw_policy) == 0  # proposed once
    with platform.uow() as uow:
        (event,) = uow.events.recent(10, "doctor.draw_proposed")
        assert uow.schedule.doctor(doctor_id).hot  # type: ignore[union-attr]
    assert event.detail["doctor"] == doctor_id and event.detail["policy"] == "draw"
    assert event.detail["sold_out_s"] == 30.045
    # The doctor's next release: an opening window from the release time.
    clock.set(nxt.release_at - dt.timedelta(hours=1))
    # Two rounds: this one, and a window from now for the doctor's two sessions released
    # already that nobody has booked yet (now that the doctor is hot, nothing is grabbed).
    assert platform.run_job(release.open_due_rounds) == 2
    windows = {_rounds_of(platform, sid)[0] for sid in world.session_ids}
    (window,) = windows  # one department, one window: one round
    assert platform.run(release.round_view, window).round.opens_at == clock.now()
    _draw_short(platform, clock, window)  # nobody asked: they open to booking
    (round_id,) = _rounds_of(platform, nxt.id or 0)
    view = platform.run(release.round_view, round_id)
    assert view.round.kind == "opening" and view.round.opens_at == nxt.release_at
    assert view.round.closes_at == nxt.release_at + dt.timedelta(minutes=WINDOW)
    assert view.sessions[0].capacity == 2
    people = [world.patient_account(f"late{n}") for n in range(2)]
    clock.set(nxt.release_at + dt.timedelta(milliseconds=30))
    for account, (pid,), _ in bots:  # the bots fire at the release: no slot to grab
        assert _code(platform.run, booking.book, account, pid, nxt.id or 0,
                     CTX) == "request_window"
        platform.run(release.enter, account, round_id, pid, [nxt.id or 0], CTX)
    clock.advance(4 * 60)
    for account, (pid,), _ in people:
        platform.run(release.enter, account, round_id, pid, [nxt.id or 0], CTX)
    _draw_short(platform, clock, round_id)
    doc = platform.run(release.export_round_document, round_id)
    report = verify_document(doc, trust=trust(platform))
    assert report.ok, report.reasons
    assert doc["opening"]["capacities"] == {str(nxt.id): 2}
    expected = _winners(doc)
    with platform.uow() as uow:
        rows = uow.rounds.all_entries(round_id)
        holders = {b.patient_id for b in uow.bookings.of_session(nxt.id or 0)}
    assert {e.ref for e in rows if e.outcome == "won"} == expected
    assert holders == {e.patient_id for e in rows if e.outcome == "won"}
    assert len(holders) == 2


def test_a_short_round_leaves_out_at_its_close_a_patient_who_won_the_session_meanwhile(
        platform: Platform, clock: FixedClock) -> None:
    """A slot of one session frees up, and another once its window has closed but before
    its beacon is out: two short rounds. A patient who entered both and wins the first is
    left out of the second when its list is frozen (reason ``already_booked``, signed and
    verifiable), is told so, and holds one slot."""
    dw = _draw_world(platform, clock, people=2, capacity=2)
    s0, s1 = dw.sessions
    for account, pid in dw.patients:
        platform.run(release.enter, account, dw.round_id, pid, [s0], CTX)
    _close_and_draw(dw)  # both win a slot of s0; s1's slots go to a short window of their own
    (side,) = _rounds_of(platform, s1)[1:]
    _draw_short(platform, clock, side)
    patient_account, (patient,), _ = dw.world.patient_account("patient")
    with platform.uow() as uow:
        holders = list(uow.bookings.of_session(s0))
    assert len(holders) == 2
    owners = []
    for holder in holders:
        with platform.uow() as uow:
            owners.append(uow.accounts.get(holder.account_id))
    clock.advance(60)
    platform.run(booking.cancel, owners[0], holders[0].id or 0, CTX)
    first = _rounds_of(platform, s0)[-1]
    platform.run(release.enter, patient_account, first, patient, [s0], CTX)
    # The first window closes (its list frozen, its beacon not out yet): the next freed slot
    # cannot join it, and gets a window of its own.
    clock.set(platform.run(release.round_view, first).round.closes_at)
    assert platform.run_job(release.draw_due_rounds) == 0
    platform.run(booking.cancel, owners[1], holders[1].id or 0, CTX)
    second = _rounds_of(platform, s0)[-1]
    assert first != second
    platform.run(release.enter, patient_account, second, patient, [s0], CTX)
    due = platform.run(release.round_view, first).stage.beacon_due_at
    assert due is not None and due > clock.now()
    clock.set(due)
    assert platform.run_job(release.draw_due_rounds) == 1  # the first; the second is open
    with platform.uow() as uow:
        won = uow.bookings.active_for(patient, s0)
    assert won is not None and won.status.value == "held"
    _draw_short(platform, clock, second)
    doc = platform.run(release.export_round_document, second)
    report = verify_document(doc, trust=trust(platform))
    assert report.ok, report.reasons
    (line,) = doc["entries"]
    assert line.split(" ")[2:] == ["excluded", str(s0), "already_booked"]
    assert doc["parameters"]["kind"] == "leftover" and not doc["results"]["winners"]
    with platform.uow() as uow:
        (entry,) = uow.rounds.all_entries(second)
        kinds = [n.kind for n in uow.notifications.inbox(patient_account.id or 0)]
        mine = [b for b in uow.bookings.of_session(s0) if b.patient_id == patient
                and b.status.value == "held"]
    assert entry.outcome == "excluded" and "draw.already_booked" in kinds
    assert [b.id for b in mine] == [won.id]

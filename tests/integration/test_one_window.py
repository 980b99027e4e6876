"""Findings of the live red team (issue 18), each played again against the services:

- F1: slots freed one after another (holds lapsing in one scheduler pass, or a ring's
  cancels seconds apart) each opened a one-slot round of their own; the doctor's page links
  one of them, so the others had no entrants and opened to a poller at their close, or were
  entered only by the ring's buyer. Now one window a session at a time: a slot freed while
  one is open joins it and goes to its waitlist's head after the draw.
- F2: a hot fcfs doctor's session scheduled after its release time opened to booking with
  no window, and bots took every slot. Now its slots are held back at once, and the
  scheduler opens a window from now.
- After the fix, a second run found that a slot joining a window seconds before its close,
  with only the ring's buyer entered, opened to booking at the close (a poller took it).
  Now a joined slot nobody waits for gets a window of its own.
- F3: an ordinary fcfs doctor's session scheduled after its release time sold out in 2 s
  and the doctor was never proposed for the draw: the sell-out was timed from the release
  days before. Now it is timed from the first booking when nobody could book at release."""

from __future__ import annotations

import datetime as dt

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import booking, catalog, release
from tests.conftest import build_world
from tests.integration.test_release import CTX, _close_and_draw, _draw_world
from tests.integration.test_short_windows import _code, _draw_short, _rounds_of


def test_slots_freed_while_a_window_is_open_join_it_and_go_to_its_waitlist(
        platform: Platform, clock: FixedClock) -> None:
    dw = _draw_world(platform, clock, people=4, capacity=2)
    for account, pid in dw.patients:
        platform.run(release.enter, account, dw.round_id, pid, dw.sessions, CTX)
    _close_and_draw(dw)  # four entrants, four slots: everybody wins, nobody waits
    session_id = dw.sessions[0]
    with platform.uow() as uow:
        holders = uow.bookings.of_session(session_id)
        owners = [uow.accounts.get(b.account_id) for b in holders]
    assert len(holders) == 2
    clock.advance(3600)
    for holder, owner in zip(holders, owners, strict=True):
        assert owner is not None
        platform.run(booking.cancel, owner, holder.id or 0, CTX)  # a ring's cancels...
        clock.advance(2)  # ...seconds apart
    rounds = _rounds_of(platform, session_id)
    assert len(rounds) == 2  # the release round and ONE short round: the second slot joined
    short = rounds[-1]
    (at_stake,) = platform.run(release.round_view, short).sessions
    assert at_stake.capacity == 1 and at_stake.joined == 1  # the page shows both
    entrants = [dw.world.patient_account(f"asker{n}") for n in range(3)]
    for account, (pid,), _ in entrants:
        platform.run(release.enter, account, short, pid, [session_id], CTX)
    poller, (poller_pid,), _ = dw.world.patient_account("poller")
    assert _code(platform.run, booking.book, poller, poller_pid, session_id,
                 CTX) == "request_window"
    _draw_short(platform, clock, short)
    with platform.uow() as uow:
        outcomes = sorted(e.outcome for e in uow.rounds.all_entries(short))
        holding = {b.patient_id for b in uow.bookings.of_session(session_id)
                   if b.status.value == "held"}
    # The round's own slot to its winner, the joined one to its waitlist's head.
    assert outcomes == ["offered", "waitlist", "won"]
    assert holding <= {pid for _, (pid,), _ in entrants} and len(holding) == 2
    # Nothing opened to booking: the poller still books nothing.
    assert _code(platform.run, booking.book, poller, poller_pid, session_id,
                 CTX) == "slot_unavailable"


def test_a_hot_fcfs_session_scheduled_after_its_release_opens_with_a_window(
        platform: Platform, clock: FixedClock) -> None:
    world = build_world(platform, residents=30)
    doctor = platform.run(catalog.create_doctor, world.department_id, "王芳", "主任医师", "心衰",
                          release_policy=ReleasePolicy.FCFS, hot=True)
    today = clock.now().astimezone(platform.settings.zone).date()
    (session,) = platform.run(catalog.schedule_sessions, doctor.id or 0,
                              [today + dt.timedelta(days=8)], [Period.MORNING], 5, 30000,
                              release_days_before=14)
    assert session.release_at < clock.now()  # scheduled after its release time
    bot, (bot_pid,), _ = world.patient_account("bot")
    # Before the scheduler's next pass: nothing to grab.
    assert _code(platform.run, booking.book, bot, bot_pid, session.id or 0,
                 CTX) == "slot_unavailable"
    assert platform.run_job(release.open_due_rounds) == 1
    (round_id,) = _rounds_of(platform, session.id or 0)
    view = platform.run(release.round_view, round_id)
    assert view.round.kind == "opening" and view.sessions[0].capacity == 5
    assert view.round.opens_at <= clock.now() < view.round.closes_at
    assert _code(platform.run, booking.book, bot, bot_pid, session.id or 0,
                 CTX) == "request_window"
    # Once in a round, the next pass leaves it alone.
    assert platform.run_job(release.open_due_rounds) == 0


def test_a_late_session_that_sells_out_in_seconds_marks_its_doctor_hot(
        platform: Platform, clock: FixedClock) -> None:
    world = build_world(platform, residents=30)
    doctor = platform.run(catalog.create_doctor, world.department_id, "赵强", "主任医师", "心衰",
                          release_policy=ReleasePolicy.FCFS)
    today = clock.now().astimezone(platform.settings.zone).date()
    (session,) = platform.run(catalog.schedule_sessions, doctor.id or 0,
                              [today + dt.timedelta(days=8)], [Period.MORNING], 2, 30000,
                              release_days_before=14)
    assert session.release_at < clock.now() - dt.timedelta(days=5)
    for n in range(2):
        account, (pid,), _ = world.patient_account(f"bot{n}")
        platform.run(booking.book, account, pid, session.id or 0, CTX)
        clock.advance(1)
    assert platform.run_job(release.propose_draw_policy) == 1
    with platform.uow() as uow:
        (event,) = uow.events.recent(10, "doctor.draw_proposed")
        assert uow.schedule.doctor(doctor.id or 0).hot  # type: ignore[union-attr]
    assert event.detail["sold_out_s"] == 1.0


def test_a_slot_joining_a_window_at_its_close_gets_a_window_of_its_own(
        platform: Platform, clock: FixedClock) -> None:
    dw = _draw_world(platform, clock, people=4, capacity=2)
    for account, pid in dw.patients:
        platform.run(release.enter, account, dw.round_id, pid, dw.sessions, CTX)
    _close_and_draw(dw)
    session_id = dw.sessions[0]
    with platform.uow() as uow:
        holders = uow.bookings.of_session(session_id)
        owners = [uow.accounts.get(b.account_id) for b in holders]
    clock.advance(3600)
    platform.run(booking.cancel, owners[0], holders[0].id or 0, CTX)
    (short,) = _rounds_of(platform, session_id)[1:]
    buyer, (buyer_pid,), _ = dw.world.patient_account("buyer")
    platform.run(release.enter, buyer, short, buyer_pid, [session_id], CTX)
    # Seconds before the close, with only the buyer entered, the ring frees the second slot.
    clock.set(platform.run(release.round_view, short).round.closes_at
              - dt.timedelta(seconds=10))
    platform.run(booking.cancel, owners[1], holders[1].id or 0, CTX)
    assert _rounds_of(platform, session_id)[1:] == [short]  # it joined the open window
    _draw_short(platform, clock, short)
    poller, (poller_pid,), _ = dw.world.patient_account("poller")
    assert _code(platform.run, booking.book, poller, poller_pid, session_id,
                 CTX) == "request_window"
    fresh = _rounds_of(platform, session_id)[-1]
    assert fresh != short
    view = platform.run(release.round_view, fresh)
    assert view.sessions[0].capacity == 1
    assert view.round.closes_at - clock.now() == dt.timedelta(minutes=10)

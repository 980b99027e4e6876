"""Where a slot goes when its booking ends early (cancelled, expired, an offer not taken)
or a draw leaves it: never to whoever asks first.

1. To the next waitlisted entry, in draw order, of any round of the session that chose it,
   as a held booking to pay within the offer time; the slot never passes through an open
   pool, so no one can catch it as it is released (一退一抢).
2. Else, if the session still has slots anyone can book right now, the slot is not scarce
   and simply joins them.
3. Else into a short request window (``request_window_minutes``, a *leftover* round) and a
   draw among everyone who asked in it. A bot polling once a second and a patient looking
   every few minutes both ask within the window and have the same chance.
   If the session already has a window taking entries, the slot is held back for it
   instead, and after that round's draw goes to the head of its waitlist: one window a
   session at a time.

The slots of a short round are held back (``reserved``) until its draw; whatever the draw
leaves (fewer asked than there were slots) opens to booking at once, since everybody who
wanted it in the window got one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from fairslot.domain.booking import Booking, Channel
from fairslot.domain.errors import FairslotError
from fairslot.domain.rounds import EntryOutcome, RoundKind
from fairslot.domain.schedule import ReleasePolicy, Session
from fairslot.services import notifications, round_opening, rules
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = ["MIN_WINDOW", "latest_close", "offer", "on_slot_freed", "open_short_round",
           "release_now", "reserved"]

MIN_WINDOW = dt.timedelta(minutes=1)
"""A window shorter than this before the visit is no window: the slot opens to booking."""


def reserved(session: Session) -> dt.datetime:
    """The ``open_from`` that holds a slot back for a short round: the session's start, by
    when no booking can be made."""
    return session.starts_at


def latest_close(deps: Deps, session: Session, wanted: dt.datetime) -> dt.datetime:
    """When a window for ``session`` wanting to close at ``wanted`` closes: early enough
    that its beacon (``draw_beacon_delay_seconds`` after the close) is out before the
    session starts."""
    return min(wanted, session.starts_at
               - dt.timedelta(seconds=deps.settings.draw_beacon_delay_seconds))


def release_now(uow: UnitOfWork, session: Session, slot_ids: Sequence[int],
                now: dt.datetime) -> None:
    """Open slots to booking now (an fcfs session's free slots have no ``open_from``); each
    is stamped as re-opened now (``slots.freed_at``)."""
    for slot_id in slot_ids:
        uow.schedule.release_slot(
            slot_id, now,
            open_from=None if session.release_policy is ReleasePolicy.FCFS else now)


def open_short_round(uow: UnitOfWork, deps: Deps, session: Session, slot_ids: Sequence[int],
                     kind: RoundKind = RoundKind.LEFTOVER) -> int | None:
    """Put free slots of ``session`` into a request window of their own, opening now and
    closing ``request_window_minutes`` later (never after the session starts), drawn like
    any round. None (and the slots open to booking) when the visit is too close for one."""
    now = deps.clock.now().replace(microsecond=0)  # a signed opening names whole seconds
    closes = latest_close(deps, session,
                          now + dt.timedelta(minutes=deps.settings.request_window_minutes))
    if closes - now < MIN_WINDOW or not slot_ids or not deps.settings.short_windows_enabled:
        release_now(uow, session, slot_ids, now)
        return None
    doctor = uow.schedule.doctor(session.doctor_id)
    assert doctor is not None
    uow.schedule.reserve_slots(slot_ids, reserved(session))
    round_id = round_opening.create_round(
        uow, deps, department_id=doctor.department_id, kind=kind, opens=now, closes=closes,
        now=now, session_id=session.id,
        detail={"slots": len(slot_ids), "window_s": round((closes - now).total_seconds())})
    uow.rounds.add_session(round_id, session.id or 0, len(slot_ids))
    # Opened like every round: a signed opening naming the beacon that will draw it.
    round_ = uow.rounds.get(round_id)
    assert round_ is not None
    round_opening.sign_opening(uow, deps, round_, now)
    return round_id


def offer(uow: UnitOfWork, deps: Deps, slot_id: int, session: Session) -> bool:
    """Offer a free slot to the first waitlisted entry that chose the session, in the
    session's rounds oldest first. False when nobody eligible is waiting."""
    now = deps.clock.now()
    for round_id in uow.rounds.rounds_of_session(session.id or 0):
        round_ = uow.rounds.get(round_id)
        assert round_ is not None
        while (nxt := uow.rounds.next_waiting(round_id, session.id or 0)) is not None:
            # An offer is a held booking: the same credit and quota rules apply, under the
            # offered patient's lock like any booking of theirs.
            uow.lock(("patient", nxt.patient_id))
            facts = rules.facts_for(uow, deps, nxt.patient_id, None, session_id=session.id)
            try:
                if facts.in_session:
                    raise FairslotError("already booked in this session")
                rules.check_may_book(deps, facts, nxt.patient_id, round_.department_id,
                                     session.starts_at, served=False)
            except FairslotError:
                uow.rounds.update_entry(nxt.id, outcome=EntryOutcome.PASSED.value)
                continue
            deadline = min(now + dt.timedelta(minutes=deps.settings.waitlist_offer_minutes),
                           session.starts_at)
            held = Booking(session_id=session.id or 0, slot_id=slot_id,
                            patient_id=nxt.patient_id, account_id=nxt.account_id,
                            fee_cents=session.fee_cents, created_at=now, pay_by=deadline,
                            channel=Channel.WAITLIST)
            uow.bookings.add(held)
            uow.flush()
            uow.rounds.update_entry(nxt.id, outcome=EntryOutcome.OFFERED.value,
                                    booking_id=held.id)
            uow.events.append("waitlist.offered", now, account_id=nxt.account_id,
                              patient_id=nxt.patient_id, session_id=session.id,
                              booking_id=held.id, detail={"round": round_id})
            notifications.notify(uow, deps, nxt.account_id, "waitlist.offer",
                                 patient_id=nxt.patient_id,
                                 session=notifications.when(deps, session.starts_at),
                                 pay_by=notifications.when(deps, deadline))
            return True
    return False


def on_slot_freed(uow: UnitOfWork, deps: Deps, booking: Booking, session: Session) -> None:
    now = deps.clock.now()
    offered = uow.rounds.entry_for_booking(booking.id or 0)
    if offered is not None:
        uow.rounds.update_entry(offered.id, outcome=EntryOutcome.PASSED.value)
    if now >= session.starts_at:
        uow.schedule.release_slot(booking.slot_id, now)  # too late for anyone: kept free
        return
    if deps.settings.waitlist_enabled and offer(uow, deps, booking.slot_id, session):
        return
    sid = session.id or 0
    window = uow.rounds.open_rounds_of_sessions([sid], now).get(sid)
    if window is not None and deps.settings.short_windows_enabled:
        # A window for this session is taking entries now: the slot is held back for it
        # and goes, after its draw, to the head of its waitlist. One window a session at a
        # time: a second round beside it (which a page links to less) would be a quiet
        # corner for a ring's buyer, or a slot nobody asked for that opens to a poller.
        uow.schedule.reserve_slots([booking.slot_id], reserved(session))
        uow.events.append("slot.leftover", now, session_id=sid,
                          detail={"round": window, "joined": True})
        return
    if (not deps.settings.short_windows_enabled
            or uow.schedule.free_counts([sid], now).get(sid, 0) > 0):
        # Ablation only (the simulator's baseline): the slot is free to grab at once.
        # Otherwise: slots anyone can book right now, so this one is not scarce either.
        release_now(uow, session, [booking.slot_id], now)
        uow.events.append("slot.leftover", now, session_id=sid, detail={"pool": True})
        return
    round_id = open_short_round(uow, deps, session, [booking.slot_id])
    uow.events.append("slot.leftover", now, session_id=sid, detail={"round": round_id})

"""Where a slot goes when its booking ends early (cancelled, expired, an offer not taken).

fcfs sessions: back to the open pool. Draw sessions: to the next waitlisted entry that chose
the session, as a held booking it must pay within the offer time; the slot never passes
through an open pool, so no one can catch it as it is released (一退一抢). Only when no one
is left does it re-open, at an unpredictable moment."""

from __future__ import annotations

import datetime as dt

from fairslot.domain.booking import Booking, Channel
from fairslot.domain.errors import FairslotError
from fairslot.domain.rounds import EntryOutcome
from fairslot.domain.schedule import ReleasePolicy, Session
from fairslot.services import notifications, rules
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = ["leftover_time", "on_slot_freed"]


def leftover_time(deps: Deps, now: dt.datetime) -> dt.datetime:
    """When a slot nobody wanted re-opens: uniformly at random (CSPRNG in production) in
    the configured interval, so that no bot can sit waiting for the moment."""
    s = deps.settings
    delay = deps.random.uniform(s.leftover_delay_min_seconds,
                                max(s.leftover_delay_min_seconds, s.leftover_delay_max_seconds))
    return now + dt.timedelta(seconds=delay)


def on_slot_freed(uow: UnitOfWork, deps: Deps, booking: Booking, session: Session) -> None:
    now = deps.clock.now()
    offered = uow.rounds.entry_for_booking(booking.id or 0)
    if offered is not None:
        uow.rounds.update_entry(offered.id, outcome=EntryOutcome.PASSED.value)
    if session.release_policy is not ReleasePolicy.DRAW:
        uow.schedule.release_slot(booking.slot_id)
        return
    round_id = uow.rounds.round_of_session(session.id or 0)
    if not deps.settings.waitlist_enabled or round_id is None:
        uow.schedule.release_slot(booking.slot_id, open_from=now)
        return
    round_ = uow.rounds.get(round_id)
    assert round_ is not None
    if now < session.starts_at:
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
            offer = Booking(session_id=session.id or 0, slot_id=booking.slot_id,
                            patient_id=nxt.patient_id, account_id=nxt.account_id,
                            fee_cents=session.fee_cents, created_at=now, pay_by=deadline,
                            channel=Channel.WAITLIST)
            uow.bookings.add(offer)
            uow.flush()
            uow.rounds.update_entry(nxt.id, outcome=EntryOutcome.OFFERED.value,
                                    booking_id=offer.id)
            uow.events.append("waitlist.offered", now, account_id=nxt.account_id,
                              patient_id=nxt.patient_id, session_id=session.id,
                              booking_id=offer.id, detail={"round": round_id})
            notifications.notify(uow, deps, nxt.account_id, "waitlist.offer",
                                 patient_id=nxt.patient_id,
                                 session=notifications.when(deps, session.starts_at),
                                 pay_by=notifications.when(deps, deadline))
            return
    opens = leftover_time(deps, now)
    uow.schedule.release_slot(booking.slot_id, open_from=opens)
    uow.events.append("slot.leftover", now, session_id=session.id,
                      detail={"round": round_id,
                              "opens_in_s": round((opens - now).total_seconds())})

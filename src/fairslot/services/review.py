"""Bookings held for review: what a monitoring ``hold_bookings`` decision does to a booking.

The guard reports a request made under a hold decision (on the account, patient, device,
address or prefix) and the booking service keeps the booking it makes *pending review*: the
slot is held, the booking cannot be paid, and the patient is told it is being checked. An
investigator then approves it (the patient may pay, with the usual payment deadline from
then) or rejects it (the slot is released; nothing was paid). A booking nobody reviewed
before its review deadline (``review_hold_hours``, at most until an hour before the
session) is released by the expiry job at no cost to the patient: it is not a lapsed hold
for the credit rules, and the slot goes where any freed slot goes. Every step is an event
with who did it and why.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import Booking
from fairslot.domain.errors import Forbidden, InvalidInput, NotFound
from fairslot.services import waitlist
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

if TYPE_CHECKING:
    from fairslot.services.booking import BookingView

__all__ = ["decide", "lapse", "queue", "review_deadline", "tell_held"]

REVIEWERS = frozenset({Role.INVESTIGATOR, Role.ADMIN})


def review_deadline(deps: Deps, now: dt.datetime, starts_at: dt.datetime) -> dt.datetime:
    """How long a held booking waits for a reviewer: ``review_hold_hours``, but not past an
    hour before the session, and never less than the usual payment deadline."""
    wait = now + dt.timedelta(hours=deps.settings.review_hold_hours)
    floor = now + dt.timedelta(minutes=deps.settings.payment_deadline_minutes)
    return max(min(wait, starts_at - dt.timedelta(hours=1)), floor)


def _local(deps: Deps, when: dt.datetime) -> str:
    return f"{when.astimezone(deps.settings.zone):%m-%d %H:%M}"


def tell_held(uow: UnitOfWork, deps: Deps, booking: Booking, now: dt.datetime) -> None:
    uow.notifications.add(
        booking.account_id, now, "booking.review",
        f"预约正在审核，确认后方可缴费；若 {_local(deps, booking.pay_by)} 前未审核，号源将释放，"
        "不影响信用。 Your booking is being checked before it is confirmed; you can pay once "
        f"it is. If it is not reviewed by {_local(deps, booking.pay_by)} the slot is released "
        "at no cost to you.")


def lapse(uow: UnitOfWork, deps: Deps, booking: Booking, now: dt.datetime) -> None:
    """Release an unreviewed booking past its review deadline (the expiry job)."""
    booking.lapse_review(now)
    uow.events.append("booking.review_lapsed", now, account_id=booking.account_id,
                      patient_id=booking.patient_id, session_id=booking.session_id,
                      booking_id=booking.id)
    uow.notifications.add(
        booking.account_id, now, "booking.review",
        "预约未能及时审核，号源已释放，不影响信用。 Your booking could not be reviewed in "
        "time; the slot was released at no cost to you.")
    session = uow.schedule.session(booking.session_id)
    assert session is not None
    waitlist.on_slot_freed(uow, deps, booking, session)


def _reviewer(account: Account) -> None:
    if account.role not in REVIEWERS:
        raise Forbidden("reviewing held bookings is for investigators",
                        code="forbidden_role")


def queue(uow: UnitOfWork, deps: Deps, staff: Account) -> list[BookingView]:
    """The bookings waiting for a review, oldest first."""
    from fairslot.services.booking import views

    _reviewer(staff)
    return views(uow, list(uow.bookings.under_review()))


def decide(uow: UnitOfWork, deps: Deps, staff: Account, booking_id: int, approve: bool,
           reason: str, ctx: RequestContext) -> BookingView:
    """Approve (the patient may pay from now, within the usual deadline) or reject (the slot
    is released) a booking held for review, with the reviewer's reason."""
    from fairslot.services.booking import views

    _reviewer(staff)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("say why: the review is kept with its reason",
                           code="reason_required")
    booking = uow.bookings.get_for_update(booking_id)
    if booking is None:
        raise NotFound("no such booking", code="booking_not_found")
    now = deps.clock.now()
    session = uow.schedule.session(booking.session_id)
    assert session is not None
    if approve:
        booking.approve_review(
            now + dt.timedelta(minutes=deps.settings.payment_deadline_minutes))
        deadline = _local(deps, booking.pay_by)
        text = (f"预约已审核确认，请在 {deadline} 前缴费。 Your booking is confirmed: please "
                f"pay by {deadline}.")
    else:
        booking.reject_review(now)
        text = ("预约经审核未获确认，号源已释放；如有疑问请到挂号窗口咨询。 Your booking was not "
                "confirmed after review and the slot was released; please ask at the "
                "registration desk if you have questions.")
    uow.events.append("booking.review_" + ("approved" if approve else "rejected"), now,
                      account_id=staff.id, patient_id=booking.patient_id,
                      session_id=booking.session_id, booking_id=booking.id,
                      detail={"reason": reason[:500], "booked_by": booking.account_id},
                      **ctx.event_fields())
    uow.notifications.add(booking.account_id, now, "booking.review", text)
    if not approve:
        waitlist.on_slot_freed(uow, deps, booking, session)
    view = views(uow, [booking])[0]
    uow.commit()
    return view

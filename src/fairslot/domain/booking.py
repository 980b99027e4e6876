"""The booking state machine.

held (awaiting payment until a deadline) → paid → checked in | no-show; a held booking can be
cancelled or expire, a paid one cancelled with a refund. A booking's patient never changes:
there is no transition that hands a booking to someone else, and the attribute refuses it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any

from fairslot.domain.errors import Conflict, InvalidInput

__all__ = [
    "ACTIVE_STATUSES",
    "REVIEW_PENDING",
    "SLOT_TAKEN_STATUSES",
    "VISIT_STATUSES",
    "Booking",
    "BookingStatus",
    "Channel",
    "IllegalTransition",
    "PatientImmutable",
]


class BookingStatus(enum.StrEnum):
    HELD = "held"
    PAID = "paid"
    CHECKED_IN = "checked_in"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"


# The words for sets of statuses, one meaning each, used everywhere (quotas, indexes, pages):
# - ACTIVE: still to be used (awaiting payment or paid, the visit ahead). The active-bookings
#   quota counts these (with open draw entries).
# - VISIT: a visit the patient has or had with a department (active, or checked in). The
#   departments-per-week quota counts these.
# - SLOT_TAKEN: the booking used up its slot (a no-show too: the slot was not free to others).
#   The database's unique indexes keep one such booking per slot and per patient and session.
ACTIVE_STATUSES = frozenset({BookingStatus.HELD, BookingStatus.PAID})
VISIT_STATUSES = ACTIVE_STATUSES | {BookingStatus.CHECKED_IN}
SLOT_TAKEN_STATUSES = VISIT_STATUSES | {BookingStatus.NO_SHOW}


class Channel(enum.StrEnum):
    WEB = "web"
    APP = "app"
    WINDOW = "window"
    DRAW = "draw"
    WAITLIST = "waitlist"


REVIEW_PENDING = "pending"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class PatientImmutable(Conflict):
    code = "patient_immutable"


@dataclasses.dataclass(eq=False)
class Booking:
    session_id: int
    slot_id: int
    patient_id: int
    account_id: int
    fee_cents: int
    created_at: dt.datetime
    pay_by: dt.datetime
    channel: Channel = Channel.WEB
    status: BookingStatus = BookingStatus.HELD
    paid_at: dt.datetime | None = None
    payer_account: str | None = None
    cancelled_at: dt.datetime | None = None
    checked_in_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    late_cancel: bool = False
    review: str | None = None
    """Held for review by a monitoring decision: ``pending`` until an investigator approves
    (``approved``) or rejects it (``rejected``), or ``lapsed`` when nobody reviewed it in
    time (then it was released without cost to the patient); None for every other booking."""
    id: int | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "patient_id" and self.__dict__.get("patient_id", value) != value:
            raise PatientImmutable("a booking's patient can never change")
        object.__setattr__(self, name, value)

    @property
    def active(self) -> bool:
        """Still to be used: awaiting payment or paid."""
        return self.status in ACTIVE_STATUSES

    def _require(self, *allowed: BookingStatus, action: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(f"a {self.status.value} booking cannot be {action}")

    @property
    def under_review(self) -> bool:
        return self.review == REVIEW_PENDING and self.status is BookingStatus.HELD

    def hold_for_review(self, until: dt.datetime) -> None:
        """Not confirmed until an investigator approves: it cannot be paid meanwhile, and it
        is released at ``until`` if nobody has reviewed it."""
        self._require(BookingStatus.HELD, action="held for review")
        self.review = REVIEW_PENDING
        self.pay_by = until

    def _require_review(self) -> None:
        if not self.under_review:
            raise IllegalTransition("this booking is not waiting for a review",
                                    code="not_under_review")

    def approve_review(self, pay_by: dt.datetime) -> None:
        """Confirmed by an investigator: the patient may now pay until ``pay_by``."""
        self._require_review()
        self.review = "approved"
        self.pay_by = pay_by

    def reject_review(self, now: dt.datetime) -> None:
        """Refused by an investigator: the slot is released (nothing was paid)."""
        self._require_review()
        self.review = "rejected"
        self.status = BookingStatus.CANCELLED
        self.cancelled_at = now
        self.closed_at = now

    def lapse_review(self, now: dt.datetime) -> None:
        """Nobody reviewed it in time: released safely, as if never booked (not a lapsed
        hold of the patient's: the credit rules do not count it)."""
        self._require_review()
        if now <= self.pay_by:
            raise IllegalTransition("the review's deadline has not passed yet")
        self.review = "lapsed"
        self.status = BookingStatus.CANCELLED
        self.cancelled_at = now
        self.closed_at = now

    def pay(self, now: dt.datetime, payer_account: str) -> None:
        self._require(BookingStatus.HELD, action="paid")
        if self.under_review:
            raise IllegalTransition("this booking is being reviewed; it can be paid once "
                                    "it is confirmed", code="under_review")
        if now > self.pay_by:
            raise IllegalTransition("the payment deadline has passed",
                                    code="payment_deadline_passed")
        if not payer_account:
            raise InvalidInput("a payer account is needed", code="invalid_payer")
        self.status = BookingStatus.PAID
        self.paid_at = now
        self.payer_account = payer_account

    def undo_payment(self) -> None:
        """The provider declined the charge: back to awaiting payment, deadline unchanged."""
        self._require(BookingStatus.PAID, action="returned to awaiting payment")
        self.status = BookingStatus.HELD
        self.paid_at = None
        self.payer_account = None

    def expire(self, now: dt.datetime) -> None:
        self._require(BookingStatus.HELD, action="expired")
        if now <= self.pay_by:
            raise IllegalTransition("the payment deadline has not passed yet")
        self.status = BookingStatus.EXPIRED
        self.closed_at = now

    def cancel(self, now: dt.datetime, session_starts_at: dt.datetime,
               cutoff: dt.timedelta, *, late_window: dt.timedelta | None = None,
               by_staff: bool = False) -> None:
        """Cancel by the patient (until ``cutoff`` before the session) or by staff (any time
        before the session). A paid booking is refunded. A cancellation less than
        ``late_window`` before the session (default: the cut-off) is a late one, which the
        credit rules count: a slot freed that late is hard for anyone else to use."""
        self._require(BookingStatus.HELD, BookingStatus.PAID, action="cancelled")
        if now >= session_starts_at:
            raise IllegalTransition("the session has started", code="session_started")
        if now > session_starts_at - cutoff and not by_staff:
            raise IllegalTransition(
                "too late to cancel online; please ask at the registration desk",
                code="cancel_cutoff_passed",
            )
        self.late_cancel = now > session_starts_at - max(late_window or cutoff, cutoff)
        self.cancelled_at = now
        self.closed_at = now
        self.status = (
            BookingStatus.REFUNDED if self.status is BookingStatus.PAID else BookingStatus.CANCELLED
        )

    def can_cancel_online(self, now: dt.datetime, session_starts_at: dt.datetime,
                          cutoff: dt.timedelta) -> bool:
        """Whether the patient may still cancel this booking themselves (pages show the
        button only then)."""
        return self.active and now <= session_starts_at - cutoff

    def check_in(self, now: dt.datetime, session_starts_at: dt.datetime,
                 session_ends_at: dt.datetime) -> None:
        self._require(BookingStatus.PAID, action="checked in")
        if now < session_starts_at - dt.timedelta(hours=2):
            raise IllegalTransition("check-in opens two hours before the session",
                                    code="check_in_not_open")
        if now > session_ends_at:
            raise IllegalTransition("the session is over", code="session_over")
        self.status = BookingStatus.CHECKED_IN
        self.checked_in_at = now

    def mark_no_show(self, now: dt.datetime, session_ends_at: dt.datetime,
                     grace: dt.timedelta) -> None:
        self._require(BookingStatus.PAID, action="marked as a no-show")
        if now < session_ends_at + grace:
            raise IllegalTransition("the session is not over yet")
        self.status = BookingStatus.NO_SHOW
        self.closed_at = now

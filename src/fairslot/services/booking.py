"""Booking use cases: book, pay, cancel, list; staff check-in and on-site booking; and the
sweeps that expire unpaid holds and record no-shows."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.exc import IntegrityError

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import Account, Patient, Role
from fairslot.domain.booking import Booking, BookingStatus, Channel
from fairslot.domain.errors import Conflict, Forbidden, NotFound
from fairslot.domain.identity import Identity
from fairslot.domain.schedule import ReleasePolicy, Session, SessionStatus
from fairslot.services import accounts, release, rules
from fairslot.services.context import RequestContext
from fairslot.services.payments import normalize_payer
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "BookingView",
    "book",
    "book_on_site",
    "cancel",
    "check_in",
    "expire_overdue",
    "get_booking",
    "my_bookings",
    "pay",
    "record_no_shows",
]


class SlotUnavailable(Conflict):
    code = "slot_unavailable"


@dataclasses.dataclass(frozen=True)
class BookingView:
    booking: Booking
    session: Session
    patient: Patient
    slot_number: int


def _view(uow: UnitOfWork, booking: Booking) -> BookingView:
    session = uow.schedule.session(booking.session_id)
    patient = uow.patients.get(booking.patient_id)
    slot = uow.schedule.slot(booking.slot_id)
    assert session is not None and patient is not None and slot is not None
    return BookingView(booking, session, patient, slot.number)


def _bookable_session(uow: UnitOfWork, session_id: int, now: dt.datetime) -> Session:
    session = uow.schedule.session(session_id)
    if session is None:
        raise NotFound("no such session", code="session_not_found")
    if session.status is not SessionStatus.SCHEDULED:
        raise Conflict("this session was cancelled", code="session_cancelled")
    if session.has_started(now):
        raise Conflict("this session has started", code="session_started")
    if not session.is_released(now):
        if session.release_policy is ReleasePolicy.DRAW:
            raise Conflict("this session's slots are given by a draw: enter its round",
                           code="draw_session")
        raise Conflict("this session's slots are not released yet", code="not_released")
    return session


def _create(platform: Platform, uow: UnitOfWork, *, account: Account, patient_id: int,
            session: Session, ctx: RequestContext, at_desk: bool = False) -> Booking:
    now = platform.clock.now()
    sid = session.id or 0
    if uow.bookings.active_for(patient_id, sid) is not None:
        raise Conflict("this patient already has a booking in this session",
                       code="already_booked")
    doctor = uow.schedule.doctor(session.doctor_id)
    assert doctor is not None
    rules.check_may_book(platform, uow, None if at_desk else account, patient_id,
                         doctor.department_id, session.starts_at)
    # Draw sessions give out only slots nobody on the waitlist wanted, once re-opened.
    slot_id = uow.schedule.claim_free_slot(
        sid, now, leftovers_only=session.release_policy is ReleasePolicy.DRAW)
    if slot_id is None:
        raise SlotUnavailable("no free slot left in this session")
    deadline = now + dt.timedelta(minutes=platform.settings.payment_deadline_minutes)
    booking = Booking(session_id=sid, slot_id=slot_id, patient_id=patient_id,
                      account_id=account.id or 0, fee_cents=session.fee_cents, created_at=now,
                      pay_by=deadline, channel=ctx.channel)
    uow.bookings.add(booking)
    try:
        uow.flush()
    except IntegrityError as exc:
        # The partial unique indexes are the last line of defence against double holds.
        raise Conflict("this patient already has a booking in this session",
                       code="already_booked") from exc
    uow.events.append("booking.created", now, account_id=account.id, patient_id=patient_id,
                      session_id=sid, booking_id=booking.id,
                      detail={"channel": ctx.channel.value, "slot": slot_id},
                      **ctx.event_fields())
    return booking


def book(platform: Platform, account: Account, patient_id: int, session_id: int,
         ctx: RequestContext) -> BookingView:
    now = platform.clock.now()
    with platform.uow() as uow:
        if not uow.patients.is_managed_by(patient_id, account.id or 0):
            raise NotFound("no such patient on this account", code="patient_not_found")
        session = _bookable_session(uow, session_id, now)
        booking = _create(platform, uow, account=account, patient_id=patient_id,
                          session=session, ctx=ctx)
        view = _view(uow, booking)
        uow.commit()
        return view


def _own_booking(uow: UnitOfWork, account: Account, booking_id: int) -> Booking:
    booking = uow.bookings.get_for_update(booking_id)
    if booking is None or (booking.account_id != account.id
                           and account.role not in (Role.REGISTRATION, Role.ADMIN)):
        raise NotFound("no such booking", code="booking_not_found")
    return booking


def get_booking(platform: Platform, account: Account, booking_id: int) -> BookingView:
    with platform.uow() as uow:
        booking = uow.bookings.get(booking_id)
        if booking is None or (booking.account_id != account.id
                               and account.role is Role.PATIENT):
            raise NotFound("no such booking", code="booking_not_found")
        return _view(uow, booking)


def desk_awaiting_payment(platform: Platform) -> list[BookingView]:
    """What the desk's walk-in entrants won or were offered and have not paid yet, soonest
    deadline first. Their wins reach the desk, not them (they entered without an account),
    so the desk calls them or takes the payment when they come back."""
    with platform.uow() as uow:
        return [_view(uow, b) for b in uow.bookings.desk_awaiting_payment()]


def my_bookings(platform: Platform, account: Account) -> list[BookingView]:
    with platform.uow() as uow:
        return [_view(uow, b) for b in uow.bookings.of_account(account.id or 0)]


def pay(platform: Platform, account: Account, booking_id: int, payer_account: str,
        ctx: RequestContext) -> BookingView:
    payer = normalize_payer(payer_account)
    with platform.uow() as uow:
        booking = _own_booking(uow, account, booking_id)
        _take_payment(platform, uow, booking, payer, account, ctx)
        view = _view(uow, booking)
        uow.commit()
        return view


def _take_payment(platform: Platform, uow: UnitOfWork, booking: Booking, payer: str,
                  by: Account, ctx: RequestContext) -> None:
    """Pay the held booking through the payment provider; the payer account is recorded
    (it is evidence later) and checked against the per-payer quota."""
    now = platform.clock.now()
    booking.pay(now, payer)
    rules.check_payer(platform, uow, payer, booking.patient_id)
    ref = platform.payments.charge(payer, booking.fee_cents, f"booking-{booking.id}")
    uow.bookings.add_payment(booking_id=booking.id, provider=platform.payments.name,
                             provider_ref=ref, payer_account=payer,
                             amount_cents=booking.fee_cents, paid_at=now)
    uow.events.append("booking.paid", now, account_id=by.id, patient_id=booking.patient_id,
                      session_id=booking.session_id, booking_id=booking.id,
                      **ctx.event_fields())


def _free_slot(platform: Platform, uow: UnitOfWork, booking: Booking) -> None:
    """A slot whose booking ended early goes to whoever may have it next (the waitlist
    under the draw policy; see ``release.on_slot_freed``)."""
    release.on_slot_freed(platform, uow, booking)


def cancel(platform: Platform, account: Account, booking_id: int,
           ctx: RequestContext) -> BookingView:
    now = platform.clock.now()
    with platform.uow() as uow:
        booking = _own_booking(uow, account, booking_id)
        session = uow.schedule.session(booking.session_id)
        assert session is not None
        was_paid = booking.status is BookingStatus.PAID
        booking.cancel(now, session.starts_at,
                       dt.timedelta(hours=platform.settings.cancel_cutoff_hours),
                       by_staff=account.role in (Role.REGISTRATION, Role.ADMIN))
        if was_paid:
            uow.bookings.refund_payment(booking.id or 0, now)
        uow.events.append("booking.cancelled", now, account_id=account.id,
                          patient_id=booking.patient_id, session_id=booking.session_id,
                          booking_id=booking.id,
                          detail={"refunded": was_paid, "late": booking.late_cancel},
                          **ctx.event_fields())
        _free_slot(platform, uow, booking)
        view = _view(uow, booking)
        uow.commit()
        return view


def check_in(platform: Platform, staff: Account, booking_id: int, id_number: str, name: str,
             ctx: RequestContext) -> BookingView:
    """At the desk: the presented identity must be the booking's patient."""
    presented = Identity.parse(id_number, name)
    now = platform.clock.now()
    with platform.uow() as uow:
        booking = uow.bookings.get_for_update(booking_id)
        if booking is None:
            raise NotFound("no such booking", code="booking_not_found")
        patient = uow.patients.get(booking.patient_id)
        session = uow.schedule.session(booking.session_id)
        assert patient is not None and session is not None
        if (patient.id_number, patient.name) != (presented.id_number, presented.name):
            uow.events.append("checkin.identity_mismatch", now, account_id=staff.id,
                              patient_id=booking.patient_id, booking_id=booking.id,
                              session_id=booking.session_id, **ctx.event_fields())
            uow.commit()
            raise Forbidden("the presented identity is not this booking's patient",
                            code="identity_mismatch")
        booking.check_in(now, session.starts_at, session.ends_at)
        uow.events.append("booking.checked_in", now, account_id=staff.id,
                          patient_id=booking.patient_id, session_id=booking.session_id,
                          booking_id=booking.id, **ctx.event_fields())
        view = _view(uow, booking)
        uow.commit()
        return view


def book_on_site(platform: Platform, staff: Account, session_id: int, id_number: str,
                 name: str, payer_account: str, ctx: RequestContext) -> BookingView:
    """Registration desk: verify the identity, book and take payment in one step."""
    identity = Identity.parse(id_number, name)
    payer = normalize_payer(payer_account)
    now = platform.clock.now()
    window = dataclasses.replace(ctx, channel=Channel.WINDOW)
    with platform.uow() as uow:
        patient = accounts.verified_patient(platform, uow, identity)
        session = _bookable_session(uow, session_id, now)
        booking = _create(platform, uow, account=staff, patient_id=patient.id or 0,
                          session=session, ctx=window, at_desk=True)
        _take_payment(platform, uow, booking, payer, staff, window)
        view = _view(uow, booking)
        uow.commit()
        return view


def expire_overdue(platform: Platform) -> int:
    """Expire holds whose payment deadline passed; their slots go on to the next taker."""
    now = platform.clock.now()
    count = 0
    with platform.uow() as uow:
        for booking in uow.bookings.overdue_holds(now):
            booking.expire(now)
            uow.events.append("booking.expired", now, account_id=booking.account_id,
                              patient_id=booking.patient_id, session_id=booking.session_id,
                              booking_id=booking.id)
            _free_slot(platform, uow, booking)
            count += 1
        uow.commit()
    return count


def record_no_shows(platform: Platform) -> int:
    now = platform.clock.now()
    grace = dt.timedelta(minutes=platform.settings.no_show_grace_minutes)
    count = 0
    with platform.uow() as uow:
        for booking in uow.bookings.unattended(now - grace):
            session = uow.schedule.session(booking.session_id)
            assert session is not None
            booking.mark_no_show(now, session.ends_at, grace)
            uow.events.append("booking.no_show", now, account_id=booking.account_id,
                              patient_id=booking.patient_id, session_id=booking.session_id,
                              booking_id=booking.id)
            count += 1
        uow.commit()
    return count

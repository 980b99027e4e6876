"""Booking use cases: book, pay, cancel, list; staff check-in and on-site booking; and the
jobs that expire unpaid holds and record no-shows.

A booking is one transaction on one pooled connection (see ``book``): the patient,
session and quota locks in one query, every quota fact in one query, the slot claimed with
its number returned, the booking and its event written. On PostgreSQL the first two go to
the server in one message (with the ``BEGIN``) and the hold in a second (with the
``COMMIT``), as calls of migration 0018's functions; the rules stay here, in Python, for
both databases. The payment provider is called between two short transactions, never
inside one."""

from __future__ import annotations

import dataclasses
import datetime as dt

from fairslot.domain.accounts import Account, Patient, Role
from fairslot.domain.booking import Booking, BookingStatus, Channel
from fairslot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from fairslot.domain.identity import Identity
from fairslot.domain.schedule import Department, Doctor, ReleasePolicy, Session, SessionStatus
from fairslot.services import (
    accounts,
    catalog,
    identities,
    outbox,
    review,
    rules,
    shared_list,
    waitlist,
)
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps, Units
from fairslot.services.payments import identify_payer, normalize_payer
from fairslot.storage.repositories import QuotaFacts
from fairslot.storage.repositories.quotas import facts_of
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "BookingView",
    "SlotUnavailable",
    "book",
    "book_on_site",
    "bookable_view",
    "cancel",
    "check_bookable_now",
    "check_in",
    "desk_awaiting_payment",
    "expire_overdue",
    "get_booking",
    "my_bookings",
    "pay",
    "payment_actions",
    "record_no_shows",
    "session_bookings",
]

DESK_ROLES = (Role.REGISTRATION, Role.ADMIN)
DESK_ONLY_METHODS = frozenset({"cash", "insurance"})


class SlotUnavailable(Conflict):
    code = "slot_unavailable"


@dataclasses.dataclass(frozen=True)
class BookingView:
    booking: Booking
    session: Session
    patient: Patient
    slot_number: int
    doctor: Doctor | None = None
    department: Department | None = None


def views(uow: UnitOfWork, bookings: list[Booking]) -> list[BookingView]:
    """Bookings with their sessions, patients, slots, doctors and departments (in a fixed
    number of queries, however many bookings)."""
    sessions, patients, numbers, doctors, departments = uow.bookings.context_of(bookings)
    found = []
    for b in bookings:
        session = sessions[b.session_id]
        doctor = doctors.get(session.doctor_id)
        found.append(BookingView(b, session, patients[b.patient_id], numbers[b.slot_id],
                                 doctor, departments.get(doctor.department_id)
                                 if doctor else None))
    return found


def _view(uow: UnitOfWork, booking: Booking) -> BookingView:
    return views(uow, [booking])[0]


def _why_not_bookable(uow: UnitOfWork, account: Account, patient_id: int,
                      session_id: int) -> NotFound:
    """The precise refusal when the booking's one look-up found nothing (off the hot path)."""
    if not uow.patients.is_managed_by(patient_id, account.id or 0):
        return NotFound("no such patient on this account", code="patient_not_found")
    return NotFound("no such session", code="session_not_found")


def _check_bookable(session: Session, now: dt.datetime) -> None:
    if session.status is not SessionStatus.SCHEDULED:
        raise Conflict("this session was cancelled", code="session_cancelled")
    if session.has_started(now):
        raise Conflict("this session has started", code="session_started")
    if not session.is_released(now):
        if session.release_policy is ReleasePolicy.DRAW:
            raise Conflict("this session's slots are given by a draw: enter its round",
                           code="draw_session")
        raise Conflict("this session's slots are not released yet", code="not_released")


def check_bookable_now(uow: UnitOfWork, deps: Deps, session_id: int,
                       now: dt.datetime | None = None) -> Session:
    """The session, when ``book`` would take it this moment (released, not started, not
    cancelled): a booking screen issues its action token only then, so tokens cannot be
    collected before a release."""
    session = uow.schedule.session(session_id)
    if session is None:
        raise NotFound("no such session", code="session_not_found")
    _check_bookable(session, deps.clock.now() if now is None else now)
    return session


def bookable_view(uow: UnitOfWork, deps: Deps, session_id: int) -> catalog.SessionView:
    """``check_bookable_now`` and ``catalog.session_view`` in one read: the booking
    screen's session, which issues its action token only when ``book`` would take it."""
    # One reading of the clock for both: read twice, a screen opened at the release
    # instant could pass the check and still show the session as not yet released.
    now = deps.clock.now()
    view = catalog.session_view(uow, deps, session_id, now)
    _check_bookable(view.session, now)
    return view


def payment_actions(deps: Deps, view: BookingView) -> tuple[bool, bool]:
    """Whether the booking can be paid, and cancelled online, now: a payment screen issues
    the token of each only then."""
    b = view.booking
    cutoff = dt.timedelta(hours=deps.settings.cancel_cutoff_hours)
    return (b.status is BookingStatus.HELD,
            b.can_cancel_online(deps.clock.now(), view.session.starts_at, cutoff))


def _hold(uow: UnitOfWork, deps: Deps, *, account: Account, patient: Patient,
          session: Session, department_id: int, ctx: RequestContext,
          at_desk: bool = False, payer: str | None = None,
          facts: QuotaFacts | None = None) -> tuple[BookingView, bool]:
    """Check the shared list and the quotas (the caller holds the locks), claim a slot and
    hold it. Also says whether the shared list lowered the quotas. ``facts``: read by the
    caller under the locks (PostgreSQL's fast path, which also commits with the hold)."""
    now = deps.clock.now()
    sid = session.id or 0
    pid = patient.id or 0
    fast = facts is not None
    if facts is None:
        facts = rules.facts_for(uow, deps, pid, None if at_desk else account, session_id=sid)
    if facts.in_session:
        raise Conflict("this patient already has a booking in this session",
                       code="already_booked")
    shared = shared_list.consult(uow, deps, shared_list.Point.BOOKING, ctx,
                                 identity=patient.id_number,
                                 phone=None if at_desk else account.phone, payer=payer,
                                 patient_id=pid, account_id=None if at_desk else account.id)
    rules.check_may_book(deps, facts, pid, department_id, session.starts_at,
                         served=not at_desk, lowered=shared.lowered)
    booking = Booking(session_id=sid, slot_id=0, patient_id=pid,
                      account_id=account.id or 0, fee_cents=session.fee_cents, created_at=now,
                      pay_by=now + dt.timedelta(minutes=deps.settings.payment_deadline_minutes),
                      channel=ctx.channel)
    if ctx.held_for_review:
        booking.hold_for_review(review.review_deadline(deps, now, session.starts_at))
    detail: dict[str, object] = {
        "channel": ctx.channel.value, "department": department_id,
        "doctor": session.doctor_id, "release_at": session.release_at.isoformat(),
        **ctx.timing()}
    if ctx.held_for_review:
        detail["held_for_review"] = list(ctx.held_for_review)
    event: dict[str, object] = {"account_id": account.id, "patient_id": pid,
                                "session_id": sid, **ctx.event_fields()}
    # Draw sessions give out only slots nobody on the waitlist wanted, once re-opened.
    leftovers_only = session.release_policy is ReleasePolicy.DRAW
    slot: tuple[int, int, dt.datetime | None] | None
    if fast:
        # One function call: the slot claimed, the booking and its event written; and the
        # transaction committed in the same message when it wrote nothing before (the
        # shared list's event) and has nothing to write after (a review's notice).
        uow.flush()
        slot = uow.bookings.hold_and_commit(
            booking, leftovers_only=leftovers_only, event={**event, "detail": detail},
            commit=not (ctx.held_for_review or uow.events.appended))
    elif uow.postgres:
        # The slot claimed, the booking and its event written in one statement.
        slot = uow.bookings.hold_free_slot(
            booking, leftovers_only=leftovers_only,
            event={**event, "kind": "booking.created", "at": now, "detail": detail})
    else:
        claimed = uow.schedule.claim_free_slot(sid, now, leftovers_only=leftovers_only)
        slot = None if claimed is None else (claimed.id, claimed.number, claimed.freed_at)
        if slot is not None:
            booking.slot_id = slot[0]
            uow.bookings.insert(booking)
    if slot is None:
        window = uow.rounds.open_rounds_of_sessions([sid], now).get(sid)
        if window is not None:
            # Its free slots are given by a short draw: asking there is the only way.
            raise Conflict("this session's free slots go to a draw among everyone who asks "
                           "in its request window: enter the round", code="request_window",
                           round=window)
        raise SlotUnavailable("no free slot left in this session")
    detail = {"channel": detail["channel"], "slot": slot[0],
              **{k: v for k, v in detail.items() if k != "channel"}}
    if slot[2] is not None:
        # The slot had re-opened (a cancellation, a lapsed hold): when, read in the claim.
        detail["freed_at"] = slot[2].astimezone(dt.UTC).isoformat()
    if uow.postgres:
        uow.events.note("booking.created", now, booking_id=booking.id, detail=detail, **event)
    else:
        uow.events.append("booking.created", now, booking_id=booking.id, detail=detail,
                          **event)
    if ctx.held_for_review:
        review.tell_held(uow, deps, booking, now)
    return BookingView(booking, session, patient, slot[1]), shared.lowered


def book(uow: UnitOfWork, deps: Deps, account: Account, patient_id: int, session_id: int,
         ctx: RequestContext) -> BookingView:
    """Book a slot of the session for one of the account's patients, under the patient's,
    account's and phones' locks (its current phone and those it verified within the quota
    window) so that parallel bookings cannot pass a quota together."""
    accounts.require_verified_phone(account)
    names = rules.lock_names(uow, patient_id, account)
    facts: QuotaFacts | None = None
    if uow.postgres:
        # The locks, the look-up and the quota facts in one message; the hold and the
        # commit in a second (see ``BookingRepository.read_for_booking``).
        while True:
            query = rules.facts_query(uow, deps, account, session_id=session_id)
            target, rows = uow.bookings.read_for_booking(
                uow.lock_keys(*names), account.id or 0, patient_id, session_id, query)
            facts = facts_of(rows)
            if not rules.unlocked_phones(uow, names, facts):
                break
            # The account moved off a phone within the window: its bookings count there
            # too, so this one must hold that phone's lock. Again, every lock in order (the
            # ROLLBACK and the first message again: two round trips more, for such an
            # account only; the BEGIN goes with the message, as in autocommit it did).
            uow.rollback()
            uow.autocommit()
            names = rules.lock_names(uow, patient_id, account, facts.phones)
    else:
        target = uow.bookings.target(account.id or 0, patient_id, session_id,
                                     uow.lock_keys(*names))
    if target is None:
        raise _why_not_bookable(uow, account, patient_id, session_id)
    _check_bookable(target.session, deps.clock.now())
    view, _ = _hold(uow, deps, account=account, patient=target.patient,
                    session=target.session, department_id=target.department_id, ctx=ctx,
                    facts=facts)
    uow.commit()
    return view


def book_on_site(uow: UnitOfWork, deps: Deps, staff: Account, session_id: int, id_number: str,
                 name: str, payer_account: str, ctx: RequestContext) -> BookingView:
    """Registration desk: verify the identity, book and take payment in one step."""
    identity = Identity.parse(id_number, name)
    payer = identify_payer(deps.payments, payer_account)
    window = dataclasses.replace(ctx, channel=Channel.WINDOW)
    patient = accounts.verified_patient(uow, deps, identity)
    uow.lock(("patient", patient.id or 0), ("payer", payer[0]))
    session = uow.schedule.session(session_id)
    if session is None:
        raise NotFound("no such session", code="session_not_found")
    _check_bookable(session, deps.clock.now())
    doctor = uow.schedule.doctor(session.doctor_id)
    assert doctor is not None
    view, lowered = _hold(uow, deps, account=staff, patient=patient, session=session,
                          department_id=doctor.department_id, ctx=window, at_desk=True,
                          payer=payer[0])
    held = uow.bookings.get_for_update(view.booking.id or 0)
    assert held is not None
    view = dataclasses.replace(view, booking=held)
    item = _record_payment(uow, deps, held, payer, staff, window, lowered=lowered)
    uow.commit()
    outbox.run_item(uow, deps, item)
    return view


def _own_booking(uow: UnitOfWork, account: Account, booking_id: int, *,
                 staff_may: bool = True) -> Booking:
    booking = uow.bookings.get_for_update(booking_id)
    if booking is None or (booking.account_id != account.id
                           and not (staff_may and account.role in DESK_ROLES)
                           and not identities.holds(uow, account, booking.patient_id)):
        raise NotFound("no such booking", code="booking_not_found")
    return booking


def get_booking(uow: UnitOfWork, deps: Deps, account: Account, booking_id: int) -> BookingView:
    """A booking, for its account or the desk (investigators read events, not bookings)."""
    booking = uow.bookings.get(booking_id)
    if booking is None or (booking.account_id != account.id
                           and account.role not in DESK_ROLES
                           and not identities.holds(uow, account, booking.patient_id)):
        raise NotFound("no such booking", code="booking_not_found")
    return _view(uow, booking)


def desk_awaiting_payment(uow: UnitOfWork, deps: Deps) -> list[BookingView]:
    """What the desk's walk-in entrants won or were offered and have not paid yet, soonest
    deadline first. Their wins reach the desk, not them (they entered without an account),
    so the desk calls them or takes the payment when they come back."""
    return views(uow, list(uow.bookings.desk_awaiting_payment()))


def my_bookings(uow: UnitOfWork, deps: Deps, account: Account) -> list[BookingView]:
    return views(uow, list(uow.bookings.of_account(account.id or 0)))


def session_bookings(uow: UnitOfWork, deps: Deps, session_id: int) -> list[BookingView]:
    if uow.schedule.session(session_id) is None:
        raise NotFound("no such session", code="session_not_found")
    return views(uow, list(uow.bookings.of_session(session_id)))


def pay(uow: UnitOfWork, deps: Deps, account: Account, booking_id: int, payer_account: str,
        ctx: RequestContext) -> BookingView:
    """Pay a held booking: marked paid (and the payer checked against its quota, under the
    payer's lock) in one transaction, charged through the provider after it commits. A
    declined charge puts the booking back to awaiting payment. The payer is who the
    provider says pays (``PaymentProvider.payer_of``), never the string as typed."""
    if normalize_payer(payer_account).split(":", 1)[0] in DESK_ONLY_METHODS \
            and account.role not in DESK_ROLES:
        raise InvalidInput("cash and medical-insurance cards are taken at the desk only",
                           code="invalid_payer")
    payer = identify_payer(deps.payments, payer_account)
    uow.lock(("payer", payer[0]))
    booking = _own_booking(uow, account, booking_id)
    patient = uow.patients.get(booking.patient_id)
    # The shared list names a payer as quotas do: by the provider's id, not the typed string.
    shared = shared_list.consult(uow, deps, shared_list.Point.PAYMENT, ctx,
                                 payer=payer[0],
                                 identity=patient.id_number if patient else None,
                                 phone=account.phone, patient_id=booking.patient_id,
                                 account_id=account.id)
    item = _record_payment(uow, deps, booking, payer, account, ctx, lowered=shared.lowered)
    view = _view(uow, booking)
    uow.commit()
    outbox.run_item(uow, deps, item)
    return view


def _record_payment(uow: UnitOfWork, deps: Deps, booking: Booking, payer: tuple[str, str],
                    by: Account, ctx: RequestContext, *, lowered: bool = False) -> int:
    """Mark the held booking paid and record the payment (payer data is evidence later);
    the charge itself is an outbox item, made once this transaction commits. ``payer`` is
    ``payments.identify_payer``'s (provider's payer id, record)."""
    now = deps.clock.now()
    payer_id, record = payer
    booking.pay(now, record)
    rules.check_payer(uow, deps, payer_id, booking.patient_id, lowered=lowered)
    payment_id = uow.bookings.add_payment(
        booking_id=booking.id or 0, provider=deps.payments.name, provider_ref=None,
        payer_account=record, payer_key=payer_id, amount_cents=booking.fee_cents,
        paid_at=now)
    uow.events.append("booking.paid", now, account_id=by.id, patient_id=booking.patient_id,
                      session_id=booking.session_id, booking_id=booking.id,
                      detail={"method": record.split(":", 1)[0],
                              "payer_index": uow.keyring.blind_index("payer", payer_id),
                              "channel": ctx.channel.value, **ctx.timing()},
                      **ctx.event_fields())
    return uow.outbox.add(outbox.CHARGE, {"payment": payment_id, "booking": booking.id}, now)


def cancel(uow: UnitOfWork, deps: Deps, account: Account, booking_id: int,
           ctx: RequestContext) -> BookingView:
    """Cancel a booking; a paid one is refunded through the provider (after the commit, and
    retried until it goes through). The slot goes where ``waitlist.on_slot_freed`` says."""
    now = deps.clock.now()
    seen = uow.bookings.get(booking_id)
    if seen is not None:
        # The patient's lock before the booking's row, in the order a booking takes them.
        uow.lock(("patient", seen.patient_id))
    booking = _own_booking(uow, account, booking_id)
    session = uow.schedule.session(booking.session_id)
    assert session is not None
    was_paid = booking.status is BookingStatus.PAID
    booking.cancel(now, session.starts_at,
                   dt.timedelta(hours=deps.settings.cancel_cutoff_hours),
                   late_window=dt.timedelta(hours=deps.settings.credit_late_cancel_hours),
                   by_staff=account.role in DESK_ROLES)
    if booking.account_id != account.id and account.role not in DESK_ROLES:
        # The identity's holder undoing a booking someone else made under their identity:
        # not their offence, whenever it happens.
        booking.late_cancel = False
    item = None
    if was_paid:
        payment = uow.bookings.refund_payment(booking.id or 0, now)
        if payment is not None:
            item = uow.outbox.add(outbox.REFUND, {"payment": payment.id,
                                                  "booking": booking.id}, now)
    uow.events.append("booking.cancelled", now, account_id=account.id,
                      patient_id=booking.patient_id, session_id=booking.session_id,
                      booking_id=booking.id,
                      detail={"refunded": was_paid, "late": booking.late_cancel,
                              "channel": ctx.channel.value, "slot": booking.slot_id},
                      **ctx.event_fields())
    waitlist.on_slot_freed(uow, deps, booking, session)
    view = _view(uow, booking)
    uow.commit()
    if item is not None:
        outbox.run_item(uow, deps, item)
    return view


def check_in(uow: UnitOfWork, deps: Deps, staff: Account, booking_id: int, id_number: str,
             name: str, ctx: RequestContext) -> BookingView:
    """At the desk: the presented identity must be the booking's patient."""
    presented = Identity.parse(id_number, name)
    now = deps.clock.now()
    booking = uow.bookings.get_for_update(booking_id)
    if booking is None:
        raise NotFound("no such booking", code="booking_not_found")
    view = _view(uow, booking)
    if (view.patient.id_number, view.patient.name) != (presented.id_number, presented.name):
        uow.events.append("checkin.identity_mismatch", now, account_id=staff.id,
                          patient_id=booking.patient_id, booking_id=booking.id,
                          session_id=booking.session_id, **ctx.event_fields())
        uow.commit()
        raise Forbidden("the presented identity is not this booking's patient",
                        code="identity_mismatch")
    booking.check_in(now, view.session.starts_at, view.session.ends_at)
    uow.events.append("booking.checked_in", now, account_id=staff.id,
                      patient_id=booking.patient_id, session_id=booking.session_id,
                      booking_id=booking.id, **ctx.event_fields())
    uow.commit()
    return view


def expire_overdue(units: Units, deps: Deps) -> int:
    """Expire holds whose payment deadline passed; their slots go on to the next taker. An
    expiry is recorded against the patient's credit (holding costs)."""
    now = deps.clock.now()
    count = 0
    with units() as uow:
        for booking in uow.bookings.overdue_holds(now):
            if booking.under_review:
                review.lapse(uow, deps, booking, now)
            else:
                booking.expire(now)
                uow.events.append("booking.expired", now, account_id=booking.account_id,
                                  patient_id=booking.patient_id,
                                  session_id=booking.session_id, booking_id=booking.id)
            session = uow.schedule.session(booking.session_id)
            assert session is not None
            waitlist.on_slot_freed(uow, deps, booking, session)
            count += 1
        uow.commit()
    return count


def record_no_shows(units: Units, deps: Deps) -> int:
    now = deps.clock.now()
    grace = dt.timedelta(minutes=deps.settings.no_show_grace_minutes)
    count = 0
    with units() as uow:
        for booking, session in uow.bookings.unattended(now - grace):
            booking.mark_no_show(now, session.ends_at, grace)
            uow.events.append("booking.no_show", now, account_id=booking.account_id,
                              patient_id=booking.patient_id, session_id=booking.session_id,
                              booking_id=booking.id)
            count += 1
        uow.commit()
    return count

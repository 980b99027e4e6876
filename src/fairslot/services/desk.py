"""The registration desk, with its limits (docs/pages.md, "The desk's limits").

A desk account acts for walk-in patients, so it could be a channel around every online
defence. Here each on-site booking and draw entry

- concerns only sessions (draws) from today to ``desk_days_ahead`` days ahead;
- rests on the patient's identity card: read by the card reader, or typed with a reason
  (typed ones have their own, smaller quota);
- counts against the desk account's quota for the shift and its rate per minute;

cancelling a booking that is not the desk's own needs the patient present (their ID card
matches the booking) or a second staff member's approval (their password); and every desk
action, refused or done, is a ``desk.action`` event (no ID number or name in it), which
monitoring reads like any other."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError, Forbidden, InvalidInput, NotFound
from fairslot.domain.identity import Identity, normalize_id_number
from fairslot.services import accounts, booking, release
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "DESK_EVENT",
    "Approval",
    "DeskLimit",
    "Evidence",
    "IdSource",
    "Payment",
    "book",
    "cancel",
    "check_in",
    "enter",
    "find",
    "pay",
    "shift_start",
    "usage",
]

DESK_EVENT = "desk.action"
COUNTED = frozenset({"book", "enter"})  # the actions the shift quota and rate count


class DeskLimit(FairslotError):
    """A desk limit refused the action."""

    code = "desk_limit"
    status = 429
    title = "Desk limit"


class IdSource(enum.StrEnum):
    CARD = "card"
    """Read from the identity card by the card reader."""
    TYPED = "typed"
    """Typed in from the card (the reader failed, an old card); needs a reason."""


@dataclasses.dataclass(frozen=True)
class Evidence:
    """How the desk knows who the patient is."""

    source: IdSource
    reason: str = ""

    @classmethod
    def of(cls, source: str, reason: str = "") -> Evidence:
        try:
            found = IdSource(source)
        except ValueError:
            raise InvalidInput("say how the ID was taken: card (read) or typed",
                               code="desk_id_source") from None
        reason = reason.strip()
        if found is IdSource.TYPED and len(reason) < 4:
            raise InvalidInput("a typed ID number needs a reason (the card could not be read)",
                               code="desk_reason")
        return cls(found, reason[:200])


@dataclasses.dataclass(frozen=True)
class Payment:
    """How a patient pays at the desk: cash, a medical-insurance card (its number), or a
    bank card or app account like online."""

    method: str
    account: str = ""

    @classmethod
    def parse(cls, raw: str) -> Payment:
        """``cash``, ``insurance:<card number>``, or an account as online."""
        text = raw.strip()
        if text.lower() == "cash":
            return cls("cash")
        method, _, rest = text.partition(":")
        if method.lower() == "insurance":
            return cls("insurance", rest)
        if method.lower() == "cash":
            return cls("cash")
        return cls("account", text)

    def payer(self, patient_id: int) -> str:
        if self.method == "cash":
            # Cash carries no payer identity: it is the patient's own, and the desk's
            # quotas bound how much of it one clerk can take.
            return f"cash:patient-{patient_id}"
        if self.method == "insurance":
            number = self.account.strip()
            if not (number.isascii() and number.isalnum() and 6 <= len(number) <= 30):
                raise InvalidInput("the medical-insurance card number is 6-30 letters or "
                                   "digits", code="invalid_payer")
            return f"insurance:{number}"
        return self.account


@dataclasses.dataclass(frozen=True)
class Approval:
    """A second staff member's approval: their username and password, typed at the desk."""

    username: str
    password: str


def shift_start(deps: Deps, now: dt.datetime) -> dt.datetime:
    local = now.astimezone(deps.settings.zone)
    hours = deps.settings.desk_shift_hours
    start_hour = (local.hour // hours) * hours
    return local.replace(hour=start_hour, minute=0, second=0, microsecond=0)


@dataclasses.dataclass(frozen=True)
class Usage:
    shift_started: dt.datetime
    actions: int
    typed: int
    last_minute: int
    actions_limit: int
    typed_limit: int
    per_minute: int


def usage(uow: UnitOfWork, deps: Deps, staff: Account) -> Usage:
    """What this desk account has used of its limits in the current shift."""
    now = deps.clock.now()
    start = shift_start(deps, now)
    done = [(at, d) for at, d in uow.events.of_account_since(staff.id or 0, DESK_EVENT,
                                                             min(start, now - _MINUTE))
            if d.get("action") in COUNTED and not d.get("refused")]
    in_shift = [(at, d) for at, d in done if at >= start]
    s = deps.settings
    return Usage(start, len(in_shift),
                 sum(1 for _, d in in_shift if d.get("id_source") == IdSource.TYPED),
                 sum(1 for at, _ in done if at > now - _MINUTE),
                 s.desk_actions_per_shift, s.desk_typed_ids_per_shift,
                 s.desk_actions_per_minute)


_MINUTE = dt.timedelta(minutes=1)


def _audit(uow: UnitOfWork, deps: Deps, staff: Account, action: str, ctx: RequestContext,
           *, evidence: Evidence | None = None, refused: str | None = None,
           **fields: Any) -> None:
    detail: dict[str, Any] = {"action": action}
    if evidence is not None:
        detail["id_source"] = evidence.source.value
        detail["reason_given"] = bool(evidence.reason)
    if refused:
        detail["refused"] = refused
    detail.update({k: v for k, v in fields.pop("detail", {}).items() if v is not None})
    uow.events.append(DESK_EVENT, deps.clock.now(), account_id=staff.id,
                      detail=detail, **fields, **ctx.event_fields())


def _refuse(uow: UnitOfWork, deps: Deps, staff: Account, action: str, ctx: RequestContext,
            error: FairslotError, evidence: Evidence | None = None,
            **fields: Any) -> FairslotError:
    """Record the refused attempt (in its own commit) and return the error to raise."""
    uow.rollback()
    _audit(uow, deps, staff, action, ctx, evidence=evidence, refused=error.code, **fields)
    uow.commit()
    return error


def _check_limits(uow: UnitOfWork, deps: Deps, staff: Account, action: str,
                  evidence: Evidence, visit_days: Sequence[dt.date],
                  ctx: RequestContext) -> None:
    """The day window, then the rate, the shift's quota and the typed-ID quota, under the
    desk account's lock (two clerks on one account cannot both pass the last one)."""
    uow.lock(("desk", staff.id or 0))
    now = deps.clock.now()
    today = now.astimezone(deps.settings.zone).date()
    last = today + dt.timedelta(days=deps.settings.desk_days_ahead)
    if any(not today <= day <= last for day in visit_days):
        raise _refuse(uow, deps, staff, action, ctx, DeskLimit(
            "the desk books and enters draws only for today and tomorrow",
            code="desk_day"), evidence)
    used = usage(uow, deps, staff)
    if used.last_minute >= used.per_minute:
        raise _refuse(uow, deps, staff, action, ctx, DeskLimit(
            f"at most {used.per_minute} desk bookings and entries a minute",
            code="desk_rate", limit=used.per_minute), evidence)
    if used.actions >= used.actions_limit:
        raise _refuse(uow, deps, staff, action, ctx, DeskLimit(
            f"this desk account made {used.actions} bookings and entries this shift "
            f"(limit {used.actions_limit})", code="desk_quota",
            limit=used.actions_limit, used=used.actions), evidence)
    if evidence.source is IdSource.TYPED and used.typed >= used.typed_limit:
        raise _refuse(uow, deps, staff, action, ctx, DeskLimit(
            f"this desk account typed {used.typed} ID numbers this shift "
            f"(limit {used.typed_limit}); read the card", code="desk_typed_quota",
            limit=used.typed_limit, used=used.typed), evidence)


# -- the actions -------------------------------------------------------------------------


def book(uow: UnitOfWork, deps: Deps, staff: Account, session_id: int, id_number: str,
         name: str, payment: Payment, evidence: Evidence,
         ctx: RequestContext) -> booking.BookingView:
    """Book a walk-in patient on site and take the payment, within the desk's limits."""
    session = uow.schedule.session(session_id)
    if session is None:
        raise NotFound("no such session", code="session_not_found")
    _check_limits(uow, deps, staff, "book", evidence,
                  [session.starts_at.astimezone(deps.settings.zone).date()], ctx)
    try:
        patient = accounts.verified_patient(uow, deps, Identity.parse(id_number, name))
        _audit(uow, deps, staff, "book", ctx, evidence=evidence, patient_id=patient.id,
               session_id=session_id, detail={"method": payment.method})
        return booking.book_on_site(uow, deps, staff, session_id, id_number, name,
                                    payment.payer(patient.id or 0), ctx)
    except FairslotError as exc:
        raise _refuse(uow, deps, staff, "book", ctx, exc, evidence,
                      session_id=session_id) from None


def enter(uow: UnitOfWork, deps: Deps, staff: Account, round_id: int, id_number: str,
          name: str, choices: Sequence[int], evidence: Evidence,
          ctx: RequestContext) -> release.EntryView:
    """Enter a walk-in patient in a draw that runs today or tomorrow, within the limits."""
    round_ = uow.rounds.get(round_id)
    if round_ is None:
        raise NotFound("no such round", code="round_not_found")
    _check_limits(uow, deps, staff, "enter", evidence,
                  [round_.closes_at.astimezone(deps.settings.zone).date()], ctx)
    try:
        _audit(uow, deps, staff, "enter", ctx, evidence=evidence, detail={"round": round_id})
        return release.enter_at_desk(uow, deps, staff, round_id, id_number, name, choices,
                                     ctx)
    except FairslotError as exc:
        raise _refuse(uow, deps, staff, "enter", ctx, exc, evidence,
                      detail={"round": round_id}) from None


def check_in(uow: UnitOfWork, deps: Deps, staff: Account, booking_id: int, id_number: str,
             name: str, evidence: Evidence, ctx: RequestContext) -> booking.BookingView:
    try:
        _audit(uow, deps, staff, "check_in", ctx, evidence=evidence, booking_id=booking_id)
        return booking.check_in(uow, deps, staff, booking_id, id_number, name, ctx)
    except FairslotError as exc:
        raise _refuse(uow, deps, staff, "check_in", ctx, exc, evidence,
                      booking_id=booking_id) from None


def pay(uow: UnitOfWork, deps: Deps, staff: Account, booking_id: int, payment: Payment,
        ctx: RequestContext) -> booking.BookingView:
    found = uow.bookings.get(booking_id)
    if found is None:
        raise NotFound("no such booking", code="booking_not_found")
    try:
        _audit(uow, deps, staff, "pay", ctx, booking_id=booking_id,
               detail={"method": payment.method})
        return booking.pay(uow, deps, staff, booking_id, payment.payer(found.patient_id),
                           ctx)
    except FairslotError as exc:
        raise _refuse(uow, deps, staff, "pay", ctx, exc, booking_id=booking_id,
                      detail={"method": payment.method}) from None


def _desk_accounts_own(staff: Account, account_id: int) -> bool:
    """This desk account's own booking. Not any desk account's: a walk-in patient's entry
    or booking made at one desk is theirs as much as an online one is, and a clerk who
    could cancel another desk's offers without the patient could steer them (issue 18)."""
    return staff.id is not None and staff.id == account_id


def cancel(uow: UnitOfWork, deps: Deps, staff: Account, booking_id: int, *,
           id_number: str = "", name: str = "", approval: Approval | None = None,
           reason: str = "", ctx: RequestContext) -> booking.BookingView:
    """Cancel (and refund) a booking or a waitlist offer at the desk. Its own (made by this
    desk account) it may cancel; anyone else's needs the patient present, their ID
    card matching the booking, or a second staff member's approval."""
    found = uow.bookings.get(booking_id)
    if found is None:
        raise NotFound("no such booking", code="booking_not_found")
    how = "desk_own"
    if not _desk_accounts_own(staff, found.account_id):
        if id_number.strip():
            presented = Identity.parse(id_number, name)
            view = booking.get_booking(uow, deps, staff, booking_id)
            if (view.patient.id_number, view.patient.name) != (presented.id_number,
                                                               presented.name):
                raise _refuse(uow, deps, staff, "cancel", ctx, Forbidden(
                    "the presented identity is not this booking's patient",
                    code="identity_mismatch"), booking_id=booking_id,
                    patient_id=found.patient_id)
            how = "patient_present"
        elif approval is not None and approval.username.strip():
            approver = _approver(uow, deps, staff, approval)
            if approver is None:
                raise _refuse(uow, deps, staff, "cancel", ctx, Forbidden(
                    "the second staff member's username or password is wrong, or it is "
                    "the same account", code="desk_approval"), booking_id=booking_id)
            how = f"approved_by:{approver.id}"
        else:
            raise _refuse(uow, deps, staff, "cancel", ctx, Forbidden(
                "this booking is not the desk's own: the patient must be present with the "
                "ID card, or a second staff member must approve", code="desk_second_staff"),
                booking_id=booking_id, patient_id=found.patient_id)
        if len(reason.strip()) < 4:
            raise InvalidInput("say why the desk cancels this booking", code="desk_reason")
    try:
        _audit(uow, deps, staff, "cancel", ctx, booking_id=booking_id,
               patient_id=found.patient_id, detail={"how": how})
        return booking.cancel(uow, deps, staff, booking_id, ctx)
    except FairslotError as exc:
        raise _refuse(uow, deps, staff, "cancel", ctx, exc, booking_id=booking_id,
                      detail={"how": how}) from None


def _approver(uow: UnitOfWork, deps: Deps, staff: Account,
              approval: Approval) -> Account | None:
    other = uow.accounts.by_username(approval.username.strip().lower())
    if other is None or other.id == staff.id or other.disabled or other.role not in (
            Role.REGISTRATION, Role.OPERATOR, Role.ADMIN):
        # Spend the same time as a real check, so the answer's delay names no account.
        with contextlib.suppress(VerificationError, InvalidHashError):
            deps.hasher.verify(deps.dummy_hash, approval.password)
        return None
    try:
        deps.hasher.verify(other.password_hash, approval.password)
    except (VerificationError, InvalidHashError):
        return None
    return other


@dataclasses.dataclass(frozen=True)
class Found:
    """What the desk finds for a patient: their bookings (newest first) and draw entries."""

    patient_id: int | None
    bookings: list[booking.BookingView]


def find(uow: UnitOfWork, deps: Deps, staff: Account, *, id_number: str = "",
         booking_id: int | None = None, ctx: RequestContext) -> Found:
    """The patient's bookings, by the ID number on their card or by a booking number. A
    search is a desk action too (it reads personal data): audited."""
    patient_id: int | None = None
    if booking_id is not None:
        view = booking.get_booking(uow, deps, staff, booking_id)
        patient_id = view.patient.id
    elif id_number.strip():
        found = uow.patients.by_id_number(normalize_id_number(id_number))
        patient_id = found.id if found is not None else None
    else:
        raise InvalidInput("give an ID number or a booking number", code="desk_find")
    _audit(uow, deps, staff, "lookup", ctx, patient_id=patient_id,
           detail={"by": "booking" if booking_id is not None else "id_number",
                   "found": patient_id is not None})
    uow.commit()
    if patient_id is None:
        return Found(None, [])
    rows = list(uow.bookings.of_patients([patient_id]))
    return Found(patient_id, booking.views(uow, rows))

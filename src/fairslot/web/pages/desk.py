"""The registration desk: find a patient by the ID card or a booking (or its QR code),
today's list per doctor, check-in, on-site booking and walk-in draw entry (today and
tomorrow only, the ID card read or typed with a reason, within the desk account's limits),
payment in cash, by medical-insurance card or an account, a printable receipt (挂号条),
and cancelling with the patient present or a second staff member's approval. Every action
goes through ``services.desk`` (audited, limited). An identity claim (a person's identity
to their own account) is recorded pending a second member of staff (``services.identities``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import BookingStatus
from fairslot.domain.errors import FairslotError, InvalidInput
from fairslot.services import booking, catalog, desk, identities, release, shared_list
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web import i18n
from fairslot.web.deps import DepsDep, UowDep, context
from fairslot.web.i18n import N_
from fairslot.web.pages import checkin
from fairslot.web.pages.common import (
    PageId,
    Viewer,
    Visitor,
    check_csrf,
    done_message,
    local,
    page_router,
    redirect,
    refused,
    render,
    today,
)

__all__ = ["router"]

router = page_router()

ACTIVE = (BookingStatus.HELD, BookingStatus.PAID)


def _desk_page(request: Request, uow: UnitOfWork, deps: Deps, account: Account, *,
               status: int = 200, error: FairslotError | str | None = None,
               notice: str | None = None, done_booking: Any = None,
               form: Mapping[str, str] | None = None, doctor_id: int | None = None,
               found: desk.Found | None = None) -> Response:
    day = today(deps)
    now = deps.clock.now()
    last = day + dt.timedelta(days=deps.settings.desk_days_ahead)
    todays = catalog.day_sessions(uow, deps, day)
    bookable: list[Any] = []
    d = day
    # Only sessions not started yet: booking refuses a started one (session_started), so a
    # session under way would only lead the clerk to a refusal.
    while d <= last:
        bookable += [r for r in (todays if d == day else catalog.day_sessions(uow, deps, d))
                     if not r.session.has_started(now)
                     and r.session.status.value == "scheduled" and r.counts.free > 0]
        d += dt.timedelta(days=1)
    # Grouped by department, so a clerk picks from one short list, not sixty sessions.
    groups: dict[str, list[Any]] = {}
    for r in bookable:
        groups.setdefault(r.department.name, []).append(r)
    # Today's list: one doctor's patients, session by session.
    doctors = sorted({(r.doctor.id, r.doctor.name, r.department.name) for r in todays},
                     key=lambda x: (x[2], x[1]))
    day_list = []
    if doctor_id is not None:
        for r in todays:
            if r.doctor.id == doctor_id:
                rows = [v for v in booking.session_bookings(uow, deps, r.session.id or 0)
                        if v.booking.status not in (BookingStatus.CANCELLED,
                                                    BookingStatus.EXPIRED)]
                day_list.append({"day": r, "rows": sorted(rows, key=lambda v: v.slot_number)})
    rounds = [v for v in release.open_rounds(uow, deps)
              if v.round.closes_at.astimezone(deps.settings.zone).date() <= last]
    round_rows = []
    for rv in rounds:
        department, _ = catalog.department(uow, deps, rv.round.department_id)
        options = [{"session": s.session,
                    "doctor": catalog.doctor(uow, deps, s.session.doctor_id)}
                   for s in rv.sessions]
        round_rows.append({"view": rv, "department": department, "options": options,
                           "closes": local(deps, rv.round.closes_at)})
    awaiting = [{"view": v, "pay_by": local(deps, v.booking.pay_by),
                 "starts": local(deps, v.session.starts_at)}
                for v in booking.desk_awaiting_payment(uow, deps)]
    found_rows = []
    if found is not None:
        for v in found.bookings:
            found_rows.append({"view": v, "starts": local(deps, v.session.starts_at),
                               "active": v.booking.status in ACTIVE})
    # Other hospitals' entries on the shared list held here for review: the patient is told
    # to ask the desk, so the desk sees them (masked) and clears or refuses each.
    reviews = []
    if deps.shared_list is not None:
        for r in shared_list.reviews(uow, deps, account):
            person = uow.patients.get(r.patient_id) if r.patient_id is not None else None
            reviews.append({"review": r, "patient": person,
                            "created": local(deps, r.created_at)})
    used = desk.usage(uow, deps, account)
    return render(request, "desk.html", status=status, account=account, error=error,
                  reviews=reviews, points=REVIEW_POINTS,
                  notice=notice, groups=groups, done_booking=done_booking,
                  form=dict(form or {}), today=day, awaiting=awaiting, doctors=doctors,
                  doctor_id=doctor_id, day_list=day_list, rounds=round_rows, found=found,
                  found_rows=found_rows, used=used, shift=local(deps, used.shift_started))


@router.get("/desk")
def desk_home(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
              done: Annotated[str | None, Query(max_length=40)] = None,
              booking_id: Annotated[int | None, Query(alias="booking", ge=1,
                                                      le=2**31 - 1)] = None,
              doctor: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
              ) -> Response:
    account = who.logged_in(Role.REGISTRATION)
    done_booking = None
    if booking_id is not None and done_message(done):
        done_booking = booking.get_booking(uow, deps, account, booking_id)
    return _desk_page(request, uow, deps, account, notice=done_message(done),
                      done_booking=done_booking, doctor_id=doctor)


def _desk_action(request: Request, uow: UnitOfWork, deps: Deps, who: Visitor,
                 csrf: str, form: dict[str, str], done: str,
                 action: Callable[[Account], int], *, show_again: str = "") -> Response:
    """A desk form's post: the clerk's role and the form's CSRF token checked, ``action``
    run (it returns the booking it concerned), then back to the desk page with that
    booking, or with the error and the fields to fill in again (never the ID number); a
    form posted from a found booking (``show_again``, its number) finds it again, so the
    clerk does not search twice."""
    account = who.logged_in(Role.REGISTRATION)
    check_csrf(request, csrf)
    try:
        booking_id = action(account)
    except FairslotError as exc:
        refused(uow)
        found = None
        if show_again:
            try:
                found = desk.find(uow, deps, account, booking_id=_positive_int(
                    show_again, "give a booking number"), ctx=context(request))
            except FairslotError:
                refused(uow)
        return _desk_page(request, uow, deps, account, status=exc.status, error=exc,
                          form=form, found=found)
    return redirect(f"/desk?done={done}&booking={booking_id}")


def _positive_int(raw: str, what: str) -> int:
    text = raw.strip()
    # Only plain ASCII digits ("²" is a digit to str.isdigit, not to int()).
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
        raise InvalidInput(what, code="invalid_number")
    return int(text)


def _booking_ref(deps: Deps, raw: str) -> int:
    """A booking number, or the text of a scanned check-in QR code."""
    text = raw.strip()
    if text.upper().startswith("FS1-"):
        found = checkin.booking_of(deps, text)
        if found is None:
            raise InvalidInput("this QR code is not a check-in code of this hospital",
                               code="invalid_qr")
        return found
    return _positive_int(text, "give a booking number")


Text = Annotated[str, Form(max_length=200)]


@router.post("/desk/find")
def desk_find(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
              csrf: Annotated[str, Form()] = "",
              query: Annotated[str, Form(max_length=80)] = "") -> Response:
    """Find a patient's bookings by ID number, booking number or QR code (a POST: the ID
    number never appears in a URL or a log)."""
    account = who.logged_in(Role.REGISTRATION)
    check_csrf(request, csrf)
    text = query.strip()
    try:
        if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) < 2**31:
            found = desk.find(uow, deps, account, booking_id=int(text) or None,
                              ctx=context(request))
        elif text.upper().startswith("FS1-"):
            found = desk.find(uow, deps, account, booking_id=_booking_ref(deps, text),
                              ctx=context(request))
        else:
            found = desk.find(uow, deps, account, id_number=text, ctx=context(request))
    except FairslotError as exc:
        refused(uow)
        return _desk_page(request, uow, deps, account, status=exc.status, error=exc)
    return _desk_page(request, uow, deps, account, found=found)


@router.post("/desk/check-in")
def desk_check_in(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                  csrf: Annotated[str, Form()] = "",
                  booking_id: Annotated[str, Form(max_length=60)] = "",
                  id_number: Annotated[str, Form(max_length=40)] = "",
                  name: Annotated[str, Form(max_length=80)] = "",
                  id_source: Annotated[str, Form(max_length=10)] = "",
                  typed_reason: Text = "") -> Response:
    def act(account: Account) -> int:
        evidence = desk.Evidence.of(id_source, typed_reason)
        return desk.check_in(uow, deps, account, _booking_ref(deps, booking_id), id_number,
                             name, evidence, context(request)).booking.id or 0

    return _desk_action(request, uow, deps, who, csrf,
                        {"booking_id": booking_id, "typed_reason": typed_reason,
                         "name": name, "identity_form": "c"},
                        "checked_in", act)


def _payment(method: str, account: str) -> desk.Payment:
    if method == "cash":
        return desk.Payment("cash")
    if method == "insurance":
        return desk.Payment("insurance", account)
    return desk.Payment("account", account)


@router.post("/desk/book")
def desk_book(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
              csrf: Annotated[str, Form()] = "",
              session_id: Annotated[str, Form(max_length=12)] = "",
              id_number: Annotated[str, Form(max_length=40)] = "",
              name: Annotated[str, Form(max_length=80)] = "",
              id_source: Annotated[str, Form(max_length=10)] = "",
              typed_reason: Text = "",
              method: Annotated[str, Form(max_length=20)] = "cash",
              payer_account: Annotated[str, Form(max_length=80)] = "") -> Response:
    def act(account: Account) -> int:
        evidence = desk.Evidence.of(id_source, typed_reason)
        return desk.book(uow, deps, account, _positive_int(session_id, "choose a session"),
                         id_number, name, _payment(method, payer_account), evidence,
                         context(request)).booking.id or 0

    return _desk_action(request, uow, deps, who, csrf,
                        {"session_id": session_id, "method": method,
                         "payer_account": payer_account, "typed_reason": typed_reason},
                        "desk_booked", act)


@router.post("/desk/enter")
def desk_enter(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
               csrf: Annotated[str, Form()] = "",
               choice: Annotated[str, Form(max_length=30)] = "",
               id_number: Annotated[str, Form(max_length=40)] = "",
               name: Annotated[str, Form(max_length=80)] = "",
               id_source: Annotated[str, Form(max_length=10)] = "",
               typed_reason: Text = "") -> Response:
    """Enter a walk-in patient in a draw: ``choice`` is ``round/session``."""
    account = who.logged_in(Role.REGISTRATION)
    check_csrf(request, csrf)
    try:
        round_text, _, session_text = choice.partition("/")
        round_id = _positive_int(round_text, "choose a draw")
        session_id = _positive_int(session_text, "choose a draw")
        evidence = desk.Evidence.of(id_source, typed_reason)
        desk.enter(uow, deps, account, round_id, id_number, name, [session_id], evidence,
                   context(request))
    except FairslotError as exc:
        refused(uow)
        return _desk_page(request, uow, deps, account, status=exc.status, error=exc,
                          form={"choice": choice, "typed_reason": typed_reason})
    return redirect("/desk?done=desk_entered")


@router.post("/desk/pay")
def desk_pay(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             csrf: Annotated[str, Form()] = "",
             booking_id: Annotated[str, Form(max_length=12)] = "",
             method: Annotated[str, Form(max_length=20)] = "cash",
             payer_account: Annotated[str, Form(max_length=80)] = "") -> Response:
    """Take the payment for a walk-in patient's draw win or waitlist offer."""
    return _desk_action(
        request, uow, deps, who, csrf, {"payer_account": payer_account}, "desk_paid",
        lambda account: desk.pay(uow, deps, account,
                                 _positive_int(booking_id, "give a booking number"),
                                 _payment(method, payer_account),
                                 context(request)).booking.id or 0)


@router.post("/desk/cancel")
def desk_cancel(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                csrf: Annotated[str, Form()] = "",
                booking_id: Annotated[str, Form(max_length=12)] = "",
                id_number: Annotated[str, Form(max_length=40)] = "",
                name: Annotated[str, Form(max_length=80)] = "",
                approver: Annotated[str, Form(max_length=64)] = "",
                approver_password: Annotated[str, Form(max_length=256)] = "",
                reason: Text = "") -> Response:
    def act(account: Account) -> int:
        approval = desk.Approval(approver, approver_password) if approver.strip() else None
        return desk.cancel(uow, deps, account,
                           _positive_int(booking_id, "give a booking number"),
                           id_number=id_number, name=name, approval=approval,
                           reason=reason, ctx=context(request)).booking.id or 0

    return _desk_action(request, uow, deps, who, csrf,
                        {"reason": reason, "cancel_booking": booking_id, "name": name},
                        "desk_cancelled", act, show_again=booking_id)


@router.post("/desk/identity-claim")
def desk_identity_claim(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                        csrf: Annotated[str, Form()] = "",
                        id_number: Annotated[str, Form(max_length=40)] = "",
                        name: Annotated[str, Form(max_length=80)] = "",
                        username: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Ask to give a person's identity (their ID card present) to their own account: the
    claim waits for a second member of staff (``/operator/identity-claims``)."""
    account = who.logged_in(Role.REGISTRATION)
    check_csrf(request, csrf)
    try:
        identities.claim_at_desk(uow, deps, account, id_number, name, username,
                                 context(request))
    except FairslotError as exc:
        refused(uow)
        return _desk_page(request, uow, deps, account, status=exc.status, error=exc,
                          form={"claim_username": username})
    return redirect("/desk?done=desk_claim_pending#identity-claim")


# Where a shared-list entry stopped a request, as the desk's review queue names it.
REVIEW_POINTS = {"registration": N_("Registering an account"),
                 "identity_link": N_("Adding a patient"), "draw_entry": N_("Entering a draw"),
                 "booking": N_("Booking a slot"), "payment": N_("Paying")}


@router.post("/desk/reviews")
def desk_review(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                csrf: Annotated[str, Form()] = "",
                entry: Annotated[str, Form(max_length=60)] = "",
                decision: Annotated[str, Form(max_length=10)] = "",
                note: Annotated[str, Form(max_length=600)] = "") -> Response:
    """Clear (it stops applying here) or refuse (refused here from then on) another
    hospital's entry held for review, with a note; as ``/api/v1/staff/consortium/reviews``."""
    account = who.logged_in(Role.REGISTRATION)
    check_csrf(request, csrf)
    try:
        if decision not in ("clear", "refuse"):
            raise InvalidInput("choose clear or refuse", code="invalid_decision")
        shared_list.decide_review(uow, deps, account, entry, clear=decision == "clear",
                                  note=note)
    except FairslotError as exc:
        refused(uow)
        return _desk_page(request, uow, deps, account, status=exc.status, error=exc)
    return redirect("/desk?done=review_decided#reviews")


# How a booking was paid, as the slip names it (the payer's method, from its prefix).
PAID_WITH = {"cash": N_("Cash"), "insurance": N_("Medical-insurance card"),
             "alipay": N_("Alipay"), "wechat": N_("WeChat Pay"), "card": N_("Bank card")}


def paid_with(payer: str | None) -> str | None:
    """The way a booking was paid, from the payer's method. Only the method: what follows
    it is the payment provider's own id of the payer, which tells a patient nothing."""
    if not payer:
        return None
    method, sep, _ = payer.partition(":")
    return PAID_WITH.get(method.lower() if sep else "", N_("Another account"))


@router.get("/desk/receipt/{booking_id}")
def receipt(booking_id: PageId, request: Request, who: Viewer, uow: UowDep,
            deps: DepsDep) -> Response:
    """The printable registration slip (挂号条) of a paid or checked-in booking."""
    account = who.logged_in(Role.REGISTRATION)
    view = booking.get_booking(uow, deps, account, booking_id)
    if view.booking.status not in (BookingStatus.PAID, BookingStatus.CHECKED_IN):
        raise InvalidInput("a receipt is printed for a paid booking",
                           code="receipt_unpaid")
    department, hospital = catalog.department(uow, deps, view.doctor.department_id) \
        if view.doctor else (None, None)
    code = checkin.code_for(deps, booking_id)
    lang = i18n.of_request(request)
    title = str(i18n.translate(lang, N_("Check-in QR code, booking %(n)s"), n=booking_id))
    return render(request, "receipt.html", view=view, department=department,
                  hospital=hospital, starts=local(deps, view.session.starts_at),
                  printed=local(deps, deps.clock.now()), clerk=account.username,
                  qr=checkin.qr_svg(code, title), code=code,
                  paid=paid_with(view.booking.payer_account))

"""Log-in, registration, log-out, and a patient's own page: their family patients, draw
entries and bookings, with pay and cancel."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import Booking, BookingStatus
from fairslot.domain.errors import FairslotError
from fairslot.domain.messages import CATALOGUE, language_of
from fairslot.guard.errors import ChallengeRequired
from fairslot.services import (
    accounts,
    booking,
    catalog,
    notifications,
    release,
    rules,
    shared_list,
)
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web import i18n
from fairslot.web.deps import SESSION_COOKIE, DepsDep, UowDep, context, screen
from fairslot.web.i18n import N_
from fairslot.web.login import guarded_log_in
from fairslot.web.pages import checkin
from fairslot.web.pages.common import (
    CSRF_COOKIE,
    DONE_MESSAGES,
    PageId,
    Retry,
    Viewer,
    action_token,
    check_csrf,
    guard_check,
    local,
    page_router,
    redirect,
    refused,
    render,
    retry_after,
    secure_cookies,
)

__all__ = ["me_page", "router"]

router = page_router()

SHARED_KINDS = {"ring_member": N_("Confirmed member of a scalper ring"),
                "no_show_suspension": N_("Suspended for missed appointments")}
SHARED_ACTIONS = {"refuse": N_("Refused"), "hold": N_("Held for staff review"),
                  "lower_quota": N_("Lower quotas")}
APPEAL_STATES = {"pending": N_("Waiting to reach the hospital"),
                 "delivered": N_("Delivered, awaiting a decision"),
                 "refused": N_("Not accepted"), "withdrawn": N_("Entry withdrawn"),
                 "upheld": N_("Upheld")}


def _safe_next(value: str | None) -> str | None:
    """Only a path on this site, never ``//elsewhere`` or ``https://elsewhere``."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


def _home_of(account: Account) -> str:
    return {Role.PATIENT: "/me", Role.REGISTRATION: "/desk", Role.OPERATOR: "/operator",
            Role.INVESTIGATOR: "/investigations",
            Role.ADMIN: "/admin/users"}.get(account.role, "/")


def _signed_in(request: Request, deps: Deps, to: str, token: str) -> Response:
    """Where a successful log-in or registration goes: the session cookie set, the
    anonymous CSRF cookie dropped (the signed-in pages bind CSRF to the session)."""
    response = redirect(to)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=secure_cookies(request),
                        max_age=deps.settings.auth_token_hours * 3600)
    response.delete_cookie(CSRF_COOKIE)
    return response


def _challenge(exc: FairslotError) -> Any:
    return exc.extra.get("challenge") if isinstance(exc, ChallengeRequired) else None


@router.get("/lang")
def switch_language(request: Request,
                    to: Annotated[str, Query(max_length=10)] = "",
                    next: Annotated[str, Query(max_length=500)] = "/") -> Response:
    """Remember the visitor's language in this browser (a year) and go back."""
    response = redirect(_safe_next(next) or "/")
    response.set_cookie(i18n.LANG_COOKIE, i18n.language(to).code, max_age=365 * 86400,
                        httponly=True, samesite="lax", secure=secure_cookies(request))
    return response


@router.get("/login")
def login_form(request: Request, who: Viewer, next: str | None = None) -> Response:
    return render(request, "login.html", next=_safe_next(next) or "", username="",
                  password="", challenge=None)


@router.post("/login")
def login(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
          csrf: Annotated[str, Form()] = "",
          username: Annotated[str, Form(max_length=64)] = "",
          password: Annotated[str, Form(max_length=256)] = "",
          next: Annotated[str, Form(max_length=500)] = "",
          altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    check_csrf(request, csrf)
    try:
        token, account = guarded_log_in(request, uow, deps, username, password,
                                        altcha or None)
    except FairslotError as exc:
        refused(uow)
        challenge = _challenge(exc)
        # The device check is no failure: the page solves it and sends the same form again
        # (the password goes back only into this no-store page, only for that).
        return render(request, "login.html", status=exc.status, next=_safe_next(next) or "",
                      username=username, password=password if challenge else "",
                      error=None if challenge else exc, challenge=challenge)
    return _signed_in(request, deps, _safe_next(next) or _home_of(account), token)


@router.get("/register")
def register_form(request: Request, who: Viewer) -> Response:
    return render(request, "register.html", username="", phone="", password="",
                  challenge=None)


@router.post("/register")
def register(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             csrf: Annotated[str, Form()] = "",
             username: Annotated[str, Form(max_length=64)] = "",
             password: Annotated[str, Form(max_length=256)] = "",
             phone: Annotated[str, Form(max_length=32)] = "",
             altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    check_csrf(request, csrf)
    try:
        guard_check(request, "registration", pow_payload=altcha or None)
        # The account's messages (codes, draw results, reminders) in the language of the
        # page it registered on.
        account = accounts.register(uow, deps, username, password, phone, context(request),
                                    language=i18n.of_request(request).tag)
        token = accounts.issue_token(uow, deps, account.id or 0)
    except FairslotError as exc:
        refused(uow)
        challenge = _challenge(exc)
        return render(request, "register.html", status=exc.status, username=username,
                      phone=phone, password=password if challenge else "",
                      error=None if challenge else exc, challenge=challenge)
    return _signed_in(request, deps, "/me/phone?done=registered", token)


@router.post("/logout")
def logout(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
           csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        accounts.log_out(uow, deps, token)
    response = redirect("/")
    response.delete_cookie(SESSION_COOKIE)
    return response


def me_page(request: Request, uow: UnitOfWork, deps: Deps, account: Account, *,
            status: int = 200, error: FairslotError | str | None = None, notice: str | None = None,
            retry: Retry | None = None, form: Mapping[str, str] | None = None) -> Response:
    # Staff accounts book at the desk for others; those bookings belong on the desk pages,
    # not in a personal list with pay and cancel buttons.
    is_patient = account.role is Role.PATIENT
    patients = accounts.list_patients(uow, deps, account) if is_patient else []
    views = booking.my_bookings(uow, deps, account) if is_patient else []
    now = deps.clock.now()
    cutoff = dt.timedelta(hours=deps.settings.cancel_cutoff_hours)
    if retry is None and any(v.booking.active for v in views):
        screen(request, account)  # this page hands out pay and cancel tokens
    items = []
    for v in views:
        b = v.booking
        target = b.id or 0
        item: dict[str, Any] = {"view": v, "pay_token": None, "cancel_token": None,
                                "qr": None, "code": None,
                                "pay_by": local(deps, b.pay_by),
                                "pay_by_iso": b.pay_by.isoformat() if b.pay_by else "",
                                "starts": local(deps, v.session.starts_at), "retry": None,
                                "late": False}
        # Tokens are issued here, on the screen that leads to paying or cancelling; cancel
        # only where it can still work online.
        # A booking held for the hospital's review cannot be paid yet: no pay form for it.
        if b.status is BookingStatus.HELD and not b.under_review:
            item["pay_token"] = action_token(request, account, "pay", str(target))
        if b.can_cancel_online(now, v.session.starts_at, cutoff):
            item["cancel_token"] = action_token(request, account, "cancel", str(target))
            item["late"] = _late_cancel(deps, b, v.session.starts_at, account, now)
        if retry is not None and retry.target == target:
            item["retry"] = retry
            item[f"{retry.action}_token"] = retry.token
        items.append(item)
    entries = []
    booked = {v.booking.id: v for v in views}
    for e in (release.my_entries(uow, deps, account) if is_patient else []):
        first = catalog.session_view(uow, deps, e.entry.choices[0]) if e.entry.choices else None
        entries.append({"view": e, "first": first,
                        "first_starts": local(deps, first.session.starts_at) if first else "",
                        "won": booked.get(e.entry.booking_id)})
    shared = shared_list.affecting(uow, deps, account) if is_patient else []
    standings = [{"patient": p, "standing": rules.standing(uow, deps, p.id or 0)}
                 for p in patients]
    for item in items:
        b = item["view"].booking
        if b.status in (BookingStatus.PAID, BookingStatus.HELD):
            code = checkin.code_for(deps, b.id or 0)
            title = str(i18n.translate(i18n.of_request(request),
                                       N_("Check-in QR code, booking %(n)s"), n=b.id))
            item["qr"] = checkin.qr_svg(code, title) if b.status is BookingStatus.PAID \
                else None
            item["code"] = code if b.status is BookingStatus.PAID else None
    return render(request, "me.html", status=status, account=account, patients=patients,
                  items=items, error=error, notice=notice, entries=entries, shared=shared,
                  kinds=SHARED_KINDS, actions=SHARED_ACTIONS, appeal_states=APPEAL_STATES,
                  names={p.id: p.name for p in patients}, form=dict(form or {}),
                  now=deps.clock.now(),
                  standings=standings, deadline_minutes=deps.settings.payment_deadline_minutes,
                  late_hours=deps.settings.credit_late_cancel_hours, pay_methods=PAY_METHODS,
                  suspension_days=(deps.settings.credit_suspension_days or [0])[0],
                  suspended_until=lambda s: local(deps, s.until))


@router.get("/me")
def me(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
       done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    account = who.logged_in()
    return me_page(request, uow, deps, account, notice=DONE_MESSAGES.get(done or ""))


@router.get("/me/inbox")
def inbox(request: Request, who: Viewer, uow: UowDep, deps: DepsDep) -> Response:
    """What fairslot told the account, newest first: draw results, waitlist offers, payment
    and visit reminders, each written in the account's language when it was sent."""
    account = who.logged_in()
    language = language_of(account.language)
    items = [{"at": local(deps, n.at), "text": n.text,
              "subject": CATALOGUE.get(n.kind, {}).get(language, ("", ""))[0]}
             for n in notifications.inbox(uow, deps, account)]
    return render(request, "inbox.html", account=account, items=items,
                  text_lang="zh-CN" if language == "zh-CN" else "en")


@router.post("/me/patients")
def add_patient(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                csrf: Annotated[str, Form()] = "",
                id_number: Annotated[str, Form(max_length=40)] = "",
                name: Annotated[str, Form(max_length=80)] = "",
                phone: Annotated[str, Form(max_length=32)] = "",
                consent_code: Annotated[str, Form(max_length=12)] = "") -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    try:
        accounts.add_patient(uow, deps, account, id_number, name, phone or None,
                             context(request), consent_code=consent_code or None)
    except FairslotError as exc:
        refused(uow)
        # What was typed is shown again (on this person's own page, over HTTPS).
        return me_page(request, uow, deps, account, status=exc.status, error=exc,
                       form={"name": name, "id_number": id_number, "phone": phone})
    return redirect("/me?done=patient_added")


@router.post("/me/appeals")
def send_appeal(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                csrf: Annotated[str, Form()] = "",
                entry: Annotated[str, Form(max_length=80)] = "",
                message: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """A patient appeals another hospital's entry that affects one of their people."""
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    try:
        shared_list.appeal(uow, deps, account, entry, message, context(request))
    except FairslotError as exc:
        refused(uow)
        return me_page(request, uow, deps, account, status=exc.status, error=exc.detail)
    return redirect("/me?done=appealed#shared-list")


# The ways to pay online, as the pay form offers them: the patient types only the phone
# number or account name, and the method is put in front (``alipay:13900001234``).
PAY_METHODS = [("alipay", N_("Alipay")), ("wechat", N_("WeChat Pay")),
               ("card", N_("Bank card"))]


@router.post("/bookings/{booking_id}/pay")
def pay(booking_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
        csrf: Annotated[str, Form()] = "",
        payer_account: Annotated[str, Form(max_length=80)] = "",
        payer_method: Annotated[str, Form(max_length=20)] = "",
        action_token_: Annotated[str, Form(alias="action_token", max_length=300)] = "",
        altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    payer_account = payer_account.strip()
    if payer_account and ":" not in payer_account and payer_method in dict(PAY_METHODS):
        payer_account = f"{payer_method}:{payer_account}"
    try:
        passed = guard_check(request, "payment", account_id=str(account.id),
                             payer=deps.payments.payer_of(payer_account), need_token="pay",
                             target=str(booking_id), token=action_token_,
                             pow_payload=altcha or None)
        booking.pay(uow, deps, account, booking_id, payer_account, context(request, passed))
    except FairslotError as exc:
        refused(uow)
        retry = retry_after(exc, "pay", booking_id, action_token_,
                            lambda: action_token(request, account, "pay", str(booking_id)),
                            payer_account)
        return me_page(request, uow, deps, account, status=exc.status, error=exc,
                       retry=retry)
    return redirect(f"/me?done=paid#booking-{booking_id}")


def _late_cancel(deps: Deps, b: Booking, starts_at: dt.datetime, account: Account,
                 now: dt.datetime) -> bool:
    """Would cancelling ``b`` now count against the patient's credit? (Only the account
    that made it can commit that offence; the identity's holder undoing it never does.)"""
    return (b.account_id == account.id
            and starts_at - now < dt.timedelta(hours=deps.settings.credit_late_cancel_hours))


@router.post("/bookings/{booking_id}/cancel")
def cancel(booking_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
           csrf: Annotated[str, Form()] = "",
           understood: Annotated[str, Form(max_length=10)] = "",
           action_token_: Annotated[str, Form(alias="action_token", max_length=300)] = "",
           altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    # A late cancellation suspends the patient: it needs the box that says so ticked, or
    # nothing happens (and the page's token is not spent).
    mine = uow.bookings.get(booking_id)
    session = uow.schedule.session(mine.session_id) if mine is not None else None
    if (mine is not None and session is not None and not understood
            and mine.account_id == account.id and mine.active
            and _late_cancel(deps, mine, session.starts_at, account, deps.clock.now())):
        refused(uow)
        return me_page(request, uow, deps, account, status=400, error=N_(
            "Tick the box to confirm that you understand this is a late cancellation."))
    try:
        guard_check(request, "booking", account_id=str(account.id), need_token="cancel",
                    target=str(booking_id), token=action_token_, pow_payload=altcha or None)
        booking.cancel(uow, deps, account, booking_id, context(request))
    except FairslotError as exc:
        refused(uow)
        retry = retry_after(exc, "cancel", booking_id, action_token_,
                            lambda: action_token(request, account, "cancel",
                                                 str(booking_id)))
        return me_page(request, uow, deps, account, status=exc.status, error=exc,
                       retry=retry)
    return redirect(f"/me?done=cancelled#booking-{booking_id}")

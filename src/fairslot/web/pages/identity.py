"""A patient's phone (verification by a code, change of number) and own identity (claim it,
then see and cancel everything done under it)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import BookingStatus
from fairslot.domain.errors import FairslotError
from fairslot.domain.identity import mask_phone
from fairslot.services import accounts, booking, identities, release
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import DepsDep, UowDep, context, screen
from fairslot.web.i18n import N_
from fairslot.web.pages.common import (
    PageId,
    Viewer,
    action_token,
    check_csrf,
    local,
    page_router,
    redirect,
    refused,
    render,
)

__all__ = ["router"]

router = page_router()

PHONE_NOTICES = {
    "registered": N_("Welcome: type the code we sent to your phone"),
    "sent": N_("A code is on its way"),
    "verified": N_("Phone number verified"),
}


def phone_page(request: Request, uow: UnitOfWork, deps: Deps, account: Account, *,
               status: int = 200, error: str | None = None, notice: str | None = None,
               new_phone: str = "") -> Response:
    return render(request, "phone.html", status=status, account=account, error=error,
                  notice=notice, new_phone=new_phone,
                  phone=mask_phone(account.phone) if account.phone else "",
                  verified=account.phone_verified_at is not None,
                  outbox=deps.settings.dev_outbox_page)


@router.get("/me/phone")
def phone(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
          done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    account = who.logged_in(Role.PATIENT)
    return phone_page(request, uow, deps, account, notice=PHONE_NOTICES.get(done or ""))


@router.post("/me/phone/verify")
def verify(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
           csrf: Annotated[str, Form()] = "",
           code: Annotated[str, Form(max_length=12)] = "") -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    try:
        accounts.verify_phone(uow, deps, account, code, context(request))
    except FairslotError as exc:
        refused(uow)
        return phone_page(request, uow, deps, account, status=exc.status, error=exc.detail)
    return redirect("/me/phone?done=verified")


@router.post("/me/phone/code")
def resend(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
           csrf: Annotated[str, Form()] = "",
           phone: Annotated[str, Form(max_length=32)] = "") -> Response:
    """Send a code again, or (with ``phone``) to a new number."""
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    try:
        if phone.strip():
            accounts.change_phone(uow, deps, account, phone)
        else:
            accounts.request_phone_code(uow, deps, account)
    except FairslotError as exc:
        refused(uow)
        return phone_page(request, uow, deps, account, status=exc.status, error=exc.detail,
                          new_phone=phone)
    return redirect("/me/phone?done=sent")


IDENTITY_NOTICES = {
    "claimed": N_("Identity claimed: everything done under it is below"),
    "withdrawn": N_("Entry withdrawn"),
    "unlinked": N_("That account's link is removed"),
}


def identity_page(request: Request, uow: UnitOfWork, deps: Deps, account: Account, *,
                  status: int = 200, error: str | None = None, notice: str | None = None,
                  form: dict[str, str] | None = None) -> Response:
    held = identities.held(uow, deps, account)
    now = deps.clock.now()
    if any(b.active for v in held for b in v.bookings):
        screen(request, account)  # this page hands out cancel tokens
    shown = []
    for v in held:
        bookings = []
        for view in booking.views(uow, v.bookings):
            b = view.booking
            token = None
            if b.status in (BookingStatus.HELD, BookingStatus.PAID) and b.can_cancel_online(
                    now, view.session.starts_at,
                    dt.timedelta(hours=deps.settings.cancel_cutoff_hours)):
                token = action_token(request, account, "cancel", str(b.id))
            bookings.append({"view": view, "starts": local(deps, view.session.starts_at),
                             "mine": b.account_id == account.id, "cancel_token": token})
        shown.append({"patient": v.patient, "bookings": bookings, "entries": v.entries,
                      "managers": v.managers})
    return render(request, "identity.html", status=status, error=error, notice=notice,
                  held=shown, form=form or {})


@router.get("/me/identity")
def identity(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    account = who.logged_in(Role.PATIENT)
    return identity_page(request, uow, deps, account,
                         notice=IDENTITY_NOTICES.get(done or ""))


@router.post("/me/identity")
def claim(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
          csrf: Annotated[str, Form()] = "",
          id_number: Annotated[str, Form(max_length=40)] = "",
          name: Annotated[str, Form(max_length=80)] = "",
          consent_code: Annotated[str, Form(max_length=12)] = "") -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    try:
        identities.claim(uow, deps, account, id_number, name, context(request),
                         consent_code=consent_code or None)
    except FairslotError as exc:
        refused(uow)
        return identity_page(request, uow, deps, account, status=exc.status, error=exc.detail,
                             form={"id_number": id_number, "name": name})
    return redirect("/me/identity?done=claimed")


@router.post("/me/identity/entries/{entry_id}/withdraw")
def withdraw(entry_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             csrf: Annotated[str, Form()] = "") -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    try:
        release.withdraw(uow, deps, account, entry_id, context(request))
    except FairslotError as exc:
        refused(uow)
        return identity_page(request, uow, deps, account, status=exc.status, error=exc.detail)
    return redirect("/me/identity?done=withdrawn")


@router.post("/me/identity/{patient_id}/links/{account_id}/remove")
def unlink(patient_id: PageId, account_id: PageId, request: Request, who: Viewer, uow: UowDep,
           deps: DepsDep, csrf: Annotated[str, Form()] = "") -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    try:
        identities.revoke_link(uow, deps, account, patient_id, account_id, context(request))
    except FairslotError as exc:
        refused(uow)
        return identity_page(request, uow, deps, account, status=exc.status, error=exc.detail)
    return redirect("/me/identity?done=unlinked")

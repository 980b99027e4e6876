"""A patient's phone (verification by a code, change of number) and own identity (claim it,
then see and cancel everything done under it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError
from fairslot.domain.identity import mask_phone
from fairslot.services import accounts
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import DepsDep, UowDep, context
from fairslot.web.pages.common import Viewer, check_csrf, page_router, redirect, refused, render

__all__ = ["router"]

router = page_router()

PHONE_NOTICES = {
    "registered": "注册成功，请输入发到手机的验证码 Welcome: type the code we sent to your phone",
    "sent": "验证码已发送 A code is on its way",
    "verified": "手机号已验证 Phone number verified",
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

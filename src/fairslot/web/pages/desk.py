"""The registration desk: check-in against the presented identity card, on-site booking
with payment, and the walk-in patients' draw wins and offers awaiting payment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError, InvalidInput
from fairslot.services import booking, catalog
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import DepsDep, UowDep, context
from fairslot.web.pages.common import (
    DONE_MESSAGES,
    Viewer,
    Visitor,
    check_csrf,
    local,
    page_router,
    redirect,
    refused,
    render,
    today,
)

__all__ = ["router"]

router = page_router()


def _desk_page(request: Request, uow: UnitOfWork, deps: Deps, account: Account, *,
               status: int = 200, error: FairslotError | str | None = None,
               notice: str | None = None,
               done_booking: Any = None, form: Mapping[str, str] | None = None) -> Response:
    day = today(deps)
    started_before = deps.clock.now() - dt.timedelta(minutes=deps.settings.session_minutes)
    sessions = [r for r in catalog.day_sessions(uow, deps, day)
                if not r.session.has_started(started_before)]
    sessions += catalog.day_sessions(uow, deps, day + dt.timedelta(days=1))
    awaiting = [{"view": v, "pay_by": local(deps, v.booking.pay_by),
                 "starts": local(deps, v.session.starts_at)}
                for v in booking.desk_awaiting_payment(uow, deps)]
    return render(request, "desk.html", status=status, account=account, error=error,
                  notice=notice, sessions=sessions, done_booking=done_booking,
                  form=dict(form or {}), today=day, awaiting=awaiting)


@router.get("/desk")
def desk(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
         done: Annotated[str | None, Query(max_length=40)] = None,
         booking_id: Annotated[int | None, Query(alias="booking", ge=1, le=2**31 - 1)] = None,
         ) -> Response:
    account = who.logged_in(Role.REGISTRATION)
    done_booking = None
    if booking_id is not None and done in DONE_MESSAGES:
        done_booking = booking.get_booking(uow, deps, account, booking_id)
    return _desk_page(request, uow, deps, account, notice=DONE_MESSAGES.get(done or ""),
                      done_booking=done_booking)


def _desk_action(request: Request, uow: UnitOfWork, deps: Deps, who: Visitor,
                 csrf: str, form: dict[str, str], done: str,
                 action: Callable[[Account], booking.BookingView]) -> Response:
    """A desk form's post: the clerk's role and the form's CSRF token checked, ``action``
    run, then back to the desk page with the booking it concerned, or with the error and
    the fields to fill in again."""
    account = who.logged_in(Role.REGISTRATION)
    check_csrf(request, csrf)
    try:
        view = action(account)
    except FairslotError as exc:
        refused(uow)
        return _desk_page(request, uow, deps, account, status=exc.status, error=exc,
                          form=form)
    return redirect(f"/desk?done={done}&booking={view.booking.id}")


def _positive_int(raw: str, what: str) -> int:
    text = raw.strip()
    # Only plain ASCII digits ("²" is a digit to str.isdigit, not to int()).
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
        raise InvalidInput(f"请填写有效的{what}", code="invalid_number")
    return int(text)


@router.post("/desk/check-in")
def desk_check_in(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                  csrf: Annotated[str, Form()] = "",
                  booking_id: Annotated[str, Form(max_length=12)] = "",
                  id_number: Annotated[str, Form(max_length=40)] = "",
                  name: Annotated[str, Form(max_length=80)] = "") -> Response:
    return _desk_action(
        request, uow, deps, who, csrf, {"booking_id": booking_id}, "checked_in",
        lambda account: booking.check_in(
            uow, deps, account, _positive_int(booking_id, "预约号 booking number"),
            id_number, name, context(request)))


@router.post("/desk/book")
def desk_book(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
              csrf: Annotated[str, Form()] = "",
              session_id: Annotated[str, Form(max_length=12)] = "",
              id_number: Annotated[str, Form(max_length=40)] = "",
              name: Annotated[str, Form(max_length=80)] = "",
              payer_account: Annotated[str, Form(max_length=80)] = "") -> Response:
    return _desk_action(
        request, uow, deps, who, csrf,
        {"session_id": session_id, "payer_account": payer_account}, "desk_booked",
        lambda account: booking.book_on_site(
            uow, deps, account, _positive_int(session_id, "出诊 session"), id_number, name,
            payer_account, context(request)))


@router.post("/desk/pay")
def desk_pay(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             csrf: Annotated[str, Form()] = "",
             booking_id: Annotated[str, Form(max_length=12)] = "",
             payer_account: Annotated[str, Form(max_length=80)] = "") -> Response:
    """Take the payment for a walk-in patient's draw win or waitlist offer."""
    return _desk_action(
        request, uow, deps, who, csrf, {"payer_account": payer_account}, "desk_paid",
        lambda account: booking.pay(
            uow, deps, account, _positive_int(booking_id, "预约号 booking number"),
            payer_account, context(request)))

"""Booking a slot: choose which family patient, confirm (the page that issues the action
token), book."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError, NotFound
from fairslot.services import accounts, booking, catalog
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import DepsDep, UowDep, booking_screen_shown, context, screen
from fairslot.web.pages.common import (
    PageId,
    Retry,
    Viewer,
    action_token,
    check_csrf,
    guard_check,
    guard_release,
    local,
    page_router,
    redirect,
    refused,
    render,
    retry_after,
)

__all__ = ["router"]

router = page_router()


@router.get("/sessions/{session_id}/book")
def choose_patient(session_id: PageId, request: Request, who: Viewer, uow: UowDep,
                   deps: DepsDep) -> Response:
    account = who.logged_in(Role.PATIENT)
    view = catalog.session_view(uow, deps, session_id)
    return render(request, "book_choose.html", view=view,
                  starts=local(deps, view.session.starts_at),
                  opens=local(deps, view.session.release_at),
                  patients=accounts.list_patients(uow, deps, account))


def _confirm_page(request: Request, uow: UnitOfWork, deps: Deps, account: Account,
                  session_id: int, patient_id: int, *, status: int = 200,
                  error: FairslotError | str | None = None, retry: Retry | None = None) -> Response:
    # One reading of the clock for the page's view and its check (see booking.bookable_view).
    now = deps.clock.now()
    view = catalog.session_view(uow, deps, session_id, now)
    patient = next((p for p in accounts.list_patients(uow, deps, account)
                    if p.id == patient_id), None)
    if patient is None:
        raise NotFound("no such patient on this account",
                       code="patient_not_found")
    target = f"{session_id}/{patient_id}"
    if retry is None:
        booking.check_bookable_now(uow, deps, session_id, now)
        screen(request, account)
        booking_screen_shown(request, account, view.session, patient_id)
    token = retry.token if retry else action_token(request, account, "book", target)
    department, _ = catalog.department(uow, deps, view.doctor.department_id)
    return render(request, "book_confirm.html", status=status, view=view, patient=patient,
                  department=department, token=token, error=error,
                  challenge=retry.challenge if retry else None,
                  starts=local(deps, view.session.starts_at),
                  deadline_minutes=deps.settings.payment_deadline_minutes)


@router.get("/sessions/{session_id}/confirm")
def confirm(session_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
            patient_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> Response:
    account = who.logged_in(Role.PATIENT)
    if patient_id is None:
        return redirect(f"/sessions/{session_id}/book")
    return _confirm_page(request, uow, deps, account, session_id, patient_id)


@router.post("/sessions/{session_id}/book")
def book(session_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
         csrf: Annotated[str, Form()] = "",
         patient_id: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
         action_token_: Annotated[str, Form(alias="action_token", max_length=300)] = "",
         altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    target = f"{session_id}/{patient_id}"
    passed = None
    try:
        passed = guard_check(request, "booking", account_id=str(account.id),
                             patient_id=str(patient_id), need_token="book", target=target,
                             token=action_token_, pow_payload=altcha or None, exclusive=True)
        view = booking.book(uow, deps, account, patient_id, session_id,
                            context(request, passed))
    except FairslotError as exc:
        refused(uow)
        retry = retry_after(exc, "book", session_id, action_token_,
                            lambda: action_token(request, account, "book", target))
        return _confirm_page(request, uow, deps, account, session_id, patient_id,
                             status=exc.status, error=exc, retry=retry)
    finally:
        guard_release(request, passed)
    # A booking held for review cannot be paid yet: the message says so, not "please pay".
    done = "booked_review" if view.booking.under_review else "booked"
    return redirect(f"/me?done={done}#booking-{view.booking.id}")

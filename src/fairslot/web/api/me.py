"""A patient's own things: registration and log-in, family patients, bookings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from fairslot.domain.accounts import Role
from fairslot.domain.errors import Forbidden
from fairslot.guard.fastapi import GuardGate, guarded
from fairslot.guard.policy import RouteGroup
from fairslot.guard.service import TOKEN_HEADER
from fairslot.services import accounts, booking, catalog
from fairslot.services.payments import normalize_payer
from fairslot.web.deps import (
    CurrentAccount,
    PlatformDep,
    action_token,
    bearer_token,
    context,
    require,
)
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.schemas import (
    AccountOut,
    BookingIn,
    BookingOut,
    BookingScreen,
    Credentials,
    PatientIn,
    PatientOut,
    PaymentIn,
    PaymentScreen,
    RegisterIn,
    SessionOut,
    TokenOut,
)

__all__ = ["router"]

router = APIRouter(responses=PROBLEM_RESPONSES)
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
PatientOnly = require(Role.PATIENT)
BOOK_ACTION = "book"
PAY_ACTION = "pay"


@router.post("/auth/register", status_code=201, tags=["account"],
             dependencies=[Depends(guarded(RouteGroup.REGISTRATION, auto=True))])
def register(body: RegisterIn, request: Request, platform: PlatformDep) -> AccountOut:
    account = accounts.register(platform, body.username, body.password, body.phone,
                                context(request))
    return AccountOut.of(account)


@router.post("/auth/login", tags=["account"],
             dependencies=[Depends(guarded(RouteGroup.LOGIN, auto=True))])
def log_in(body: Credentials, request: Request, platform: PlatformDep) -> TokenOut:
    token, account = accounts.log_in(platform, request.app.state.login_limiter, body.username,
                                     body.password, context(request))
    return TokenOut(token=token, role=account.role)


@router.post("/auth/logout", status_code=204, tags=["account"])
def log_out(request: Request, account: CurrentAccount, platform: PlatformDep) -> Response:
    token = bearer_token(request)
    if token:
        accounts.log_out(platform, token)
    return Response(status_code=204)


@router.get("/me", tags=["account"])
def me(account: CurrentAccount) -> AccountOut:
    return AccountOut.of(account)


@router.get("/me/patients", tags=["patients"], dependencies=[PatientOnly])
def my_patients(account: CurrentAccount, platform: PlatformDep) -> list[PatientOut]:
    return [PatientOut.of(p) for p in accounts.list_patients(platform, account)]


@router.post("/me/patients", status_code=201, tags=["patients"], dependencies=[PatientOnly])
def add_patient(body: PatientIn, request: Request, account: CurrentAccount,
                platform: PlatformDep) -> PatientOut:
    patient = accounts.add_patient(platform, account, body.id_number, body.name, body.phone,
                                   context(request))
    return PatientOut.of(patient)


@router.delete("/me/patients/{patient_id}", status_code=204, tags=["patients"],
               dependencies=[PatientOnly])
def remove_patient(patient_id: IdPath, request: Request, account: CurrentAccount,
                   platform: PlatformDep) -> Response:
    accounts.remove_patient(platform, account, patient_id, context(request))
    return Response(status_code=204)


@router.get("/me/bookings", tags=["bookings"])
def my_bookings(account: CurrentAccount, platform: PlatformDep) -> list[BookingOut]:
    return [BookingOut.of(v) for v in booking.my_bookings(platform, account)]


@router.get("/sessions/{session_id}/booking-screen", tags=["bookings"],
            dependencies=[PatientOnly])
def booking_screen(session_id: IdPath, account: CurrentAccount, request: Request,
                   platform: PlatformDep) -> BookingScreen:
    """The confirmation screen before booking: the session, the patients who may be booked,
    and the single-use action token that ``POST /bookings`` needs (usable once, not sooner
    than the guard's minimum age, for this account and this session only)."""
    view = catalog.session_view(platform, session_id)
    return BookingScreen(
        session=SessionOut.of(view),
        patients=[PatientOut.of(p) for p in accounts.list_patients(platform, account)],
        action_token=action_token(request, account, BOOK_ACTION, session_id),
        token_header=TOKEN_HEADER)


@router.post("/bookings", status_code=201, tags=["bookings"], dependencies=[PatientOnly])
async def book(body: BookingIn, request: Request, account: CurrentAccount,
               platform: PlatformDep,
               gate: Annotated[GuardGate, Depends(guarded(
                   RouteGroup.BOOKING, need_token=BOOK_ACTION, exclusive=True))]) -> BookingOut:
    """Book a slot. Send the booking screen's action token in ``X-Fairslot-Action-Token``;
    when the guard asks for proof of work (``challenge_required``), solve the challenge in
    the problem body and send it in ``X-Fairslot-Pow``."""
    await gate.check(account_id=str(account.id), patient_id=str(body.patient_id),
                     target=str(body.session_id))
    view = await run_in_threadpool(booking.book, platform, account, body.patient_id,
                                   body.session_id, context(request))
    return BookingOut.of(view)


@router.get("/bookings/{booking_id}", tags=["bookings"])
def get_booking(booking_id: IdPath, account: CurrentAccount,
                platform: PlatformDep) -> BookingOut:
    return BookingOut.of(booking.get_booking(platform, account, booking_id))


@router.get("/bookings/{booking_id}/payment-screen", tags=["bookings"],
            dependencies=[PatientOnly])
def payment_screen(booking_id: IdPath, account: CurrentAccount, request: Request,
                   platform: PlatformDep) -> PaymentScreen:
    """The payment screen: what is owed, until when, and the action token for paying."""
    view = booking.get_booking(platform, account, booking_id)
    return PaymentScreen(booking=BookingOut.of(view),
                         action_token=action_token(request, account, PAY_ACTION, booking_id),
                         token_header=TOKEN_HEADER)


@router.post("/bookings/{booking_id}/pay", tags=["bookings"], dependencies=[PatientOnly])
async def pay(booking_id: IdPath, body: PaymentIn, request: Request, account: CurrentAccount,
              platform: PlatformDep,
              gate: Annotated[GuardGate, Depends(guarded(
                  RouteGroup.PAYMENT, need_token=PAY_ACTION, exclusive=True))]) -> BookingOut:
    """Pay a held booking with the payment screen's action token."""
    payer = normalize_payer(body.payer_account)
    await gate.check(account_id=str(account.id), payer=payer, target=str(booking_id))
    view = await run_in_threadpool(booking.pay, platform, account, booking_id, payer,
                                   context(request))
    return BookingOut.of(view)


@router.post("/bookings/{booking_id}/cancel", tags=["bookings"])
async def cancel(booking_id: IdPath, request: Request, account: CurrentAccount,
                 platform: PlatformDep,
                 gate: Annotated[GuardGate, Depends(guarded(RouteGroup.BOOKING))]
                 ) -> BookingOut:
    if account.role not in (Role.PATIENT, Role.REGISTRATION, Role.ADMIN):
        raise Forbidden("your role may not cancel bookings", code="forbidden_role")
    await gate.check(account_id=str(account.id), target=str(booking_id))
    view = await run_in_threadpool(booking.cancel, platform, account, booking_id,
                                   context(request))
    return BookingOut.of(view)

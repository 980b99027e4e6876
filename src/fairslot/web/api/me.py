"""A patient's own things: registration and log-in, family patients, bookings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from fairslot.domain.accounts import Role
from fairslot.domain.errors import Forbidden
from fairslot.services import accounts, booking
from fairslot.web.deps import CurrentAccount, PlatformDep, bearer_token, context, require
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.schemas import (
    AccountOut,
    BookingIn,
    BookingOut,
    Credentials,
    PatientIn,
    PatientOut,
    PaymentIn,
    RegisterIn,
    TokenOut,
)

__all__ = ["router"]

router = APIRouter(responses=PROBLEM_RESPONSES)
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
PatientOnly = require(Role.PATIENT)


@router.post("/auth/register", status_code=201, tags=["account"])
def register(body: RegisterIn, request: Request, platform: PlatformDep) -> AccountOut:
    account = accounts.register(platform, body.username, body.password, body.phone,
                                context(request))
    return AccountOut.of(account)


@router.post("/auth/login", tags=["account"])
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


@router.post("/bookings", status_code=201, tags=["bookings"], dependencies=[PatientOnly])
def book(body: BookingIn, request: Request, account: CurrentAccount,
         platform: PlatformDep) -> BookingOut:
    if account.role is not Role.PATIENT:
        raise Forbidden("staff book at the desk: POST /api/v1/staff/bookings",
                        code="forbidden_role")
    view = booking.book(platform, account, body.patient_id, body.session_id, context(request))
    return BookingOut.of(view)


@router.get("/bookings/{booking_id}", tags=["bookings"])
def get_booking(booking_id: IdPath, account: CurrentAccount,
                platform: PlatformDep) -> BookingOut:
    return BookingOut.of(booking.get_booking(platform, account, booking_id))


@router.post("/bookings/{booking_id}/pay", tags=["bookings"], dependencies=[PatientOnly])
def pay(booking_id: IdPath, body: PaymentIn, request: Request, account: CurrentAccount,
        platform: PlatformDep) -> BookingOut:
    view = booking.pay(platform, account, booking_id, body.payer_account, context(request))
    return BookingOut.of(view)


@router.post("/bookings/{booking_id}/cancel", tags=["bookings"])
def cancel(booking_id: IdPath, request: Request, account: CurrentAccount,
           platform: PlatformDep) -> BookingOut:
    if account.role not in (Role.PATIENT, Role.REGISTRATION, Role.ADMIN):
        raise Forbidden("your role may not cancel bookings", code="forbidden_role")
    return BookingOut.of(booking.cancel(platform, account, booking_id, context(request)))

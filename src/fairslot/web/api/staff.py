"""Staff routes: the registration desk, the operator's schedule, the investigator's event
log and the admin's users. Every route checks the caller's role."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import Account, Role
from fairslot.guard.policy import GuardLevel, RouteGroup
from fairslot.guard.service import Guard
from fairslot.services import accounts, booking, catalog, release
from fairslot.web.api.rounds import EntryOut
from fairslot.web.deps import CurrentAccount, PlatformDep, context, require
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.schemas import (
    AccountOut,
    BookingOut,
    CheckInIn,
    DepartmentIn,
    DepartmentOut,
    DoctorIn,
    DoctorOut,
    OnSiteBookingIn,
    PaymentIn,
    ScheduleIn,
    SessionOut,
    Strict,
    UserIn,
)

__all__ = ["router"]

router = APIRouter(responses=PROBLEM_RESPONSES)
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


class EventOut(BaseModel):
    id: int
    at: dt.datetime
    kind: str
    account_id: int | None
    patient_id: int | None
    session_id: int | None
    booking_id: int | None
    ip: str | None
    device_id: str | None
    detail: dict[str, Any]


@router.post("/staff/check-in", tags=["desk"], dependencies=[require(Role.REGISTRATION)])
def check_in(body: CheckInIn, request: Request, account: CurrentAccount,
             platform: PlatformDep) -> BookingOut:
    view = booking.check_in(platform, account, body.booking_id, body.id_number, body.name,
                            context(request))
    return BookingOut.of(view)


@router.post("/staff/bookings", status_code=201, tags=["desk"],
             dependencies=[require(Role.REGISTRATION)])
def book_on_site(body: OnSiteBookingIn, request: Request, account: CurrentAccount,
                 platform: PlatformDep) -> BookingOut:
    view = booking.book_on_site(platform, account, body.session_id, body.id_number, body.name,
                                body.payer_account, context(request))
    return BookingOut.of(view)


class DeskEntryIn(Strict):
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    choices: Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]],
                       Field(min_length=1, max_length=3)]


@router.post("/staff/rounds/{round_id}/entries", status_code=201, tags=["desk"],
             dependencies=[require(Role.REGISTRATION)])
def enter_at_desk(round_id: IdPath, body: DeskEntryIn, request: Request,
                  account: CurrentAccount, platform: PlatformDep) -> EntryOut:
    """Enter a walk-in patient in a draw after checking their identity card."""
    return EntryOut.of(release.enter_at_desk(platform, account, round_id, body.id_number,
                                             body.name, body.choices, context(request)))


@router.post("/staff/bookings/{booking_id}/pay", tags=["desk"],
             dependencies=[require(Role.REGISTRATION)])
def pay_at_desk(booking_id: IdPath, body: PaymentIn, request: Request,
                account: CurrentAccount, platform: PlatformDep) -> BookingOut:
    """Take payment at the desk for a held booking (a draw the desk entered, or an offer)."""
    return BookingOut.of(booking.pay(platform, account, booking_id, body.payer_account,
                                     context(request)))


@router.get("/staff/desk-awaiting-payment", tags=["desk"],
            dependencies=[require(Role.REGISTRATION)])
def desk_awaiting_payment(platform: PlatformDep) -> list[BookingOut]:
    """Draw wins and waitlist offers of walk-in patients the desk entered, not paid yet,
    soonest payment deadline first: whom to reach (the win went to the desk's inbox)."""
    return [BookingOut.of(v) for v in booking.desk_awaiting_payment(platform)]


@router.get("/staff/sessions/{session_id}/bookings", tags=["desk"],
            dependencies=[require(Role.REGISTRATION, Role.OPERATOR)])
def session_bookings(session_id: IdPath, platform: PlatformDep) -> list[BookingOut]:
    catalog.session_view(platform, session_id)  # 404 for an unknown session
    with platform.uow() as uow:
        views = [booking._view(uow, b) for b in uow.bookings.of_session(session_id)]
    return [BookingOut.of(v) for v in views]


@router.post("/admin/departments", status_code=201, tags=["operator"],
             dependencies=[require(Role.OPERATOR)])
def create_department(body: DepartmentIn, platform: PlatformDep) -> DepartmentOut:
    return DepartmentOut.of(catalog.create_department(platform, body.hospital_id, body.code,
                                                      body.name))


@router.post("/admin/doctors", status_code=201, tags=["operator"],
             dependencies=[require(Role.OPERATOR)])
def create_doctor(body: DoctorIn, platform: PlatformDep) -> DoctorOut:
    return DoctorOut.of(catalog.create_doctor(
        platform, body.department_id, body.name, body.title, body.specialty,
        release_policy=body.release_policy, hot=body.hot))


@router.post("/admin/sessions", status_code=201, tags=["operator"],
             dependencies=[require(Role.OPERATOR)])
def schedule(body: ScheduleIn, platform: PlatformDep) -> list[SessionOut]:
    created = catalog.schedule_sessions(
        platform, body.doctor_id, body.dates, body.periods, body.capacity, body.fee_cents,
        release_days_before=body.release_days_before, release_policy=body.release_policy)
    return [SessionOut.of(catalog.session_view(platform, s.id or 0)) for s in created]


@router.get("/investigation/events", tags=["investigation"],
            dependencies=[require(Role.INVESTIGATOR)])
def events(platform: PlatformDep,
           kind: Annotated[str | None, Query(max_length=40)] = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[EventOut]:
    with platform.uow() as uow:
        rows = uow.events.recent(limit, kind)
    return [EventOut(id=r.id, at=r.at, kind=r.kind, account_id=r.account_id,
                     patient_id=r.patient_id, session_id=r.session_id, booking_id=r.booking_id,
                     ip=r.ip, device_id=r.device_id, detail=r.detail) for r in rows]


class GuardLevelIn(BaseModel):
    level: GuardLevel


@router.get("/admin/guard", tags=["operator"], dependencies=[require(Role.OPERATOR)])
async def guard_status(request: Request) -> dict[str, Any]:
    """The guard's levels per route group, in-flight requests and Redis state."""
    guard: Guard = request.app.state.guard
    return await guard.status()


@router.put("/admin/guard/levels/{group}", tags=["operator"],
            dependencies=[require(Role.OPERATOR)])
async def set_guard_level(group: RouteGroup, body: GuardLevelIn, request: Request,
                          account: CurrentAccount, platform: PlatformDep) -> dict[str, Any]:
    """Switch one route group's guard level at run time (shared by all workers via Redis)."""
    guard: Guard = request.app.state.guard
    await guard.set_level(group, body.level)
    await run_in_threadpool(_log_level_change, platform, account, group, body.level)
    return await guard.status()


def _log_level_change(platform: Platform, account: Account, group: RouteGroup,
                      level: GuardLevel) -> None:
    with platform.uow() as uow:
        uow.events.append("guard.level", platform.clock.now(), account_id=account.id,
                          detail={"group": group.value, "level": level.value})
        uow.commit()


@router.post("/admin/users", status_code=201, tags=["admin"], dependencies=[require(Role.ADMIN)])
def create_user(body: UserIn, platform: PlatformDep) -> AccountOut:
    return AccountOut.of(accounts.create_user(platform, body.username, body.password, body.role,
                                              body.phone))

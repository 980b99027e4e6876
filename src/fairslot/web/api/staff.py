"""Staff routes: the registration desk, the operator's schedule, the investigator's event
log and the admin's users. Every route checks the caller's role."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from fairslot.domain.accounts import Role
from fairslot.guard.policy import GuardLevel, RouteGroup
from fairslot.guard.service import Guard
from fairslot.services import accounts, audit, booking, catalog, desk, review, shared_list
from fairslot.web.api.rounds import EntryOut
from fairslot.web.deps import CallerDep, DepsDep, UowDep, context
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.routing import ReleasingRoute
from fairslot.web.schemas import (
    AccountOut,
    BookingOut,
    CheckInIn,
    DepartmentIn,
    DepartmentOut,
    DeskCancelIn,
    DeskFindIn,
    DoctorIn,
    DoctorOut,
    IdSourceField,
    OnSiteBookingIn,
    PaymentIn,
    ReasonField,
    ReviewDecisionIn,
    ReviewOut,
    ScheduleIn,
    SessionOut,
    Strict,
    UserIn,
)

__all__ = ["router"]

router = APIRouter(route_class=ReleasingRoute, responses=PROBLEM_RESPONSES)
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


@router.post("/staff/check-in", tags=["desk"])
def check_in(body: CheckInIn, request: Request, caller: CallerDep, uow: UowDep,
             deps: DepsDep) -> BookingOut:
    account = caller.account(Role.REGISTRATION)
    evidence = desk.Evidence.of(body.id_source, body.typed_reason)
    view = desk.check_in(uow, deps, account, body.booking_id, body.id_number, body.name,
                         evidence, context(request))
    return BookingOut.of(view)


@router.post("/staff/bookings", status_code=201, tags=["desk"])
def book_on_site(body: OnSiteBookingIn, request: Request, caller: CallerDep,
                 uow: UowDep, deps: DepsDep) -> BookingOut:
    """Book a walk-in patient and take the payment: today's and tomorrow's sessions only,
    the ID card read (or typed, with a reason), within the desk account's limits."""
    account = caller.account(Role.REGISTRATION)
    evidence = desk.Evidence.of(body.id_source, body.typed_reason)
    view = desk.book(uow, deps, account, body.session_id, body.id_number, body.name,
                     desk.Payment.parse(body.payer_account), evidence, context(request))
    return BookingOut.of(view)


class DeskEntryIn(Strict):
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    choices: Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]],
                       Field(min_length=1, max_length=3)]
    id_source: IdSourceField
    typed_reason: ReasonField = ""


@router.post("/staff/rounds/{round_id}/entries", status_code=201, tags=["desk"])
def enter_at_desk(round_id: IdPath, body: DeskEntryIn, request: Request,
                  caller: CallerDep, uow: UowDep, deps: DepsDep) -> EntryOut:
    """Enter a walk-in patient in a draw that runs today or tomorrow, after reading their
    identity card, within the desk account's limits."""
    account = caller.account(Role.REGISTRATION)
    evidence = desk.Evidence.of(body.id_source, body.typed_reason)
    return EntryOut.of(desk.enter(uow, deps, account, round_id, body.id_number, body.name,
                                  body.choices, evidence, context(request)))


@router.post("/staff/bookings/{booking_id}/pay", tags=["desk"])
def pay_at_desk(booking_id: IdPath, body: PaymentIn, request: Request,
                caller: CallerDep, uow: UowDep, deps: DepsDep) -> BookingOut:
    """Take payment at the desk for a held booking (a draw the desk entered, or an offer):
    'cash', 'insurance:<card number>' or an account."""
    account = caller.account(Role.REGISTRATION)
    return BookingOut.of(desk.pay(uow, deps, account, booking_id,
                                  desk.Payment.parse(body.payer_account), context(request)))


@router.post("/staff/bookings/{booking_id}/cancel", tags=["desk"])
def cancel_at_desk(booking_id: IdPath, body: DeskCancelIn, request: Request,
                   caller: CallerDep, uow: UowDep, deps: DepsDep) -> BookingOut:
    """Cancel (and refund) a booking or waitlist offer. One the desk did not make needs the
    patient's ID card (present) or a second staff member's username and password."""
    account = caller.account(Role.REGISTRATION)
    approval = desk.Approval(body.approver_username, body.approver_password) \
        if body.approver_username else None
    return BookingOut.of(desk.cancel(uow, deps, account, booking_id,
                                     id_number=body.id_number, name=body.name,
                                     approval=approval, reason=body.reason,
                                     ctx=context(request)))


@router.post("/staff/find", tags=["desk"])
def find_patient(body: DeskFindIn, request: Request, caller: CallerDep, uow: UowDep,
                 deps: DepsDep) -> list[BookingOut]:
    """A patient's bookings by the ID number on their card or a booking number (a POST, so
    the ID number never lands in an access log). Audited."""
    account = caller.account(Role.REGISTRATION)
    found = desk.find(uow, deps, account, id_number=body.id_number,
                      booking_id=body.booking_id, ctx=context(request))
    return [BookingOut.of(v) for v in found.bookings]


@router.get("/staff/desk-awaiting-payment", tags=["desk"])
def desk_awaiting_payment(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[BookingOut]:
    """Draw wins and waitlist offers of walk-in patients the desk entered, not paid yet,
    soonest payment deadline first: whom to reach (the win went to the desk's inbox)."""
    caller.account(Role.REGISTRATION)
    return [BookingOut.of(v) for v in booking.desk_awaiting_payment(uow, deps)]


@router.get("/staff/consortium/reviews", tags=["desk"])
def consortium_reviews(caller: CallerDep, uow: UowDep, deps: DepsDep,
                       all_: Annotated[bool, Query(alias="all")] = False) -> list[ReviewOut]:
    """Other hospitals' entries this hospital's policy held for review (``hold``): pending
    ones, or with ``all=true`` the decided ones too."""
    account = caller.account(Role.REGISTRATION)
    return [ReviewOut.of(r) for r in shared_list.reviews(
        uow, deps, account, status=None if all_ else "pending")]


@router.post("/staff/consortium/reviews/{issuer}/{entry_no}", tags=["desk"])
def decide_consortium_review(
        issuer: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")],
        entry_no: Annotated[int, Path(ge=1, le=2**62)], body: ReviewDecisionIn,
        caller: CallerDep, uow: UowDep, deps: DepsDep) -> ReviewOut:
    """Clear an entry held for review (it stops applying at this hospital) or refuse it
    (refused here from then on, whatever the policy)."""
    account = caller.account(Role.REGISTRATION)
    return ReviewOut.of(shared_list.decide_review(uow, deps, account, f"{issuer}/{entry_no}",
                                                  clear=body.clear, note=body.note))


@router.get("/staff/sessions/{session_id}/bookings", tags=["desk"])
def session_bookings(caller: CallerDep, session_id: IdPath, uow: UowDep,
                     deps: DepsDep) -> list[BookingOut]:
    caller.account(Role.REGISTRATION, Role.OPERATOR)
    return [BookingOut.of(v) for v in booking.session_bookings(uow, deps, session_id)]


@router.post("/admin/departments", status_code=201, tags=["operator"])
def create_department(caller: CallerDep, body: DepartmentIn, uow: UowDep,
                      deps: DepsDep) -> DepartmentOut:
    caller.account(Role.OPERATOR)
    return DepartmentOut.of(catalog.create_department(uow, deps, body.hospital_id, body.code,
                                                      body.name))


@router.post("/admin/doctors", status_code=201, tags=["operator"])
def create_doctor(caller: CallerDep, body: DoctorIn, uow: UowDep, deps: DepsDep) -> DoctorOut:
    caller.account(Role.OPERATOR)
    return DoctorOut.of(catalog.create_doctor(
        uow, deps, body.department_id, body.name, body.title, body.specialty,
        release_policy=body.release_policy, hot=body.hot))


@router.post("/admin/sessions", status_code=201, tags=["operator"])
def schedule(caller: CallerDep, body: ScheduleIn, uow: UowDep, deps: DepsDep) -> list[SessionOut]:
    caller.account(Role.OPERATOR)
    created = catalog.schedule_sessions(
        uow, deps, body.doctor_id, body.dates, body.periods, body.capacity, body.fee_cents,
        release_days_before=body.release_days_before, release_policy=body.release_policy)
    return [SessionOut.of(catalog.session_view(uow, deps, s.id or 0)) for s in created]


@router.get("/investigation/events", tags=["investigation"])
def events(caller: CallerDep, uow: UowDep, deps: DepsDep,
           kind: Annotated[str | None, Query(max_length=40)] = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[EventOut]:
    caller.account(Role.INVESTIGATOR)
    return [EventOut(id=r.id, at=r.at, kind=r.kind, account_id=r.account_id,
                     patient_id=r.patient_id, session_id=r.session_id, booking_id=r.booking_id,
                     ip=r.ip, device_id=r.device_id, detail=r.detail)
            for r in audit.recent_events(uow, deps, limit, kind)]


class ReviewIn(Strict):
    approve: bool
    reason: str = Field(min_length=1, max_length=500)


@router.get("/investigation/reviews", tags=["investigation"])
def reviews(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[BookingOut]:
    """Bookings held for review by a monitoring decision, oldest first."""
    account = caller.account(Role.INVESTIGATOR)
    return [BookingOut.of(v) for v in review.queue(uow, deps, account)]


@router.post("/investigation/reviews/{booking_id}", tags=["investigation"])
def decide_review(booking_id: IdPath, body: ReviewIn, request: Request, caller: CallerDep,
                  uow: UowDep, deps: DepsDep) -> BookingOut:
    """Approve a held booking (the patient may pay from now) or reject it (the slot is
    released), with the reason; the patient is told either way."""
    account = caller.account(Role.INVESTIGATOR)
    return BookingOut.of(review.decide(uow, deps, account, booking_id, body.approve,
                                       body.reason, context(request)))


class GuardLevelIn(BaseModel):
    level: GuardLevel


@router.get("/admin/guard", tags=["operator"])
async def guard_status(caller: CallerDep, request: Request) -> dict[str, Any]:
    """The guard's levels per route group, in-flight requests and Redis state."""
    await run_in_threadpool(caller.account, Role.OPERATOR)
    guard: Guard = request.app.state.guard
    return await guard.status()


@router.put("/admin/guard/levels/{group}", tags=["operator"])
async def set_guard_level(group: RouteGroup, body: GuardLevelIn, request: Request,
                          caller: CallerDep, uow: UowDep,
                          deps: DepsDep) -> dict[str, Any]:
    """Switch one route group's guard level at run time (shared by all workers via Redis)."""
    account = await run_in_threadpool(caller.account, Role.OPERATOR)
    guard: Guard = request.app.state.guard
    await guard.set_level(group, body.level)
    await run_in_threadpool(audit.guard_level_changed, uow, deps, account, group.value,
                            body.level.value)
    return await guard.status()


@router.post("/admin/users", status_code=201, tags=["admin"])
def create_user(caller: CallerDep, body: UserIn, uow: UowDep, deps: DepsDep) -> AccountOut:
    caller.account(Role.ADMIN)
    return AccountOut.of(accounts.create_user(uow, deps, body.username, body.password,
                                              body.role, body.phone))

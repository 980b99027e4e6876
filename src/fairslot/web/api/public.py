"""Browsing the hospital: anyone may look, no log-in needed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from fairslot.guard.fastapi import guarded
from fairslot.guard.policy import RouteGroup
from fairslot.services import catalog
from fairslot.web.deps import DepsDep, UowDep
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.routing import ReleasingRoute
from fairslot.web.schemas import DepartmentOut, DoctorOut, HospitalOut, IsoDate, SessionOut

__all__ = ["router"]

router = APIRouter(route_class=ReleasingRoute, tags=["browse"], responses=PROBLEM_RESPONSES,
                   dependencies=[Depends(guarded(RouteGroup.BROWSING, auto=True))])
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/hospitals")
def list_hospitals(uow: UowDep, deps: DepsDep) -> list[HospitalOut]:
    return [HospitalOut.of(h) for h, _ in catalog.hospitals(uow, deps)]


@router.get("/hospitals/{hospital_id}/departments")
def list_departments(hospital_id: IdPath, uow: UowDep, deps: DepsDep) -> list[DepartmentOut]:
    return [DepartmentOut.of(d) for d in catalog.departments(uow, deps, hospital_id)]


@router.get("/departments/{department_id}/doctors")
def list_doctors(department_id: IdPath, uow: UowDep, deps: DepsDep) -> list[DoctorOut]:
    return [DoctorOut.of(d) for d in catalog.doctors(uow, deps, department_id)]


@router.get("/doctors/{doctor_id}")
def get_doctor(doctor_id: IdPath, uow: UowDep, deps: DepsDep) -> DoctorOut:
    return DoctorOut.of(catalog.doctor(uow, deps, doctor_id))


@router.get("/doctors/{doctor_id}/sessions")
def list_sessions(
    doctor_id: IdPath,
    uow: UowDep,
    deps: DepsDep,
    start: Annotated[IsoDate | None, Query(description="first date (default today)")] = None,
    end: Annotated[IsoDate | None, Query(description="last date (default start + 14 days)")]
    = None,
) -> list[SessionOut]:
    today = deps.clock.now().astimezone(deps.settings.zone).date()
    first = start or today
    # A start near the end of the calendar cannot have 14 more days; the service refuses
    # dates that far out anyway, with a clear error.
    last = end or (first if first.year >= 9999 else first + dt.timedelta(days=14))
    views = catalog.sessions_of_doctor(uow, deps, doctor_id, first, last)
    return [SessionOut.of(v) for v in views]


@router.get("/sessions/{session_id}")
def get_session(session_id: IdPath, uow: UowDep, deps: DepsDep) -> SessionOut:
    return SessionOut.of(catalog.session_view(uow, deps, session_id))

"""Browsing the hospital: anyone may look, no log-in needed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from fairslot.domain.errors import NotFound
from fairslot.guard.fastapi import guarded
from fairslot.guard.policy import RouteGroup
from fairslot.services import catalog
from fairslot.web.deps import PlatformDep
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.schemas import DepartmentOut, DoctorOut, HospitalOut, IsoDate, SessionOut

__all__ = ["router"]

router = APIRouter(tags=["browse"], responses=PROBLEM_RESPONSES,
                   dependencies=[Depends(guarded(RouteGroup.BROWSING, auto=True))])
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/hospitals")
def list_hospitals(platform: PlatformDep) -> list[HospitalOut]:
    with platform.uow() as uow:
        return [HospitalOut.of(h) for h in uow.schedule.hospitals()]


@router.get("/hospitals/{hospital_id}/departments")
def list_departments(hospital_id: IdPath, platform: PlatformDep) -> list[DepartmentOut]:
    return [DepartmentOut.of(d) for d in catalog.departments(platform, hospital_id)]


@router.get("/departments/{department_id}/doctors")
def list_doctors(department_id: IdPath, platform: PlatformDep) -> list[DoctorOut]:
    return [DoctorOut.of(d) for d in catalog.doctors(platform, department_id)]


@router.get("/doctors/{doctor_id}")
def get_doctor(doctor_id: IdPath, platform: PlatformDep) -> DoctorOut:
    with platform.uow() as uow:
        doctor = uow.schedule.doctor(doctor_id)
    if doctor is None:
        raise NotFound("no such doctor", code="doctor_not_found")
    return DoctorOut.of(doctor)


@router.get("/doctors/{doctor_id}/sessions")
def list_sessions(
    doctor_id: IdPath,
    platform: PlatformDep,
    start: Annotated[IsoDate | None, Query(description="first date (default today)")] = None,
    end: Annotated[IsoDate | None, Query(description="last date (default start + 14 days)")]
    = None,
) -> list[SessionOut]:
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    first = start or today
    last = end or first + dt.timedelta(days=14)
    views = catalog.sessions_of_doctor(platform, doctor_id, first, last)
    return [SessionOut.of(v) for v in views]


@router.get("/sessions/{session_id}")
def get_session(session_id: IdPath, platform: PlatformDep) -> SessionOut:
    return SessionOut.of(catalog.session_view(platform, session_id))

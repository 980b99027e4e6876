"""Browsing pages: hospitals and departments, a department's doctors, a doctor's sessions
(with an enter button for every session whose draw takes entries now, whatever the hour)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response

from fairslot.services import catalog
from fairslot.web.deps import DepsDep, UowDep
from fairslot.web.pages.common import PageId, Viewer, guard_check, local, page_router, render

__all__ = ["router"]

router = page_router()
DAYS_AHEAD = 15


def _browse(request: Request) -> None:
    guard_check(request, "browsing")


@router.get("/", dependencies=[Depends(_browse)])
def home(request: Request, who: Viewer, uow: UowDep, deps: DepsDep) -> Response:
    return render(request, "home.html", hospitals=catalog.hospitals(uow, deps))


@router.get("/departments/{department_id}", dependencies=[Depends(_browse)])
def department_page(department_id: PageId, request: Request, who: Viewer, uow: UowDep,
                    deps: DepsDep) -> Response:
    department, hospital = catalog.department(uow, deps, department_id)
    doctors = sorted(catalog.doctors(uow, deps, department_id),
                     key=lambda d: (not d.hot, d.name))
    return render(request, "department.html", hospital=hospital, department=department,
                  doctors=doctors)


@router.get("/doctors/{doctor_id}", dependencies=[Depends(_browse)])
def doctor_page(doctor_id: PageId, request: Request, who: Viewer, uow: UowDep,
                deps: DepsDep) -> Response:
    page = catalog.doctor_page(uow, deps, doctor_id, DAYS_AHEAD)
    now = deps.clock.now()
    rows = [{"session": v.session, "free": v.free, "released": v.released,
             "opens": local(deps, v.session.release_at), "round_id": v.round_id,
             "started": v.session.has_started(now),
             "bookable": v.released and v.free > 0 and not v.session.has_started(now)
             and v.session.status.value == "scheduled"}
            for v in page.sessions]
    return render(request, "doctor.html", doctor=page.doctor, department=page.department,
                  rows=rows, zone=deps.settings.timezone)

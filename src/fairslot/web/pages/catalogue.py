"""The hospital's catalogue on the pages, for operators and admins: departments and their
doctors, adding a department or a doctor, scheduling a doctor's sessions for a run of days
(the same services as ``/api/v1/admin/departments``, ``/doctors`` and ``/sessions``). A
refused form comes back with what was typed in it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError, InvalidInput
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import catalog
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import DepsDep, UowDep
from fairslot.web.i18n import N_
from fairslot.web.pages.common import (
    Viewer,
    check_csrf,
    done_message,
    page_router,
    redirect,
    refused,
    render,
    today,
)

__all__ = ["router"]

router = page_router()

MAX_DAYS = 31


def _page(request: Request, uow: UnitOfWork, deps: Deps, account: Account, *,
          status: int = 200, error: FairslotError | str | None = None,
          notice: str | None = None, form: Mapping[str, Any] | None = None) -> Response:
    groups = []
    hospitals = []
    for hospital, departments in catalog.hospitals(uow, deps):
        hospitals.append(hospital)
        for department in departments:
            groups.append({"hospital": hospital, "department": department,
                           "doctors": sorted(catalog.doctors(uow, deps, department.id or 0),
                                             key=lambda d: d.name)})
    values: dict[str, Any] = {"s_first": (today(deps) + dt.timedelta(days=1)).isoformat(),
                              "s_days": "7", "s_capacity": "20", "s_fee": "50",
                              "s_release": "7", "s_periods": ["morning", "afternoon"]}
    values.update(form or {})
    return render(request, "catalogue.html", status=status, account=account, error=error,
                  notice=notice, groups=groups, hospitals=hospitals, form=values,
                  policies=list(ReleasePolicy), periods=list(Period), max_days=MAX_DAYS)


@router.get("/operator/catalogue")
def catalogue(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
              done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    account = who.logged_in(Role.OPERATOR)
    return _page(request, uow, deps, account, notice=done_message(done))


def _whole(raw: str, low: int, high: int, message: str) -> int:
    """``raw`` as a whole number from ``low`` to ``high``, else ``message`` (a catalogue
    text) as the form's error."""
    try:
        value = int(raw.strip())
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidInput(message, code="invalid_number")
    return value


@router.post("/operator/catalogue/hospitals")
def add_hospital(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                 csrf: Annotated[str, Form()] = "",
                 code: Annotated[str, Form(max_length=32)] = "",
                 name: Annotated[str, Form(max_length=200)] = "") -> Response:
    """A hospital (admins only): a code that is already taken changes nothing."""
    account = who.logged_in(Role.ADMIN)
    check_csrf(request, csrf)
    typed = {"h_code": code, "h_name": name}
    try:
        if not code.strip() or not name.strip():
            raise InvalidInput("a hospital needs a code and a name", code="invalid_hospital")
        catalog.create_hospital(uow, deps, code.strip(), name.strip())
    except FairslotError as exc:
        refused(uow)
        return _page(request, uow, deps, account, status=exc.status, error=exc, form=typed)
    return redirect("/operator/catalogue?done=hospital_added#add-department")


@router.post("/operator/catalogue/departments")
def add_department(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                   csrf: Annotated[str, Form()] = "",
                   hospital_id: Annotated[str, Form(max_length=20)] = "",
                   code: Annotated[str, Form(max_length=32)] = "",
                   name: Annotated[str, Form(max_length=200)] = "") -> Response:
    account = who.logged_in(Role.OPERATOR)
    check_csrf(request, csrf)
    typed = {"d_hospital": hospital_id, "d_code": code, "d_name": name}
    try:
        hospital = _whole(hospital_id, 1, 2**62, N_("Choose a hospital."))
        catalog.create_department(uow, deps, hospital, code.strip(), name.strip())
    except FairslotError as exc:
        refused(uow)
        return _page(request, uow, deps, account, status=exc.status, error=exc, form=typed)
    return redirect("/operator/catalogue?done=department_added#departments")


@router.post("/operator/catalogue/doctors")
def add_doctor(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
               csrf: Annotated[str, Form()] = "",
               department_id: Annotated[str, Form(max_length=20)] = "",
               name: Annotated[str, Form(max_length=100)] = "",
               title: Annotated[str, Form(max_length=100)] = "",
               specialty: Annotated[str, Form(max_length=200)] = "",
               policy: Annotated[str, Form(max_length=20)] = "fcfs",
               hot: Annotated[str, Form(max_length=10)] = "") -> Response:
    account = who.logged_in(Role.OPERATOR)
    check_csrf(request, csrf)
    typed = {"o_department": department_id, "o_name": name, "o_title": title,
             "o_specialty": specialty, "o_policy": policy, "o_hot": bool(hot)}
    try:
        try:
            chosen = ReleasePolicy(policy)
        except ValueError:
            raise InvalidInput("choose a release policy", code="invalid_policy") from None
        department = _whole(department_id, 1, 2**62, N_("Choose a department."))
        doctor = catalog.create_doctor(uow, deps, department, name.strip(), title.strip(),
                                       specialty.strip(), release_policy=chosen, hot=bool(hot))
    except FairslotError as exc:
        refused(uow)
        return _page(request, uow, deps, account, status=exc.status, error=exc, form=typed)
    return redirect(f"/operator/catalogue?done=doctor_added#doctor-{doctor.id}")


@router.post("/operator/catalogue/sessions")
def add_sessions(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                 csrf: Annotated[str, Form()] = "",
                 doctor_id: Annotated[str, Form(max_length=20)] = "",
                 first: Annotated[str, Form(max_length=20)] = "",
                 days: Annotated[str, Form(max_length=10)] = "",
                 periods: Annotated[list[str] | None, Form(max_length=20)] = None,
                 capacity: Annotated[str, Form(max_length=10)] = "",
                 fee: Annotated[str, Form(max_length=20)] = "",
                 release_days: Annotated[str, Form(max_length=10)] = "") -> Response:
    account = who.logged_in(Role.OPERATOR)
    check_csrf(request, csrf)
    chosen_periods = [p for p in (periods or []) if p in {x.value for x in Period}]
    typed = {"s_doctor": doctor_id, "s_first": first, "s_days": days,
             "s_periods": chosen_periods, "s_capacity": capacity, "s_fee": fee,
             "s_release": release_days}
    try:
        try:
            start = dt.date.fromisoformat(first.strip())
        except ValueError:
            raise InvalidInput("the first day is YYYY-MM-DD",
                               code="invalid_schedule") from None
        if start < today(deps):
            raise InvalidInput("the first day cannot be in the past", code="invalid_schedule")
        count = _whole(days, 1, MAX_DAYS, N_("The number of days is 1 to 31."))
        try:
            yuan = Decimal(fee.strip())
        except InvalidOperation:
            yuan = Decimal(-1)
        if not yuan.is_finite() or not Decimal(0) <= yuan <= Decimal(10000) \
                or yuan != yuan.quantize(Decimal("0.01")):
            raise InvalidInput("the fee is in yuan, from 0 to 10000, at most two decimals",
                               code="invalid_schedule")
        doctor_no = _whole(doctor_id, 1, 2**62, N_("Choose a doctor."))
        slots = _whole(capacity, 1, 500, N_("Slots per session are 1 to 500."))
        before = _whole(release_days, 0, 60, N_("The release is 0 to 60 days before."))
        created = catalog.schedule_sessions(
            uow, deps, doctor_no, [start + dt.timedelta(days=n) for n in range(count)],
            [Period(p) for p in chosen_periods], slots, int(yuan * 100),
            release_days_before=before)
    except FairslotError as exc:
        refused(uow)
        return _page(request, uow, deps, account, status=exc.status, error=exc, form=typed)
    done = "sessions_scheduled" if created else "sessions_existed"
    return redirect(f"/operator/catalogue?done={done}#sessions")

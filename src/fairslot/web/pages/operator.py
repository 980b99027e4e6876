"""The operator's pages: the day's sessions, each doctor's release policy, the guard's
levels; the desk's identity claims waiting for a second member of staff; the admin's user
and role management. (The live console and alerts are the
monitor's pages, linked from the navigation.)"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import anyio.from_thread
from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError, InvalidInput
from fairslot.domain.schedule import ReleasePolicy
from fairslot.guard.policy import GuardLevel, RouteGroup
from fairslot.services import accounts, audit, booking, catalog, identities
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import DepsDep, UowDep, context
from fairslot.web.pages.common import (
    PageId,
    Viewer,
    check_csrf,
    done_message,
    local,
    page_router,
    redirect,
    refused,
    render,
    today,
)

__all__ = ["router"]

router = page_router()


def _day(raw: str | None, default: dt.date) -> dt.date:
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        # A malformed query is a bad request (400), not a missing page.
        raise FairslotError("the date is YYYY-MM-DD", code="invalid_date") from None


@router.get("/operator")
def operator(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             date: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    account = who.logged_in(Role.OPERATOR)
    day = _day(date, today(deps))
    rows = catalog.day_sessions(uow, deps, day)
    return render(request, "operator.html", account=account, rows=rows, day=day,
                  prev_day=day - dt.timedelta(days=1), next_day=day + dt.timedelta(days=1),
                  zone=deps.settings.timezone,
                  totals={"capacity": sum(r.session.capacity for r in rows),
                          "booked": sum(r.counts.booked for r in rows),
                          "free": sum(r.counts.free for r in rows)})


@router.get("/operator/sessions/{session_id}")
def session_patients(session_id: PageId, request: Request, who: Viewer, uow: UowDep,
                     deps: DepsDep) -> Response:
    """One session's patients in slot order (masked), for the doctor's office and the
    desk: who is booked, paid, checked in; printable."""
    who.logged_in(Role.OPERATOR, Role.REGISTRATION)
    view = catalog.session_view(uow, deps, session_id)
    rows = sorted((v for v in booking.session_bookings(uow, deps, session_id)
                   if v.booking.status.value not in ("cancelled", "expired")),
                  key=lambda v: v.slot_number)
    department, _hospital = catalog.department(uow, deps, view.doctor.department_id)
    return render(request, "session_patients.html", view=view, rows=rows,
                  department=department, starts=local(deps, view.session.starts_at),
                  printed=local(deps, deps.clock.now()))


# -- release policies ------------------------------------------------------------------------


@router.get("/operator/policies")
def policies(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    who.logged_in(Role.OPERATOR)
    groups = []
    for hospital, departments in catalog.hospitals(uow, deps):
        for department in departments:
            groups.append({"hospital": hospital, "department": department,
                           "doctors": sorted(catalog.doctors(uow, deps, department.id or 0),
                                             key=lambda d: (not d.hot, d.name))})
    return render(request, "policies.html", groups=groups, notice=done_message(done),
                  policies=list(ReleasePolicy))


@router.post("/operator/policies/{doctor_id}")
def set_policy(doctor_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
               csrf: Annotated[str, Form()] = "",
               policy: Annotated[str, Form(max_length=20)] = "") -> Response:
    who.logged_in(Role.OPERATOR)
    check_csrf(request, csrf)
    try:
        chosen = ReleasePolicy(policy)
    except ValueError:
        raise InvalidInput("choose a release policy", code="invalid_policy") from None
    catalog.set_release_policy(uow, deps, doctor_id, chosen)
    return redirect(f"/operator/policies?done=policy_saved#doctor-{doctor_id}")


# -- guard levels ------------------------------------------------------------------------------


@router.get("/operator/guard")
def guard_levels(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                 done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    who.logged_in(Role.OPERATOR)
    guard = getattr(request.app.state, "guard", None)
    found = anyio.from_thread.run(guard.status) if guard is not None else None
    return render(request, "guard.html", guard_status=found, groups=list(RouteGroup),
                  levels=list(GuardLevel), notice=done_message(done))


@router.post("/operator/guard/{group}")
def set_guard_level(group: str, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                    csrf: Annotated[str, Form()] = "",
                    level: Annotated[str, Form(max_length=20)] = "") -> Response:
    account = who.logged_in(Role.OPERATOR)
    check_csrf(request, csrf)
    try:
        chosen_group, chosen = RouteGroup(group), GuardLevel(level)
    except ValueError:
        raise InvalidInput("choose a route group and a level", code="invalid_level") from None
    guard = getattr(request.app.state, "guard", None)
    if guard is None:
        raise InvalidInput("this server runs without the guard", code="no_guard")
    anyio.from_thread.run(guard.set_level, chosen_group, chosen)
    audit.guard_level_changed(uow, deps, account, chosen_group.value, chosen.value)
    return redirect("/operator/guard?done=level_saved")


# -- the desk's identity claims (four eyes) -----------------------------------------------


@router.get("/operator/identity-claims")
def identity_claims(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                    done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """The desk's identity claims waiting for a second member of staff."""
    account = who.logged_in(Role.OPERATOR)
    rows = [{"view": v, "created": local(deps, v.claim.created_at),
             "expires": local(deps, v.claim.expires_at),
             "own": v.claim.requested_by == account.id}
            for v in identities.desk_claims(uow, deps, account)]
    return render(request, "identity_claims.html", rows=rows, notice=done_message(done))


@router.post("/operator/identity-claims/{claim_id}")
def decide_identity_claim(claim_id: PageId, request: Request, who: Viewer, uow: UowDep,
                          deps: DepsDep, csrf: Annotated[str, Form()] = "",
                          decision: Annotated[str, Form(max_length=10)] = "") -> Response:
    account = who.logged_in(Role.OPERATOR)
    check_csrf(request, csrf)
    if decision == "approve":
        identities.approve_desk_claim(uow, deps, account, claim_id, context(request))
        return redirect("/operator/identity-claims?done=claim_approved")
    if decision == "reject":
        identities.reject_desk_claim(uow, deps, account, claim_id, context(request))
        return redirect("/operator/identity-claims?done=claim_rejected")
    raise InvalidInput("approve or reject the claim", code="invalid_decision")


# -- users and roles (admins) -------------------------------------------------------------


@router.get("/admin/users")
def users(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
          done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    account = who.logged_in(Role.ADMIN)
    return _users_page(request, uow, deps, account, notice=done_message(done))


def _users_page(request: Request, uow: UnitOfWork, deps: Deps, account: Account, *,
                status: int = 200, error: FairslotError | None = None,
                notice: str | None = None, username: str = "") -> Response:
    return render(request, "users.html", status=status, staff=accounts.staff_accounts(uow, deps),
                  roles=[r for r in Role if r is not Role.PATIENT], me=account, error=error,
                  notice=notice, username=username)


@router.post("/admin/users")
def create_user(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                csrf: Annotated[str, Form()] = "",
                username: Annotated[str, Form(max_length=64)] = "",
                password: Annotated[str, Form(max_length=256)] = "",
                role: Annotated[str, Form(max_length=20)] = "") -> Response:
    account = who.logged_in(Role.ADMIN)
    check_csrf(request, csrf)
    try:
        chosen = Role(role)
        if chosen is Role.PATIENT:
            raise ValueError(role)
    except ValueError:
        return _users_page(request, uow, deps, account, status=422, username=username,
                           error=InvalidInput("choose a staff role", code="invalid_role"))
    try:
        accounts.create_user(uow, deps, username, password, chosen)
    except FairslotError as exc:
        refused(uow)
        return _users_page(request, uow, deps, account, status=exc.status, error=exc,
                           username=username)
    return redirect("/admin/users?done=user_saved")


@router.post("/admin/users/{account_id}")
def change_user(account_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                csrf: Annotated[str, Form()] = "",
                role: Annotated[str, Form(max_length=20)] = "",
                disabled: Annotated[str, Form(max_length=5)] = "") -> Response:
    account = who.logged_in(Role.ADMIN)
    check_csrf(request, csrf)
    try:
        chosen = Role(role) if role else None
        accounts.change_account(uow, deps, account, account_id, role=chosen,
                                disabled=disabled == "yes")
    except ValueError:
        return _users_page(request, uow, deps, account, status=422,
                           error=InvalidInput("choose a staff role", code="invalid_role"))
    except FairslotError as exc:
        refused(uow)
        return _users_page(request, uow, deps, account, status=exc.status, error=exc)
    return redirect("/admin/users?done=user_saved")

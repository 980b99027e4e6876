"""Every route, walked by every role (and by nobody): each answer is what the role allows."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from fairslot.domain.accounts import Role
from fairslot.web.app import create_app
from tests.conftest import World
from tests.web.routes import all_routes

PUBLIC = {"/healthz", "/readyz", "/api/v1/hospitals", "/api/v1/hospitals/{hospital_id}/departments",
          "/api/v1/departments/{department_id}/doctors", "/api/v1/doctors/{doctor_id}",
          "/api/v1/doctors/{doctor_id}/sessions", "/api/v1/sessions/{session_id}",
          "/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/openapi.json",
          "/api/v1/docs", "/api/v1/redoc", "/api/v1/rounds", "/api/v1/rounds/{round_id}",
          "/api/v1/rounds/{round_id}/export", "/api/v1/draw/log", "/api/v1/draw/checkpoint",
          # The consortium's routes answer other hospitals, not users: each but the key is a
          # request signed by a pinned member (tests/consortium/test_consortium.py).
          "/api/v1/consortium/key", "/api/v1/consortium/feeds/{member}",
          "/api/v1/consortium/appeals",
          # Demo only (FAIRSLOT_DEV_OUTBOX_PAGE); 404 otherwise.
          "/api/v1/dev/outbox"}
# Who may use each non-public route besides admin (who may use every route).
ALLOWED: dict[tuple[str, str], set[Role]] = {
    ("POST", "/api/v1/auth/logout"): set(Role),
    ("GET", "/api/v1/me"): set(Role),
    ("GET", "/api/v1/me/bookings"): set(Role),
    ("GET", "/api/v1/bookings/{booking_id}"): set(Role),
    ("GET", "/api/v1/me/patients"): {Role.PATIENT},
    ("POST", "/api/v1/me/patients"): {Role.PATIENT},
    ("DELETE", "/api/v1/me/patients/{patient_id}"): {Role.PATIENT},
    ("POST", "/api/v1/bookings"): {Role.PATIENT},
    ("POST", "/api/v1/bookings/{booking_id}/pay"): {Role.PATIENT},
    ("POST", "/api/v1/bookings/{booking_id}/cancel"): {Role.PATIENT, Role.REGISTRATION},
    ("POST", "/api/v1/staff/check-in"): {Role.REGISTRATION},
    ("POST", "/api/v1/staff/bookings"): {Role.REGISTRATION},
    ("GET", "/api/v1/staff/sessions/{session_id}/bookings"): {Role.REGISTRATION, Role.OPERATOR},
    ("GET", "/api/v1/staff/desk-awaiting-payment"): {Role.REGISTRATION},
    ("POST", "/api/v1/admin/departments"): {Role.OPERATOR},
    ("POST", "/api/v1/admin/doctors"): {Role.OPERATOR},
    ("POST", "/api/v1/admin/sessions"): {Role.OPERATOR},
    ("GET", "/api/v1/investigation/events"): {Role.INVESTIGATOR},
    ("POST", "/api/v1/admin/users"): set(),
    ("GET", "/api/v1/me/entries"): set(Role),
    ("GET", "/api/v1/me/inbox"): set(Role),
    ("GET", "/api/v1/sessions/{session_id}/booking-screen"): {Role.PATIENT},
    ("GET", "/api/v1/bookings/{booking_id}/payment-screen"): {Role.PATIENT},
    ("GET", "/api/v1/rounds/{round_id}/entry-screen"): {Role.PATIENT},
    ("POST", "/api/v1/rounds/{round_id}/entries"): {Role.PATIENT},
    ("DELETE", "/api/v1/entries/{entry_id}"): {Role.PATIENT},
    ("GET", "/api/v1/entries/{entry_id}/proof"): {Role.PATIENT},
    ("GET", "/api/v1/admin/guard"): {Role.OPERATOR},
    ("POST", "/api/v1/staff/rounds/{round_id}/entries"): {Role.REGISTRATION},
    ("POST", "/api/v1/staff/bookings/{booking_id}/pay"): {Role.REGISTRATION},
    ("POST", "/api/v1/staff/bookings/{booking_id}/cancel"): {Role.REGISTRATION},
    ("POST", "/api/v1/staff/find"): {Role.REGISTRATION},
    ("PUT", "/api/v1/admin/guard/levels/{group}"): {Role.OPERATOR},
    ("POST", "/api/v1/me/phone/code"): {Role.PATIENT},
    ("POST", "/api/v1/me/phone/verify"): {Role.PATIENT},
    ("POST", "/api/v1/me/phone"): {Role.PATIENT},
    ("PUT", "/api/v1/me/language"): set(Role),
    ("POST", "/api/v1/me/identity"): {Role.PATIENT},
    ("GET", "/api/v1/me/identity"): {Role.PATIENT},
    ("DELETE", "/api/v1/me/identity/{patient_id}/links/{account_id}"): {Role.PATIENT},
    ("POST", "/api/v1/staff/identity-claims"): {Role.REGISTRATION},
    ("GET", "/api/v1/staff/identity-claims"): {Role.OPERATOR},
    ("POST", "/api/v1/staff/identity-claims/{claim_id}/approve"): {Role.OPERATOR},
    ("POST", "/api/v1/staff/identity-claims/{claim_id}/reject"): {Role.OPERATOR},
    ("GET", "/api/v1/me/shared-list"): {Role.PATIENT},
    ("POST", "/api/v1/me/shared-list/appeals"): {Role.PATIENT},
    ("GET", "/api/v1/staff/consortium/reviews"): {Role.REGISTRATION},
    ("POST", "/api/v1/staff/consortium/reviews/{issuer}/{entry_no}"): {Role.REGISTRATION},
    ("GET", "/api/v1/investigation/reviews"): {Role.INVESTIGATOR},
    ("POST", "/api/v1/investigation/reviews/{booking_id}"): {Role.INVESTIGATOR},
    ("GET", "/api/v1/monitor/alerts"): {Role.INVESTIGATOR, Role.OPERATOR},
    ("GET", "/api/v1/monitor/alerts/{alert_id}"): {Role.INVESTIGATOR, Role.OPERATOR},
    ("POST", "/api/v1/monitor/alerts/{alert_id}/status"): {Role.INVESTIGATOR, Role.OPERATOR},
    ("GET", "/api/v1/monitor/decisions"): {Role.INVESTIGATOR, Role.OPERATOR},
    ("POST", "/api/v1/monitor/decisions"): {Role.INVESTIGATOR, Role.OPERATOR},
    ("POST", "/api/v1/monitor/decisions/{decision_id}/lift"): {Role.INVESTIGATOR, Role.OPERATOR},
}


def _routes(app: object) -> list[tuple[str, str]]:
    found = []
    for path, route in all_routes(app):
        if path.startswith("/api/v1"):
            found += [(m, path) for m in sorted(route.methods)]
    assert len(found) > 40, found  # the walk must reach the API's routes
    return found


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_route_checks_the_role_of_every_caller(world: World) -> None:
    app = create_app(world.platform)
    client = TestClient(app)
    # Log-out last: it ends the token the other calls use.
    routes = sorted((r for r in _routes(app) if r[1] not in PUBLIC),
                    key=lambda r: r[1] == "/api/v1/auth/logout")
    unknown = [r for r in routes if r not in ALLOWED]
    assert not unknown, f"routes without a role rule in this test: {unknown}"
    callers: dict[str, str | None] = {"nobody": None}
    _, _, callers[Role.PATIENT.value] = world.patient_account("walker")
    for role in Role:
        if role is not Role.PATIENT:
            callers[role.value] = world.token(role)
    wrong: list[tuple[str, str, str, int, str]] = []
    for method, path in routes:
        url = re.sub(r"\{[a-z_]+\}", "1", path).replace("levels/1", "levels/booking")
        for caller, token in callers.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            # An empty body: roles are checked before the body is, so a 422 means "allowed".
            r = client.request(method, url, headers=headers, json={})
            assert r.status_code == 204 or r.headers.get("content-type", "").startswith(
                "application/"), (method, path, caller, r.status_code)
            body = r.json() if r.status_code != 204 else {}
            code = body.get("code", "") if isinstance(body, dict) else ""
            # An empty JSON body fails validation before the role is looked at on routes
            # that take one: refused all the same, nothing done (the schemathesis walk sends
            # valid bodies as every caller).
            invalid_body = r.status_code == 422 and code == "validation_error"
            if token is None:
                if r.status_code != 401 and not invalid_body:
                    wrong.append((method, path, caller, r.status_code, code))
                continue
            role = Role(caller)
            allowed = role is Role.ADMIN or role in ALLOWED[(method, path)]
            if allowed:
                if r.status_code in (401, 403) and code in ("forbidden_role",
                                                            "unauthenticated"):
                    wrong.append((method, path, caller, r.status_code, code))
            elif not (invalid_body or (r.status_code == 403 and code in (
                    "forbidden_role", "token_missing"))):
                # token_missing: the guard asks for the action token before the route
                # looks at the role, and only a patient's screen issues one.
                wrong.append((method, path, caller, r.status_code, code))
    assert not wrong, "\n".join(map(str, wrong))

"""Schemathesis generates requests from the OpenAPI document, valid and invalid, and sends
each one as every caller: nobody, a patient and each staff role. Every answer is checked:
never a 5xx, always a documented status, content type and schema, and every 4xx an
``application/problem+json`` with a stable ``code``.

The examples per operation are bounded (``FAIRSLOT_FUZZ_EXAMPLES``, default 3, past
schemathesis's own boundary cases) so that the walk stays within about a minute on the
test machine; raise it for a deeper run. The guard's rate limits are lifted for the walk,
or most requests would stop at a 429 before reaching the
code under test (the limits have tests of their own)."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from fairslot.bootstrap import bootstrap
from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.guard.policy import KeyKind, RouteGroup
from fairslot.web.app import create_app
from tests.conftest import NOW, _pg_engine, build_world, make_settings
from tests.web.routes import all_routes

EXAMPLES = int(os.environ.get("FAIRSLOT_FUZZ_EXAMPLES", "3"))
NO_LIMITS = {group.value: {key.value: "none" for key in KeyKind} for group in RouteGroup}


def problem_json_for_every_4xx(ctx: Any, response: Any, case: Any) -> bool:
    """A refusal is application/problem+json with the status and a code."""
    if 400 <= response.status_code < 500:
        kind = response.headers.get("content-type", [""])
        kind = kind[0] if isinstance(kind, list) else kind
        assert kind.startswith("application/problem+json"), (response.status_code, kind)
        body = response.json()
        assert body["status"] == response.status_code and body["code"], body
    return True


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection, problem_json_for_every_4xx]
COUNTS = {"cases": 0, "requests": 0}
PER_OPERATION: dict[str, int] = {}
ROLES_PER_OPERATION: dict[str, set[str]] = {}


@pytest.fixture
def api(pg_url: str) -> Iterator[tuple[Any, dict[str, str | None]]]:
    engine = _pg_engine(pg_url)
    platform = bootstrap(make_settings(database_url=pg_url, guard_limits=NO_LIMITS),
                         clock=FixedClock(NOW), engine=engine)
    world = build_world(platform)
    _, _, patient = world.patient_account("fuzzed", patients=2)
    callers: dict[str, str | None] = {"nobody": None, Role.PATIENT.value: patient}
    callers.update({role.value: world.token(role) for role in Role if role is not Role.PATIENT})
    app = create_app(platform)
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app), callers
    engine.dispose()


@pytest.fixture
def api_schema(api: tuple[Any, dict[str, str | None]]) -> Any:
    return api[0]


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_the_api_never_fails_and_keeps_its_contract_for_every_caller(
        case: Any, api: tuple[Any, dict[str, str | None]]) -> None:
    callers = api[1]
    COUNTS["cases"] += 1
    # The cases of one operation go to each caller in turn (nobody, a patient, each staff
    # role), so every operation is walked as every role: the role checks come first on
    # most routes, so a patient's valid request is also an investigator's forbidden one,
    # and both must answer cleanly.
    key = case.operation.label
    seen = PER_OPERATION[key] = PER_OPERATION.get(key, 0) + 1
    order = sorted(callers)
    who = order[(seen + zlib.crc32(key.encode())) % len(order)]
    ROLES_PER_OPERATION.setdefault(key, set()).add(who)
    token = callers[who]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    case.call_and_validate(headers=headers, checks=CHECKS)
    COUNTS["requests"] += 1


def test_the_walk_reached_every_operation_as_every_caller(
        api: tuple[Any, dict[str, str | None]]) -> None:
    """The OpenAPI document lists every API route (none is hidden from the walk), and the
    walk sent nearly every operation's cases as every caller."""
    app_schema, _ = api
    documented = {(op.method.upper(), op.path) for op in
                  (result.ok() for result in app_schema.get_all_operations())}
    app = app_schema.app
    routes = {(method, path) for path, route in all_routes(app)
              if path.startswith("/api/v1") and route.include_in_schema
              for method in route.methods}
    assert len(routes) > 40 and routes <= documented, routes - documented
    if ROLES_PER_OPERATION:  # after the walk (not when this test runs alone)
        every = sum(len(r) == len(api[1]) for r in ROLES_PER_OPERATION.values())
        print(f"schemathesis: {COUNTS['cases']} cases over {len(ROLES_PER_OPERATION)} "
              f"operations, {every} of them walked as all {len(api[1])} callers")
        assert every >= 0.9 * len(ROLES_PER_OPERATION)

"""Schemathesis generates requests from the OpenAPI document, valid and invalid, and checks
every answer: never a 5xx, always a documented status, content type and schema."""

from __future__ import annotations

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
from fairslot.web.app import create_app
from tests.conftest import NOW, _pg_engine, build_world, make_settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


@pytest.fixture
def api(pg_url: str) -> Iterator[tuple[Any, dict[str, str]]]:
    engine = _pg_engine(pg_url)
    platform = bootstrap(make_settings(database_url=pg_url), clock=FixedClock(NOW),
                         engine=engine)
    world = build_world(platform)
    _, _, patient = world.patient_account("fuzzed", patients=2)
    app = create_app(platform)
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app), {
        "patient": patient, "admin": world.token(Role.ADMIN)}
    engine.dispose()


@pytest.fixture
def api_schema(api: tuple[Any, dict[str, str]]) -> Any:
    return api[0]


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_the_api_never_fails_and_keeps_its_contract(case: Any,
                                                    api: tuple[Any, dict[str, str]]) -> None:
    tokens = api[1]
    # Alternate callers so the fuzzer reaches past the role checks on most routes.
    # (crc32, not hash(): the same path gets the same caller in every run.)
    who = "admin" if zlib.crc32(case.path.encode()) % 2 else "patient"
    case.call_and_validate(headers={"Authorization": f"Bearer {tokens[who]}"}, checks=CHECKS)

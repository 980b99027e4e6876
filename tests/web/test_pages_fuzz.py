"""Every page route, walked with hostile values (Hypothesis): path ids, query values and
form fields drawn from huge and negative numbers, Unicode digits, NUL bytes, far dates,
markup and plain random text, as a logged-in patient, a desk clerk and an operator. No
answer may be a 5xx; a browser's 4xx is the error page (HTML), anyone else's
``application/problem+json``.

Bounded by ``FAIRSLOT_FUZZ_EXAMPLES`` (default 20 requests per page route)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.guard.policy import KeyKind, RouteGroup
from fairslot.web.app import create_app
from tests.conftest import PASSWORD, World, make_settings
from tests.web.routes import all_routes

EXAMPLES = int(os.environ.get("FAIRSLOT_FUZZ_EXAMPLES_PAGES", "20"))
NO_LIMITS = {group.value: {key.value: "none" for key in KeyKind} for group in RouteGroup}
HOSTILE = ["99999999999999999999", "2147483648", "-1", "0", "²", "٣", "１２", "1e309",
           "NaN", "\x00", "a\x00b", "9999-12-31", "0001-01-01", "1900-01-01", "2026-02-30",
           "<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd", "%00", "",
           " " * 8, "=HYPERLINK(\"http://evil.example\")", "\u202e", "🙂" * 20,
           "x" * 5000, "true", "[]", "{}"]
values = st.one_of(st.sampled_from(HOSTILE), st.integers(-2**70, 2**70).map(str),
                   st.text(max_size=40))
COUNTS = {"requests": 0}


def page_routes(app: Any) -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path, query names, form names) of every page route."""
    found = []
    for path, route in all_routes(app):
        if path.startswith(("/api/", "/healthz", "/readyz")):
            continue
        if path == "/operator/console/stream":
            continue  # server-sent events paced by the wall clock (tests/web/test_console.py)
        queries = [p.alias for p in route.dependant.query_params]
        forms = [p.alias for p in route.dependant.body_params]
        for method in sorted(route.methods):
            found.append((method, path, [*queries, "date", "next", "done"], forms))
    return found


@pytest.fixture
def platform(engine: sa.Engine, clock: FixedClock) -> Platform:
    settings = make_settings(database_url=str(engine.url), guard_device_cookie_secure=False,
                             guard_limits=NO_LIMITS)
    return bootstrap(settings, clock=clock, engine=engine)


@pytest.fixture
def clients(world: World) -> Iterator[dict[str, TestClient]]:
    world.patient_account("fuzz.patient", patients=2)
    app = create_app(world.platform)
    made = {}
    with TestClient(app, raise_server_exceptions=False) as anonymous:
        made["nobody"] = anonymous
        for username in ("fuzz.patient", "staff-registration", "staff-operator"):
            client = TestClient(app, raise_server_exceptions=False)
            form = client.get("/login", headers={"accept": "text/html"})
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            r = client.post("/login", data={"csrf": csrf.group(1), "username": username,
                                            "password": PASSWORD}, follow_redirects=False)
            assert r.status_code == 303, r.text
            made[username] = client
        yield made


def csrf_of(client: TestClient) -> str:
    page = client.get("/", headers={"accept": "text/html"}).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    return found.group(1) if found else ""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_no_page_answers_hostile_input_with_a_server_error(
        clients: dict[str, TestClient], world: World) -> None:
    app = clients["nobody"].app
    routes = page_routes(app)
    assert len(routes) >= 20, routes  # every page route, GET and POST
    tokens = {who: csrf_of(client) for who, client in clients.items()}

    @settings(max_examples=EXAMPLES * len(routes), deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(route=st.sampled_from(routes), who=st.sampled_from(sorted(clients)),
           data=st.data(), browser=st.booleans(), real_csrf=st.booleans())
    def walk(route: tuple[str, str, list[str], list[str]], who: str, data: Any,
             browser: bool, real_csrf: bool) -> None:
        method, template, queries, forms = route
        path = re.sub(r"\{[a-z_]+\}",
                      lambda _: quote(data.draw(values, label="path"), safe="") or "1",
                      template)
        query = {name: data.draw(values, label=name)
                 for name in data.draw(st.lists(st.sampled_from(queries), max_size=3,
                                                unique=True), label="query")}
        form = {name: data.draw(values, label=name) for name in forms}
        if "csrf" in form and real_csrf:
            form["csrf"] = tokens[who]
        headers = {"accept": "text/html"} if browser else {}
        client = clients[who]
        r = client.request(method, path, params=query,
                           data=form if method == "POST" else None, headers=headers,
                           follow_redirects=False)
        COUNTS["requests"] += 1
        assert r.status_code < 500, (method, path, query, form, r.text[:300])
        if 400 <= r.status_code < 500:
            kind = r.headers.get("content-type", "")
            if browser:
                assert kind.startswith("text/html"), (method, path, r.status_code, kind)
            else:
                assert kind.startswith(("application/problem+json", "text/html")), kind
                if kind.startswith("application/problem+json"):
                    assert r.json()["status"] == r.status_code

    walk()
    print(f"page walk: {COUNTS['requests']} requests over {len(routes)} page routes")

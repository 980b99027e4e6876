"""The operator's console in a real browser (Debian's Chromium, driven by Playwright) against a
real uvicorn server running the monitor inside it (embedded mode): an account tries made-up
identities, the alert appears on the open console without a reload (server-sent events),
the scenario's response holds the account's next booking for review, the ring cannot pay
for it, and the investigator rejects it from the console's review queue. A ring passing a
slot from its holder to a buyer (T4) meets the same end with the default responses: the
operator sees the ``launder`` alert and its decisions, and the ring's next booking waits in
the review queue.

A missing Chromium is a failure with the fix in its message, never a skip."""

from __future__ import annotations

import json
import os
import pathlib
import re
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fairslot.guard.service import POW_HEADER
from fairslot.simulation.live_tactics import solve_pow
from tests.conftest import PASSWORD
from tests.web.browser_server import serve
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

# One server for the module, also under xdist.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-console")]

TOKEN_MIN_AGE = 0.3
TOKEN_WAIT = TOKEN_MIN_AGE + 0.1

# Made-up identities as a farm tries them: invalid check digits, a new name each time.
FARMED = (("110101199003071111", "张三"), ("110101199003072222", "李四"),
          ("110101199003073333", "王五"))

# Runs in the server's own process before uvicorn starts: a released session, an
# investigator, and the ring's account with one real patient.
SEED = textwrap.dedent("""
    import datetime as dt, random
    from fairslot.bootstrap import bootstrap
    from fairslot.domain.accounts import Role
    from fairslot.domain.residents import make_residents
    from fairslot.domain.schedule import Period
    from fairslot.services import accounts, catalog
    from fairslot.services.context import RequestContext
    from fairslot.storage.migrate import upgrade

    platform = bootstrap()
    upgrade(platform.engine)
    hospital = platform.run(catalog.create_hospital, "CON", "值班台测试医院")
    department = platform.run(catalog.create_department, hospital.id, "CARD", "心内科")
    doctor = platform.run(catalog.create_doctor, department.id, "陈静", "主任医师", "冠心病")
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    platform.run(catalog.schedule_sessions, doctor.id, [today + dt.timedelta(days=3)],
                 [Period.MORNING], 12, 5000, release_days_before=5)
    people = make_residents(random.Random(12), 1)
    with platform.uow() as uow:
        platform.verifier.register(uow, people[0])
        uow.commit()
    platform.run(accounts.create_user, "duty.investigator", {password!r}, Role.INVESTIGATOR,
                 None)
    ring = platform.run(accounts.create_user, "ring.account", {password!r}, Role.PATIENT,
                        "13912345679", phone_verified=True)
    patient = platform.run(accounts.add_patient, ring, people[0].id_number, people[0].name,
                           None, RequestContext(ip="127.0.0.1"))
    # A laundering ring (T4): the holder's account with the slot's holder and the ring's
    # next patient, and a spare account of the ring with the buyer.
    launder = make_residents(random.Random(13), 3)
    with platform.uow() as uow:
        for person in launder:
            platform.verifier.register(uow, person)
        uow.commit()
    ids = []
    for name, phone, mine in (("ring.holder", "13912345680", launder[:2]),
                              ("ring.spare", "13912345681", launder[2:])):
        owner = platform.run(accounts.create_user, name, {password!r}, Role.PATIENT, phone,
                             phone_verified=True)
        ids.append(owner.id)
        for person in mine:
            ids.append(platform.run(accounts.add_patient, owner, person.id_number, person.name,
                                    None, RequestContext(ip="127.0.0.1")).id)
    print("launder", *ids)
    print(patient.id)
""")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    # One seeded server for the module (the chart test only reads the console): a server
    # start and its seed cost seconds on a loaded machine.
    tmp_path = tmp_path_factory.mktemp("browser-console")
    # A short minimum age for action tokens: the test waits it out on the wall clock (the
    # server runs in real time), and the age's own rule is tested in tests/guard.
    settings = {"FAIRSLOT_MONITOR_MODE": "embedded",
                "FAIRSLOT_GUARD_TOKEN_MIN_AGE_SECONDS": str(TOKEN_MIN_AGE),
                "FAIRSLOT_MONITOR_RESPONSES": json.dumps({"bad_identities": ["hold_bookings 1h"]})}
    with serve(tmp_path, SEED, settings) as (url, printed):
        yield url, printed


@pytest.fixture
def server(seeded: tuple[str, str]) -> tuple[str, int]:
    """The server's URL and the first ring's patient."""
    url, printed = seeded
    return url, int(printed.split()[-1])


@pytest.fixture
def launder_ring(seeded: tuple[str, str]) -> tuple[str, list[int]]:
    """The server's URL and the laundering ring's holder account, its two patients, its
    spare account and the buyer."""
    url, printed = seeded
    line = next(x for x in printed.splitlines() if x.startswith("launder "))
    return url, [int(x) for x in line.split()[1:]]



def _console(browser: Any, url: str, **page_options: Any) -> Any:
    """The duty investigator's console, logged in, in Chinese."""
    page = browser.new_page(locale="zh-CN", **page_options)
    page.goto(url + "/login")
    page.get_by_label("用户名").fill("duty.investigator")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()
    page.goto(url + "/operator/console")
    return page

def test_an_alert_appears_live_and_its_hold_stops_the_rings_booking(
        server: tuple[str, int]) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with "
                    "`apt-get update && apt-get install -y chromium` (make test does)",
                    pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    url, patient_id = server
    ring = httpx.Client(base_url=url, timeout=30)
    token = ring.post("/api/v1/auth/login", json={"username": "ring.account",
                                                 "password": PASSWORD}).json()["token"]
    ring.headers["Authorization"] = f"Bearer {token}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = _console(browser, url)
            expect(page.locator("#fig-open-alerts")).to_have_text("0")

            # The ring's account makes up patients; the open page shows the alert within
            # the stream's few seconds, without a reload.
            for number, name in FARMED:
                r = ring.post("/api/v1/me/patients", json={"id_number": number, "name": name})
                assert r.status_code == 422, r.text
            # (One alert for the account, one for the device it used.)
            expect(page.locator("#fig-open-alerts")).to_have_text(re.compile(r"^[1-9]"),
                                                                  timeout=20_000)

            # The response configured for the scenario holds the account's next booking:
            # the guard reads the decision within a second.
            time.sleep(1.5)
            screen = ring.get("/api/v1/sessions/1/booking-screen")
            assert screen.status_code == 200, screen.text
            time.sleep(TOKEN_WAIT)  # an action token is good after its minimum age
            booked = ring.post("/api/v1/bookings",
                               json={"session_id": 1, "patient_id": patient_id},
                               headers={screen.json()["token_header"]:
                                        screen.json()["action_token"]})
            assert booked.status_code == 201, booked.text
            assert booked.json()["review"] == "pending"
            booking_id = booked.json()["id"]
            pay = ring.get(f"/api/v1/bookings/{booking_id}/payment-screen")
            if pay.status_code == 200 and pay.json()["action_token"]:
                time.sleep(TOKEN_WAIT)
                paid = ring.post(f"/api/v1/bookings/{booking_id}/pay",
                                 json={"payer_account": "alipay:hub@pay.example"},
                                 headers={pay.json()["token_header"]:
                                          pay.json()["action_token"]})
                assert paid.status_code == 409 and paid.json()["code"] == "under_review"
            else:
                assert pay.status_code == 409, pay.text

            # The console: the alert names the account, the held booking waits in the
            # review queue, and the investigator rejects it.
            page.reload()
            alerts = page.locator("table.sessions").first
            expect(alerts).to_contain_text("bad_identities")
            expect(alerts).to_contain_text(f"账户 {ring.get('/api/v1/me').json()['id']}")
            form = page.locator(f"form[action='/operator/console/reviews/{booking_id}']")
            form.get_by_label("原因").fill("made-up patients from this account")
            form.get_by_role("button", name="拒绝").click()
            page.wait_for_load_state()
            expect(page.get_by_text("没有待审核的预约")).to_be_visible()
        finally:
            browser.close()
    mine = ring.get(f"/api/v1/bookings/{booking_id}")
    assert mine.status_code == 200 and mine.json()["status"] != "held", mine.text


def _post_solving(client: httpx.Client, path: str, body: dict[str, object],
                  headers: dict[str, str]) -> httpx.Response:
    """POST as a ring's software does: when the guard asks for proof of work, solve it."""
    answer = client.post(path, json=body, headers=headers)
    if answer.status_code == 403 and answer.json().get("code") == "challenge_required":
        answer = client.post(path, json=body, headers={
            **headers, POW_HEADER: solve_pow(answer.json()["challenge"])})
    return answer


def _book(client: httpx.Client, session_id: int, patient_id: int) -> httpx.Response:
    screen = client.get(f"/api/v1/sessions/{session_id}/booking-screen")
    assert screen.status_code == 200, screen.text
    time.sleep(TOKEN_WAIT)  # an action token is good after its minimum age
    return _post_solving(client, "/api/v1/bookings",
                         {"session_id": session_id, "patient_id": patient_id},
                         {screen.json()["token_header"]: screen.json()["action_token"]})


def test_the_operator_sees_a_launder_alert_and_the_rings_next_booking_held_for_review(
        launder_ring: tuple[str, list[int]]) -> None:
    """T4 on the default responses (``launder``: hold bookings and proof of work, on both
    accounts): the ring's holder cancels its slot and its spare account books it for the
    buyer seconds later; the console shows the alert and the hold decisions, and the ring's
    next booking waits in the review queue, unpaid."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with "
                    "`apt-get update && apt-get install -y chromium` (make test does)",
                    pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    url, (holder, held_patient, next_patient, spare, buyer) = launder_ring
    ring: dict[str, httpx.Client] = {}
    for name in ("ring.holder", "ring.spare"):
        client = httpx.Client(base_url=url, timeout=30)
        token = client.post("/api/v1/auth/login", json={"username": name,
                                                       "password": PASSWORD}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        ring[name] = client
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = _console(browser, url)
            alerts = page.locator("table.sessions").first
            expect(alerts).not_to_contain_text("launder")

            # 一退一抢: the holder cancels, the spare account books the freed slot for the
            # buyer seconds later.
            held = _book(ring["ring.holder"], 1, held_patient)
            assert held.status_code == 201, held.text
            assert held.json()["review"] is None, held.text
            pay = ring["ring.holder"].get(f"/api/v1/bookings/{held.json()['id']}/payment-screen")
            assert pay.status_code == 200 and pay.json()["cancel_token"], pay.text
            time.sleep(TOKEN_WAIT)
            cancelled = _post_solving(ring["ring.holder"],
                                      f"/api/v1/bookings/{held.json()['id']}/cancel", {},
                                      {pay.json()["token_header"]: pay.json()["cancel_token"]})
            assert cancelled.status_code == 200, cancelled.text
            bought = _book(ring["ring.spare"], 1, buyer)
            assert bought.status_code == 201, bought.text

            # The operator sees the alert arrive (the open-alert figure changes through
            # the server-sent events), and on the page the alert and its decisions.
            before = page.locator("#fig-open-alerts").inner_text()
            expect(page.locator("#fig-open-alerts")).not_to_have_text(before, timeout=20_000)
            page.reload()
            expect(alerts).to_contain_text("launder")
            expect(alerts).to_contain_text(f"账户 {holder}")
            decisions = page.locator("#decisions + table")
            expect(decisions).to_contain_text(f"账户 {holder}")
            expect(decisions).to_contain_text(f"账户 {spare}")
            # The monitor's reason, in the page's language.
            expect(decisions).to_contain_text("一退一抢")

            # The ring's next booking, a moment later (the guard rereads the decisions
            # within a second): proof of work asked and solved, then held for review, and
            # it cannot be paid.
            time.sleep(1.5)
            after = _book(ring["ring.holder"], 1, next_patient)
            assert after.status_code == 201, after.text
            assert after.json()["review"] == "pending", after.text
            booking_id = after.json()["id"]
            pay = ring["ring.holder"].get(f"/api/v1/bookings/{booking_id}/payment-screen")
            if pay.status_code == 200 and pay.json()["action_token"]:
                time.sleep(TOKEN_WAIT)
                paid = _post_solving(ring["ring.holder"], f"/api/v1/bookings/{booking_id}/pay",
                                     {"payer_account": "alipay:launder@pay.example"},
                                     {pay.json()["token_header"]: pay.json()["action_token"]})
                assert paid.status_code == 409 and paid.json()["code"] == "under_review", \
                    paid.text
            else:
                assert pay.status_code == 409, pay.text

            # The review queue on the console shows it, for the holder's account.
            page.reload()
            form = page.locator(f"form[action='/operator/console/reviews/{booking_id}']")
            expect(form).to_be_visible()
            expect(page.locator("tr", has=form)).to_contain_text(str(holder))
            shots = [pathlib.Path(os.environ["FAIRSLOT_SCREENSHOTS"]) / "console-launder.png"] \
                if os.environ.get("FAIRSLOT_SCREENSHOTS") else []
            for shot in shots:
                page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
            for client in ring.values():
                client.close()


def test_the_rate_charts_span_a_sensible_window_from_their_first_point(
        server: tuple[str, int], tmp_path: pathlib.Path) -> None:
    """With one point (the page just opened), the charts' time axis spans minutes up to
    now, not a year around it; the picture is written beside the test's files (and to
    ``FAIRSLOT_SCREENSHOTS`` if set) to look at."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with "
                    "`apt-get update && apt-get install -y chromium` (make test does)",
                    pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    url, _ = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = _console(browser, url, viewport={"width": 1100, "height": 900})
            for chart in ("#chart-rps", "#chart-bookings"):
                expect(page.locator(chart + " canvas")).to_have_count(1)
                expect(page.locator(chart)).to_have_attribute("data-x-max", re.compile(r"^\d"))
            shots = [tmp_path / "console-charts.png"]
            if os.environ.get("FAIRSLOT_SCREENSHOTS"):
                shots.append(pathlib.Path(os.environ["FAIRSLOT_SCREENSHOTS"])
                             / "console-charts.png")
            for shot in shots:
                page.locator("section.console-grid").screenshot(path=str(shot))
            now = time.time()
            for chart, least in (("#chart-rps", 300), ("#chart-bookings", 1800)):
                el = page.locator(chart)
                expect(el).to_have_attribute("data-x-max", re.compile(r"^\d"))
                low = float(el.get_attribute("data-x-min") or "nan")
                high = float(el.get_attribute("data-x-max") or "nan")
                assert least <= high - low <= 3600, (chart, low, high)
                assert abs(high - now) < 120, (chart, high, now)
        finally:
            browser.close()

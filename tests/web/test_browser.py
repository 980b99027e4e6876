"""A real browser books through the pages: Debian's Chromium, driven by Playwright, against
a real uvicorn server on a loopback port with a small SQLite hospital.

A missing Chromium is a failure with the fix in its message, never a skip: a run that
silently left the browser out would prove nothing about the pages."""

from __future__ import annotations

import os
import pathlib
import textwrap
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.web.browser_server import serve

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]

# Runs in the server's own process before uvicorn starts: migrate, seed a hospital whose
# sessions are already released, one patient account with one family member.
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
    hospital = platform.run(catalog.create_hospital, "BRW", "浏览器测试医院")
    department = platform.run(catalog.create_department, hospital.id, "CARD", "心内科")
    doctor = platform.run(catalog.create_doctor, department.id, "陈静", "主任医师", "冠心病")
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    platform.run(catalog.schedule_sessions, doctor.id, [today + dt.timedelta(days=3)],
                              [Period.MORNING], 12, 5000, release_days_before=5)
    people = make_residents(random.Random(11), 2)
    with platform.uow() as uow:
        for person in people:
            platform.verifier.register(uow, person)
        uow.commit()
    account = platform.run(accounts.create_user, "browser.patient", {password!r}, Role.PATIENT,
                                   "13912345678", phone_verified=True)
    platform.run(accounts.add_patient, account, people[0].id_number, people[0].name, None,
                         RequestContext(ip="127.0.0.1"))
""")


@pytest.fixture(params=["normal", "under_attack"])
def level(request: pytest.FixtureRequest) -> str:
    """The guard level the server starts at: under attack, every log-in and booking needs
    a proof of work, which the page's own solver must do in the browser."""
    return str(request.param)


@pytest.fixture
def server(tmp_path: pathlib.Path, level: str) -> Iterator[str]:
    with serve(tmp_path, SEED, {"FAIRSLOT_GUARD_DEFAULT_LEVEL": level,
                                "FAIRSLOT_GUARD_POW_BASE_MAXNUMBER": "5000"}) as (url, _):
        yield url


def test_a_patient_books_a_slot_in_a_real_browser(server: str, level: str,
                                                  tmp_path: pathlib.Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with "
                    "`apt-get update && apt-get install -y chromium` (make test does)",
                    pytrace=False)
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
            page.goto(server + "/")
            page.get_by_role("link", name="心内科").click()
            page.get_by_role("link", name="陈静").click()
            expect(page.get_by_text("12 / 12")).to_be_visible()
            page.get_by_role("link", name="预约挂号").click()

            # Booking needs a log-in: the page sends us there and back.
            expect(page).to_have_url(f"{server}/login?next=%2Fsessions%2F1%2Fbook")
            page.get_by_label("用户名").fill("browser.patient")
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_role("button", name="登录").click()
            # Under attack the first try comes back with a challenge ("checking this
            # device…", no error); the page keeps the password, solves the proof of work
            # and sends the form again by itself.
            page.get_by_role("button", name="下一步").click(timeout=30_000)
            expect(page.get_by_role("heading", name="确认预约")).to_be_visible()
            page.wait_for_timeout(1600)  # a person reads the page; tokens have a minimum age
            page.get_by_role("button", name="确认预约").click()

            # Under attack the confirmation comes back challenged and resubmits itself once
            # the browser has solved the proof of work.
            expect(page.get_by_role("status")).to_contain_text("预约成功", timeout=30_000)
            booking = page.locator("article.booking").first
            expect(booking).to_contain_text("陈静")
            expect(booking).to_contain_text("待支付")
            page.screenshot(path=str(tmp_path / "my-bookings.png"), full_page=True)
            expect(page.locator("article.booking")).to_have_count(1)
        finally:
            browser.close()
    assert (tmp_path / "my-bookings.png").stat().st_size > 0
    mine = httpx.get(server + "/me", headers={"accept": "text/html"}, follow_redirects=False)
    assert mine.status_code == 303  # without the browser's cookie, nobody sees the bookings

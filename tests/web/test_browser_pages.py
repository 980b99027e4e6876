"""Every role's pages in Debian's Chromium (Playwright) against a real server: a patient's
journey in Chinese at 375 px and in English at desktop width, and axe-core (vendored in
tests/web/vendor, served from disk, never a CDN) on every page: no serious or critical
violation.

With FAIRSLOT_SCREENSHOTS=<folder>, the desktop journey also saves the screenshots that
docs/pages.md shows."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PASSWORD, TEST_SECRET, wait_until_serving
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, _free_port

pytestmark = pytest.mark.browser

AXE = pathlib.Path(__file__).parent / "vendor" / "axe.min.js"

# A hospital with a plain doctor (released sessions) and a draw doctor whose round takes
# entries now; a patient with a paid booking (for the QR code), staff of every role.
SEED = textwrap.dedent("""
    import datetime as dt, random
    from fairslot.bootstrap import bootstrap
    from fairslot.domain.accounts import Role
    from fairslot.domain.residents import make_residents
    from fairslot.domain.schedule import Period, ReleasePolicy
    from fairslot.services import accounts, booking, catalog, release
    from fairslot.services.context import RequestContext
    from fairslot.storage.migrate import upgrade

    platform = bootstrap()
    upgrade(platform.engine)
    ctx = RequestContext(ip="127.0.0.1")
    hospital = platform.run(catalog.create_hospital, "BRW", "浏览器测试医院")
    department = platform.run(catalog.create_department, hospital.id, "CARD", "心内科")
    plain = platform.run(catalog.create_doctor, department.id, "陈静", "主任医师", "冠心病")
    hot = platform.run(catalog.create_doctor, department.id, "周正", "主任医师", "心律失常",
                       release_policy=ReleasePolicy.DRAW, hot=True)
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    (released,) = platform.run(catalog.schedule_sessions, plain.id,
                               [today + dt.timedelta(days=1)], [Period.AFTERNOON], 12, 5000,
                               release_days_before=5)
    platform.run(catalog.schedule_sessions, plain.id, [today + dt.timedelta(days=3)],
                 [Period.MORNING], 12, 5000, release_days_before=5)
    platform.run(catalog.schedule_sessions, hot.id, [today + dt.timedelta(days=5)],
                 [Period.MORNING], 2, 30000, release_days_before=2)
    release.open_due_rounds(platform.units, platform.deps)
    people = make_residents(random.Random(11), 4)
    with platform.uow() as uow:
        for person in people:
            platform.verifier.register(uow, person)
        uow.commit()
    account = platform.run(accounts.create_user, "browser.patient", {password!r},
                           Role.PATIENT, "13912345678", phone_verified=True)
    patient = platform.run(accounts.add_patient, account, people[0].id_number,
                           people[0].name, None, ctx)
    platform.run(accounts.add_patient, account, people[1].id_number, people[1].name, None,
                 ctx)
    held = platform.run(booking.book, account, patient.id, released.id, ctx)
    platform.run(booking.pay, account, held.booking.id, "alipay:browser@example.com", ctx)
    for role in Role:
        if role is not Role.PATIENT:
            platform.run(accounts.create_user, "browser." + role.value, {password!r}, role)
    print(held.booking.id)
""")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with "
                    "`apt-get update && apt-get install -y chromium` (make test does)",
                    pytrace=False)
    tmp_path = tmp_path_factory.mktemp("browser-pages")
    port = _free_port()
    env = {**os.environ, "FAIRSLOT_SECRET_KEY": TEST_SECRET,
           "FAIRSLOT_DATABASE_URL": f"sqlite:///{tmp_path / 'fairslot.db'}",
           "FAIRSLOT_SCHEDULER": "false", "FAIRSLOT_GUARD_DEVICE_COOKIE_SECURE": "false",
           "FAIRSLOT_SESSION_COOKIE_SECURE": "false", "FAIRSLOT_DRAW_WINDOW_HOURS": "336",
           "FAIRSLOT_GUARD_TOKEN_MIN_AGE_SECONDS": "0.2",
           # One account visits every page in both languages within a minute or two: more
           # screens than a person opens (the limits are tested in tests/guard).
           "FAIRSLOT_GUARD_LIMITS": '{"screens": {"account": "300/minute", '
                                    '"device": "300/minute", "patient": "300/minute"}}',
           "FAIRSLOT_INVESTIGATIONS_DIR": str(tmp_path / "investigations"),
           "PYTHONPATH": str(ROOT / "src")}
    env.pop("FAIRSLOT_REDIS_URL", None)
    seed = subprocess.run([sys.executable, "-c", SEED.format(password=PASSWORD)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert seed.returncode == 0, seed.stderr
    booking_id = int(seed.stdout.strip().splitlines()[-1])
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "fairslot.web.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, seconds=30, log=tmp_path / "server.log")
        yield {"url": url, "booking": booking_id, "tmp": tmp_path}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _context(browser: Any, width: int, lang: str | None = None, url: str = "") -> Any:
    # axe is injected as a script of the test's own, which the pages' CSP would refuse.
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  locale="zh-CN", bypass_csp=True)
    if lang:
        host = url.split("//", 1)[1].split(":", 1)[0]
        context.add_cookies([{"name": "fs_lang", "value": lang, "domain": host,
                              "path": "/"}])
    return context


def _log_in(page: Any, url: str, username: str, *, english: bool = False) -> None:
    page.goto(url + "/login")
    page.get_by_label("Username" if english else "用户名").fill(username)
    page.get_by_label("Password" if english else "密码").fill(PASSWORD)
    page.get_by_role("button", name="Log in" if english else "登录").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()


def _axe(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return {rules: r.passes.length + r.violations.length + r.incomplete.length,
                version: axe.version,
                violations: r.violations.map(v => ({id: v.id, impact: v.impact,
                    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' ' +
                                                   (n.failureSummary || '').slice(0, 160))}))};
    }""")
    assert result["version"].startswith("4.") and result["rules"] > 20, result
    return [f"{v['id']} ({v['impact']}): {v['nodes']}" for v in result["violations"]
            if v["impact"] in ("serious", "critical")]


def _no_sideways_scroll(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{page.url} scrolls sideways by {overflow}px"


PAGES = {
    None: ["/", "/departments/1", "/doctors/1", "/doctors/2", "/login", "/register",
           "/nowhere", "/rounds/1", "/api/v1/docs"],
    "browser.patient": ["/me", "/sessions/1/book", "/sessions/1/confirm?patient_id=1",
                        "/rounds/1", "/rounds/1/enter"],
    "browser.registration": ["/desk", "/desk?doctor=1", "/desk/receipt/{booking}"],
    "browser.operator": ["/operator", "/operator?date=bogus", "/operator/policies",
                         "/operator/proposals", "/operator/guard"],
    "browser.admin": ["/admin/users"],
    "browser.investigator": ["/investigations"],
}


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_axe_finds_no_serious_or_critical_violation_on_any_page(
        server: dict[str, Any], browser: Any, lang: str) -> None:
    url = server["url"]
    problems: dict[str, list[str]] = {}
    for who, paths in PAGES.items():
        context = _context(browser, 1280, lang, url)
        page = context.new_page()
        try:
            if who:
                _log_in(page, url, who, english=lang == "en")
            for path in paths:
                page.goto(url + path.format(booking=server["booking"]))
                if path == "/api/v1/docs":
                    page.wait_for_selector(".swagger-ui .info", timeout=15_000)
                    continue  # Swagger UI's own markup is not ours to fix
                found = _axe(page)
                if found:
                    problems[f"{who or 'visitor'} {path}"] = found
        finally:
            context.close()
    assert problems == {}


@pytest.mark.parametrize(("lang", "width"), [("zh_CN", 375), ("en", 1280)])
def test_a_patient_journey_in_each_language(server: dict[str, Any], browser: Any,
                                             lang: str, width: int) -> None:
    from playwright.sync_api import expect

    url = server["url"]
    english = lang == "en"
    shots = os.environ.get("FAIRSLOT_SCREENSHOTS") if width > 1000 else None

    def shot(name: str, page: Any) -> None:
        if shots:
            pathlib.Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(pathlib.Path(shots) / f"{name}.png"), full_page=True)

    def t(zh: str, en: str) -> str:
        return en if english else zh

    context = _context(browser, width, lang, url)
    page = context.new_page()
    try:
        page.goto(url + "/")
        expect(page.locator("html")).to_have_attribute("lang", "en" if english else "zh-CN")
        _no_sideways_scroll(page)
        shot("home", page)
        _log_in(page, url, "browser.patient", english=english)
        shot("me", page)
        # The QR code of the paid booking, for the desk.
        page.get_by_text(t("签到二维码", "Check-in QR code")).first.click()
        expect(page.locator("details.qr svg[role=img]").first).to_be_visible()
        _no_sideways_scroll(page)
        # The draw doctor: enter the open round from the doctor's page.
        page.goto(url + "/departments/1")
        page.get_by_role("link", name=re.compile("周正")).click()
        shot("doctor", page)
        page.get_by_role("link", name=t("抽签登记", "Enter the draw")).click()
        page.wait_for_timeout(400)  # a person reads the page; tokens have a minimum age
        page.get_by_role("button", name=t("抽签登记", "Enter the draw")).click()
        expect(page.get_by_role("status")).to_contain_text(
            t("已登记抽签", "Entered"), timeout=20_000)
        page.get_by_role("link", name=re.compile("周正")).first.click()
        expect(page.get_by_text(t("等待抽签", "Awaiting the draw"))).to_be_visible()
        expect(page.get_by_text(re.compile(t(r"约 \d+%", r"about \d+ in 100")))).to_be_visible()
        _no_sideways_scroll(page)
        shot("round", page)
        # Withdraw, so the other language's run can enter again.
        page.get_by_role("button", name=t("撤回登记", "Withdraw")).click()
        expect(page.get_by_role("status")).to_contain_text(t("已撤回登记", "Entry withdrawn"))
        # Book a released session for the second family member and pay.
        page.goto(url + "/doctors/1")
        page.get_by_role("link", name=t("预约挂号", "Book"), exact=True).first.click()
        page.locator("input[type=radio][name=patient_id]").nth(1).check()
        page.get_by_role("button", name=t("下一步", "Next")).click()
        shot("confirm", page)
        page.wait_for_timeout(400)
        page.get_by_role("button", name=t("确认预约", "Confirm booking")).click()
        expect(page.get_by_role("status")).to_contain_text(t("预约成功", "Booked"),
                                                           timeout=20_000)
        booked = page.locator("#" + page.url.rsplit("#", 1)[1])
        expect(booked).to_contain_text(t("待支付", "Awaiting payment"))
        # The deadline counts down (15 minutes from now).
        expect(booked.locator("[data-countdown]")).to_contain_text(
            re.compile(r"\((14|15):\d\d " + t("剩余", "left") + r"\)"))
        booked.get_by_label(t("付款账户", "Payer account")).fill("wechat:wxid_browser")
        page.wait_for_timeout(400)
        booked.get_by_role("button", name=re.compile(t("支付", "Pay"))).click()
        expect(page.get_by_role("status")).to_contain_text(t("已支付", "Paid"),
                                                           timeout=20_000)
        booked = page.locator("#" + page.url.rsplit("#", 1)[1])
        expect(booked.locator("details.qr")).to_have_count(1)
        _no_sideways_scroll(page)
        # Cancel it again (days before the visit, so no offence), so both runs start alike.
        booked.get_by_role("button", name=t("取消预约并退款", "Cancel and refund")).click()
        expect(page.get_by_role("status")).to_contain_text(t("已取消预约", "Booking cancelled"),
                                                           timeout=20_000)
    except Exception:
        page.screenshot(path=str(server["tmp"] / f"failed-{lang}.png"), full_page=True)
        raise
    finally:
        context.close()
    if shots:
        _staff_screenshots(browser, url, server["booking"], shot)


def _staff_screenshots(browser: Any, url: str, booking_id: int, shot: Any) -> None:
    for who, path, name in (("browser.registration", "/desk", "desk"),
                            ("browser.registration", f"/desk/receipt/{booking_id}", "receipt"),
                            ("browser.operator", "/operator/policies", "policies"),
                            ("browser.operator", "/operator/guard", "guard"),
                            ("browser.admin", "/admin/users", "users"),
                            ("browser.investigator", "/investigations", "investigations")):
        context = _context(browser, 1280, "zh_CN", url)
        page = context.new_page()
        try:
            _log_in(page, url, who)
            page.goto(url + path)
            shot(name, page)
        finally:
            context.close()

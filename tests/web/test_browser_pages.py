"""Every role's pages in Debian's Chromium (Playwright) against a real server, one server
and one browser for the module: a patient's journey (book, pay, the QR code, a draw's
odds), a new patient's (register, verify the phone and add a relative with codes from the
development outbox, enter a draw), a clerk's check-in, an operator's release policy and an
investigator's report, each in Chinese and in English, at 375 px and at desktop width; and
axe-core (vendored in tests/web/vendor, served from disk, never a CDN) on every page: no
serious or critical violation.

With FAIRSLOT_SCREENSHOTS=<folder>, the Chinese axe run also saves the screenshots that
docs/pages.md shows."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PASSWORD
from tests.web.browser_server import serve, server_env
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

# One server and one browser for the module, also under xdist.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-pages")]

AXE = pathlib.Path(__file__).parent / "vendor" / "axe.min.js"

# A hospital with a plain doctor (released sessions) and a draw doctor whose round takes
# entries now; a patient with a paid booking (for the QR code), staff of every role.
SEED = textwrap.dedent("""
    import datetime as dt, json, random
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
    # Two days ahead, so cancelling it is never a late cancellation (24 h) whatever the
    # time of day the suite runs.
    (released,) = platform.run(catalog.schedule_sessions, plain.id,
                               [today + dt.timedelta(days=2)], [Period.AFTERNOON], 12, 5000,
                               release_days_before=5)
    platform.run(catalog.schedule_sessions, plain.id, [today + dt.timedelta(days=3)],
                 [Period.MORNING], 12, 5000, release_days_before=5)
    platform.run(catalog.schedule_sessions, hot.id, [today + dt.timedelta(days=5)],
                 [Period.MORNING], 2, 30000, release_days_before=2)
    release.open_due_rounds(platform.units, platform.deps)
    people = make_residents(random.Random(11), 5)
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
    # A doctor whose session starts within the hour (check-in is open whatever the time of
    # day), with two paid bookings of another family for the desk; a doctor for the
    # operator to change.
    near_doctor = platform.run(catalog.create_doctor, department.id, "林川", "副主任医师",
                               "高血压")
    platform.run(catalog.create_doctor, department.id, "吴敏", "主治医师", "心力衰竭")
    # On the (Beijing) day the session starts: in the last hour before midnight that is
    # tomorrow, and the desk looks sessions up by their day.
    now = platform.clock.now()
    near_day = (now + dt.timedelta(hours=1)).astimezone(platform.settings.zone).date()
    (near,) = platform.run(catalog.schedule_sessions, near_doctor.id, [near_day],
                           [Period.MORNING], 6, 5000, release_days_before=5)
    with platform.uow() as uow:
        session = uow.schedule.session(near.id)
        session.starts_at = now + dt.timedelta(hours=1)
        session.ends_at = now + dt.timedelta(hours=5)
        session.release_at = now - dt.timedelta(days=1)
        uow.commit()
    family = platform.run(accounts.create_user, "browser.family", {password!r}, Role.PATIENT,
                          "13912345679", phone_verified=True)
    desk = []
    for person in people[2:4]:
        member = platform.run(accounts.add_patient, family, person.id_number, person.name,
                              None, ctx)
        won = platform.run(booking.book, family, member.id, near.id, ctx)
        platform.run(booking.pay, family, won.booking.id, "alipay:family@example.com", ctx)
        desk.append([person.id_number, person.name, won.booking.id])
    # Identities registered to a family's phone, for new accounts to add with consent.
    platform.run(accounts.add_patient, family, people[4].id_number, people[4].name, None, ctx)
    # One more draw doctor per language for the new patient's journey: rounds of their own
    # that the journey's draw (clock advanced, in another process) runs one at a time.
    neur = platform.run(catalog.create_department, hospital.id, "NEUR", "神经内科")
    lucky = {{}}
    for n, lang in enumerate(("zh_CN", "en")):
        doc = platform.run(catalog.create_doctor, neur.id, ("孙立", "何平")[n], "主任医师",
                           "癫痫", release_policy=ReleasePolicy.DRAW, hot=True)
        (late,) = platform.run(catalog.schedule_sessions, doc.id,
                               [today + dt.timedelta(days=2 + n)], [Period.AFTERNOON], 2,
                               30000, release_days_before=1)
        release.open_due_rounds(platform.units, platform.deps)
        with platform.uow() as uow:
            rid = uow.rounds.round_of_session(late.id)
            lucky[lang] = [doc.id, rid, uow.rounds.get(rid).closes_at.isoformat()]
    # The shared list, for the officer's page: this hospital's key, an epoch key and one
    # entry published by the investigator through the officer's service.
    from fairslot.consortium import EntryKind, RingRole, SubjectType
    from fairslot.consortium.pseudonyms import EpochKey
    from fairslot.services import shared_list
    platform.consortium.create_key("brw", "Browser Hospital", actor="seed")
    platform.consortium.store.add_epoch(EpochKey.new(1), platform.clock.now(), "seed")
    platform.consortium.refresh()
    with platform.uow() as uow:
        officer = uow.accounts.by_username("browser.investigator")
    platform.run(shared_list.publish, officer, kind=EntryKind.RING_MEMBER,
                 role=RingRole.PAYMENT_HUB, severity=3, days=180, source="case 2026-60",
                 identifiers=[(SubjectType.DEVICE, "browser-device-1")])
    print(json.dumps({{"booking": held.booking.id, "desk": desk, "lucky": lucky,
                      "relatives": [[people[1].id_number, people[1].name, "13912345678"],
                                    [people[4].id_number, people[4].name, "13912345679"]]}}))
""")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install it with "
                    "`apt-get update && apt-get install -y chromium` (make test does)",
                    pytrace=False)
    tmp_path = tmp_path_factory.mktemp("browser-pages")
    settings = {
        "FAIRSLOT_DRAW_WINDOW_HOURS": "336", "FAIRSLOT_GUARD_TOKEN_MIN_AGE_SECONDS": "0.2",
        # One account visits every page in both languages within a minute or two: more
        # screens than a person opens (the limits are tested in tests/guard).
        "FAIRSLOT_GUARD_LIMITS": '{"screens": {"account": "300/minute", '
                                 '"device": "300/minute", "patient": "300/minute"}}',
        # Playwright confirms 0.4 s after a screen, faster than a person: the monitor's
        # fast_action alert would ask it for proofs of work (tested in tests/monitoring).
        "FAIRSLOT_MONITOR_PERSON_ACTION_SECONDS": "0.1",
        "FAIRSLOT_INVESTIGATIONS_DIR": str(tmp_path / "investigations"),
        "FAIRSLOT_DEV_OUTBOX_PAGE": "true",
        # The refusal pages' visitor comes "through a proxy" from an address of its own,
        # which a decision blocks (nobody else sends X-Forwarded-For).
        "FAIRSLOT_TRUSTED_PROXIES": '["127.0.0.1/32"]'}
    with serve(tmp_path, SEED, settings) as (url, printed):
        seeded = json.loads(printed.strip().splitlines()[-1])
        yield {"url": url, "tmp": tmp_path, "env": server_env(tmp_path, settings), **seeded}


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
           "/nowhere", "/rounds/1", "/dev/outbox", "/api/v1/docs"],
    "browser.patient": ["/me", "/me/phone", "/me/identity", "/me/inbox", "/sessions/1/book",
                        "/sessions/1/confirm?patient_id=1", "/rounds/1", "/rounds/1/enter"],
    "browser.registration": ["/desk", "/desk?doctor=1", "/desk/receipt/{booking}"],
    "browser.operator": ["/operator", "/operator?date=bogus", "/operator/policies",
                         "/operator/proposals", "/operator/guard", "/operator/console",
                         "/operator/identity-claims", "/consortium"],
    "browser.admin": ["/admin/users"],
    "browser.investigator": ["/investigations", "/consortium"],
}
# The pages docs/pages.md shows, saved (in Chinese, at desktop width) by the axe run when
# FAIRSLOT_SCREENSHOTS names a folder.
SCREENSHOTS = {(None, "/"): "home", ("browser.patient", "/me"): "me",
               (None, "/doctors/2"): "doctor", ("browser.patient", "/rounds/1"): "round",
               ("browser.patient", "/sessions/1/confirm?patient_id=1"): "confirm",
               ("browser.patient", "/me/phone"): "phone", (None, "/dev/outbox"): "outbox",
               ("browser.registration", "/desk"): "desk",
               ("browser.registration", "/desk/receipt/{booking}"): "receipt",
               ("browser.operator", "/operator/policies"): "policies",
               ("browser.operator", "/operator/guard"): "guard",
               ("browser.operator", "/operator/console"): "console",
               ("browser.admin", "/admin/users"): "users",
               ("browser.investigator", "/investigations"): "investigations",
               ("browser.investigator", "/consortium"): "consortium"}


@pytest.mark.parametrize(("lang", "width"), [("zh_CN", 375), ("en", 1280)])
def test_a_patient_journey_in_each_language(server: dict[str, Any], browser: Any,
                                             lang: str, width: int) -> None:
    from playwright.sync_api import expect

    url = server["url"]
    english = lang == "en"
    def t(zh: str, en: str) -> str:
        return en if english else zh

    with _journey(server, browser, width, lang, f"{lang}") as page:
        page.goto(url + "/")
        expect(page.locator("html")).to_have_attribute("lang", "en" if english else "zh-CN")
        _no_sideways_scroll(page)
        _log_in(page, url, "browser.patient", english=english)
        # The QR code of the paid booking, for the desk.
        page.get_by_text(t("签到二维码", "Check-in QR code")).first.click()
        expect(page.locator("details.qr svg[role=img]").first).to_be_visible()
        _no_sideways_scroll(page)
        # The draw doctor: enter the open round from the doctor's page.
        page.goto(url + "/departments/1")
        page.get_by_role("link", name=re.compile("周正")).click()
        page.get_by_role("link", name=t("抽签登记", "Enter the draw")).click()
        page.wait_for_timeout(400)  # a person reads the page; tokens have a minimum age
        page.get_by_role("button", name=t("抽签登记", "Enter the draw")).click()
        expect(page.get_by_role("status")).to_contain_text(
            t("已登记抽签", "Entered"), timeout=20_000)
        page.get_by_role("link", name=re.compile("周正")).first.click()
        expect(page.get_by_text(t("等待抽签", "Awaiting the draw"))).to_be_visible()
        expect(page.get_by_text(re.compile(t(r"约 \d+%", r"about \d+ in 100")))).to_be_visible()
        _no_sideways_scroll(page)
        # Withdraw, so the other language's run can enter again.
        page.get_by_role("button", name=t("撤回登记", "Withdraw")).click()
        expect(page.get_by_role("status")).to_contain_text(t("已撤回登记", "Entry withdrawn"))
        # Book a released session for the second family member and pay.
        page.goto(url + "/doctors/1")
        page.get_by_role("link", name=t("预约挂号", "Book"), exact=True).first.click()
        page.locator("input[type=radio][name=patient_id]").nth(1).check()
        page.get_by_role("button", name=t("下一步", "Next")).click()
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
        page.wait_for_timeout(400)  # the cancel token came with this page: minimum age
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        booked.get_by_role("button", name=t("取消预约并退款", "Cancel and refund")).click()
        expect(page.get_by_role("status")).to_contain_text(t("已取消预约", "Booking cancelled"),
                                                           timeout=20_000)
        # The browser asked first, in the page's language.
        assert asked and t("取消", "Cancel") in asked[0], asked


# The role journeys: each runs once in Chinese and once in English, one of them at 375 px
# and the other at desktop width (which language gets the phone's width alternates).
JOURNEYS = [("zh_CN", 375), ("en", 1280)]
SWAPPED = [("zh_CN", 1280), ("en", 375)]


def _text(lang: str) -> Any:
    def t(zh: str, en: str) -> str:
        return en if lang == "en" else zh
    return t


def _failed(server: dict[str, Any], page: Any, name: str) -> None:
    page.screenshot(path=str(server["tmp"] / f"failed-{name}.png"), full_page=True)


@contextlib.contextmanager
def _journey(server: dict[str, Any], browser: Any, width: int, lang: str,
             name: str) -> Iterator[Any]:
    """A page of a fresh browser context in ``lang`` at ``width``; if the journey fails, a
    screenshot (failed-NAME.png) beside the server's database."""
    context = _context(browser, width, lang, server["url"])
    page = context.new_page()
    try:
        yield page
    except Exception:
        _failed(server, page, name)
        raise
    finally:
        context.close()


def _code_from_outbox(page: Any, url: str, phone: str) -> str:
    """The newest one-time code the development outbox holds for ``phone``."""
    page.goto(f"{url}/dev/outbox?phone={phone}")
    newest = page.locator("main li").first.inner_text()
    found = re.search(r"\b(\d{6})\b", newest)
    assert found, newest
    return found.group(1)


_DRAW = textwrap.dedent("""
    import datetime as dt, sys
    from fairslot.bootstrap import bootstrap
    from fairslot.clock import FixedClock
    from fairslot.services import release

    when = dt.datetime.fromisoformat(sys.argv[2]) + dt.timedelta(minutes=2)
    platform = bootstrap(clock=FixedClock(when))
    round_id = int(sys.argv[1])
    platform.run(release.freeze_round, round_id)
    assert platform.run(release.draw_round, round_id), "not drawn"
""")


def _draw_at(server: dict[str, Any], round_id: int, closes: str) -> None:
    """Run one round's freeze and draw as the scheduler would two minutes after its close
    (its beacon out), in a process of its own on the server's database."""
    done = subprocess.run([sys.executable, "-c", _DRAW, str(round_id), closes],
                          env=server["env"], cwd=server["tmp"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("lang", "width"), JOURNEYS)
def test_a_new_patient_registers_adds_a_relative_with_consent_and_enters_a_draw(
        server: dict[str, Any], browser: Any, lang: str, width: int) -> None:
    from playwright.sync_api import expect

    url, t = server["url"], _text(lang)
    relative_id, relative_name, holder = server["relatives"][JOURNEYS.index((lang, width))]
    username, phone = f"new.{lang.lower()}", f"1370000{width:04d}"
    with _journey(server, browser, width, lang, f"register-{lang}") as page:
        page.goto(url + "/register")
        page.get_by_label(t("用户名", "Username")).fill(username)
        page.get_by_label(t("手机号", "Mobile phone")).fill(phone)
        page.get_by_label(t("密码", "Password")).fill(PASSWORD)
        page.get_by_role("button", name=t("注册", "Register")).click()
        # A new account verifies its phone first, with the code the outbox got.
        expect(page).to_have_url(re.compile(r"/me/phone"))
        code = _code_from_outbox(page, url, phone)
        page.goto(url + "/me/phone")
        page.get_by_label(t("验证码", "Verification code")).fill(code)
        page.get_by_role("button", name=t("验证", "Verify"), exact=True).click()
        expect(page.get_by_role("status")).to_contain_text(t("手机号已验证", "verified"))
        _no_sideways_scroll(page)
        # The relative's identity is registered to another family's phone: adding them
        # sends that phone a code, and the typed fields survive the refusal.
        page.goto(url + "/me")
        form = page.locator("form[action='/me/patients']")
        form.get_by_label(t("姓名", "Name")).fill(relative_name)
        form.get_by_label(t("身份证号", "Resident ID number")).fill(relative_id)
        form.get_by_role("button", name=t("添加", "Add")).click()
        expect(page.get_by_role("alert")).to_be_visible()
        expect(page.locator("#p-id")).to_have_value(relative_id)
        consent = _code_from_outbox(page, url, holder)
        page.goto(url + "/me")
        form = page.locator("form[action='/me/patients']")
        form.get_by_label(t("姓名", "Name")).fill(relative_name)
        form.get_by_label(t("身份证号", "Resident ID number")).fill(relative_id)
        form.get_by_label(t("同意码", "Consent code")).fill(consent)
        form.get_by_role("button", name=t("添加", "Add")).click()
        expect(page.get_by_role("status")).to_contain_text(t("已添加就诊人", "Patient added"))
        _no_sideways_scroll(page)
        # Enter the draw doctor's open round and read the odds.
        page.goto(url + "/doctors/2")
        page.get_by_role("link", name=t("抽签登记", "Enter the draw")).click()
        page.wait_for_timeout(400)  # a person reads the page; tokens have a minimum age
        page.get_by_role("button", name=t("抽签登记", "Enter the draw")).click()
        expect(page.get_by_role("status")).to_contain_text(
            t("已登记抽签", "Entered"), timeout=20_000)
        page.get_by_role("link", name=re.compile("周正")).first.click()
        expect(page.get_by_text(re.compile(t(r"约 \d+%", r"about \d+ in 100")))
               ).to_be_visible()
        _no_sideways_scroll(page)
        # Withdraw, so the patient journey finds the round's odds as they were.
        page.get_by_role("button", name=t("撤回登记", "Withdraw")).click()
        expect(page.get_by_role("status")).to_contain_text(t("已撤回登记", "Entry withdrawn"))
        # A round of its own for this journey: enter it, then the draw runs (the clock
        # advanced past its close and beacon), the win is paid, its QR code and the message.
        doctor_id, round_id, closes = server["lucky"][lang]
        page.goto(f"{url}/doctors/{doctor_id}")
        page.get_by_role("link", name=t("抽签登记", "Enter the draw")).click()
        page.wait_for_timeout(400)
        page.get_by_role("button", name=t("抽签登记", "Enter the draw")).click()
        expect(page.get_by_role("status")).to_contain_text(
            t("已登记抽签", "Entered"), timeout=20_000)
        _draw_at(server, round_id, closes)
        page.goto(url + "/me")
        won = page.locator("article.booking.status-held").first
        expect(won).to_contain_text(t("待支付", "Awaiting payment"))
        won.get_by_label(t("付款账户", "Payer account")).fill("alipay:new@example.com")
        page.wait_for_timeout(400)
        won.get_by_role("button", name=re.compile(t("支付", "Pay"))).click()
        expect(page.get_by_role("status")).to_contain_text(t("已支付", "Paid"),
                                                           timeout=20_000)
        paid = page.locator("#" + page.url.rsplit("#", 1)[1])
        paid.locator("details.qr summary").click()
        expect(paid.locator("details.qr svg[role=img]")).to_be_visible()
        page.get_by_role("link", name=t("消息", "Messages")).click()
        # In the language of the page the account registered on.
        expect(page.get_by_text(t("抽签结果：中签", "Draw result: you won"))).to_be_visible()
        _no_sideways_scroll(page)


@pytest.mark.parametrize(("lang", "width"), SWAPPED)
def test_a_clerk_finds_a_patient_by_id_number_and_checks_them_in(
        server: dict[str, Any], browser: Any, lang: str, width: int) -> None:
    from playwright.sync_api import expect

    url, t = server["url"], _text(lang)
    id_number, name, booking_id = server["desk"][SWAPPED.index((lang, width))]
    with _journey(server, browser, width, lang, f"desk-{lang}") as page:
        _log_in(page, url, "browser.registration", english=lang == "en")
        page.goto(url + "/desk")
        page.get_by_label(t("身份证号、预约号或二维码", "ID number, booking number or QR code")
                          ).fill(id_number)
        page.get_by_role("button", name=t("查找", "Find"), exact=True).click()
        found = page.locator("article.booking").filter(has_text=str(booking_id))
        expect(found).to_contain_text(t("已支付", "Paid"))
        expect(found).to_contain_text("林川")
        # The typed ID number is never echoed back into the page.
        assert id_number not in page.content()
        _no_sideways_scroll(page)
        check_in = page.locator("#check-in")
        check_in.get_by_label(t("预约号或二维码", "Booking number or QR code")
                              ).fill(str(booking_id))
        check_in.get_by_label(t("身份证号", "ID number"), exact=True).fill(id_number)
        check_in.get_by_label(t("姓名", "Name"), exact=True).fill(name)
        check_in.get_by_role("button", name=t("取号", "Check in")).click()
        expect(page.get_by_role("status")).to_contain_text(t("已取号", "Checked in"))
        page.goto(url + "/desk")
        page.get_by_label(t("身份证号、预约号或二维码", "ID number, booking number or QR code")
                          ).fill(str(booking_id))
        page.get_by_role("button", name=t("查找", "Find"), exact=True).click()
        expect(page.locator("article.booking").filter(has_text=str(booking_id))
               ).to_contain_text(t("已取号", "Checked in"))


@pytest.mark.parametrize(("lang", "width"), JOURNEYS)
def test_an_operator_changes_a_doctors_release_policy(
        server: dict[str, Any], browser: Any, lang: str, width: int) -> None:
    from playwright.sync_api import expect

    url, t = server["url"], _text(lang)
    with _journey(server, browser, width, lang, f"policy-{lang}") as page:
        _log_in(page, url, "browser.operator", english=lang == "en")
        page.get_by_role("link", name=t("放号方式", "Release policies")).click()
        policy = page.get_by_label(re.compile("吴敏"))
        now = policy.input_value()
        wanted = "draw" if now != "draw" else "fcfs"
        policy.select_option(wanted)
        asked: list[str] = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        policy.locator("xpath=ancestor::form").get_by_role(
            "button", name=t("保存", "Save")).click()
        expect(page.get_by_role("status")).to_contain_text(
            t("放号方式已保存", "Release policy saved"))
        expect(page.get_by_label(re.compile("吴敏"))).to_have_value(wanted)
        # The browser asked first, naming the doctor, in the page's language.
        assert asked and "吴敏" in asked[0] and t("放号方式", "release policy") in asked[0], asked
        _no_sideways_scroll(page)


@pytest.fixture(scope="module")
def export_zip(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A small synthetic records export (docs/records-format.md), zipped for the upload."""
    import zipfile

    from fairslot.investigation.synth import write_synthetic

    folder = tmp_path_factory.mktemp("export")
    write_synthetic(folder / "export", seed=3, scale=0.05)
    archive = folder / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((folder / "export").iterdir()):
            if path.name != "labels.csv":
                zf.write(path, f"export/{path.name}")
    return archive


@pytest.mark.parametrize(("lang", "width"), SWAPPED)
def test_an_investigator_runs_an_investigation_and_reads_its_report(
        server: dict[str, Any], browser: Any, export_zip: pathlib.Path, lang: str,
        width: int) -> None:
    from playwright.sync_api import expect

    url, t = server["url"], _text(lang)
    with _journey(server, browser, width, lang, f"investigation-{lang}") as page:
        _log_in(page, url, "browser.investigator", english=lang == "en")
        page.get_by_role("link", name=t("调查", "Investigations")).first.click()
        page.get_by_label(t("导出文件（.zip）", "Export (.zip)")).set_input_files(export_zip)
        page.get_by_role("button", name=t("开始调查", "Start the investigation")).click()
        # The job runs in the background; its page refreshes itself until it is done.
        expect(page).to_have_url(re.compile(r"/investigations/[\w-]+$"))
        report = page.get_by_role("link", name=t("查看报告", "Read the report"))
        expect(report).to_be_visible(timeout=60_000)
        _no_sideways_scroll(page)
        report.click()
        expect(page).to_have_url(re.compile(r"/report\.html$"))
        expect(page.locator("h1").first).to_be_visible()
        assert "suspect" in page.content().lower() or "嫌疑" in page.content()


# Last in the module: by now the journeys have filled the outbox, the rounds and the runs.
RUN = "main a[href^='/investigations/']"


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_axe_finds_no_serious_or_critical_violation_on_any_page(
        server: dict[str, Any], browser: Any, lang: str) -> None:
    url = server["url"]
    shots = pathlib.Path(os.environ["FAIRSLOT_SCREENSHOTS"]) \
        if os.environ.get("FAIRSLOT_SCREENSHOTS") else None
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
                name = SCREENSHOTS.get((who, path))
                if shots and name and lang == "zh_CN":
                    shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
                if path == "/investigations" and page.locator(RUN).count():
                    # After the investigator's journey, a finished run's page too.
                    page.locator(RUN).first.click()
                    found += _axe(page)
                if found:
                    problems[f"{who or 'visitor'} {path}"] = found
        finally:
            context.close()
    assert problems == {}


_ALERTS = textwrap.dedent("""
    import datetime as dt, sys
    from fairslot.config import get_settings
    from fairslot.monitoring.sql_store import SqlMonitorStore
    from fairslot.storage.database import make_engine
    from fairslot.monitoring.alerts import Sighting
    from fairslot.monitoring.scenarios import Entity

    now = dt.datetime.now(dt.UTC)
    seen = now.timestamp()
    SqlMonitorStore(make_engine(get_settings().database_url)).record([
        Sighting("guard_refusals", Entity("ip", "198.51.100.7"), "high",
                 "ip 198.51.100.7 refused 40 times by the guard in 300 s (last: rate_limited)",
                 {"refusals": 40, "window_s": 300.0, "threshold": 20,
                  "reason": "rate_limited", "group": "browsing"}, [], [], [], seen, seen),
        Sighting("payer_fanout", Entity("payer", "alipay:h:9f3a"), "medium",
                 "payer alipay:h:9f3a acted for 9 distinct patients in 7 days (threshold 5)",
                 {"patients": 9, "window_s": 604800.0, "threshold": 5, "accounts": 3},
                 [], [], [], seen, seen)], now)
""")


def test_a_blocked_visitor_and_the_consoles_alerts_read_in_each_language(
        server: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    url = server["url"]
    done = subprocess.run([sys.executable, "-c", _ALERTS], env=server["env"],
                          cwd=server["tmp"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    operator = _context(browser, 375, None, url)
    try:
        page = operator.new_page()
        _log_in(page, url, "browser.operator")
        token = page.request.post(url + "/api/v1/auth/login", data={
            "username": "browser.operator", "password": PASSWORD}).json()["token"]
        made = page.request.post(url + "/api/v1/monitor/decisions", headers={
            "authorization": f"Bearer {token}"}, data={
            "action": "block", "entity": "ip:198.51.100.7", "lifetime": "2h",
            "reason": "refusal page test"})
        assert made.status == 201, made.text()
        decision = made.json()["id"]
        page.goto(url + "/operator/console")
        alerts = page.locator("table.sessions").first
        expect(alerts).to_contain_text("198.51.100.7")
        expect(alerts).to_contain_text("被访问防护拒绝 40 次")
        _no_sideways_scroll(page)
        assert _axe(page) == []
        for lang, words in (("zh_CN", ("访问已暂停", "咨询台")),
                            ("en", ("Access suspended", "help desk"))):
            visitor = _context(browser, 375, lang, url)
            try:
                visitor.set_extra_http_headers({"X-Forwarded-For": "198.51.100.7"})
                blocked = visitor.new_page()
                response = blocked.goto(url + "/departments/1")
                assert response is not None and response.status == 403
                assert response.headers.get("retry-after")
                expect(blocked.locator("h1")).to_have_text(words[0])
                expect(blocked.get_by_role("alert")).to_contain_text(words[1])
                _no_sideways_scroll(blocked)
                assert _axe(blocked) == []
                if os.environ.get("FAIRSLOT_SHOTS"):
                    blocked.screenshot(path=os.path.join(os.environ["FAIRSLOT_SHOTS"],
                                                         f"blocked-{lang}.png"))
            finally:
                visitor.close()
        if os.environ.get("FAIRSLOT_SHOTS"):
            page.goto(url + "/operator/console")
            page.locator("table.sessions").first.screenshot(
                path=os.path.join(os.environ["FAIRSLOT_SHOTS"], "console-alerts-zh.png"))
        lifted = page.request.post(url + f"/api/v1/monitor/decisions/{decision}/lift",
                                   headers={"authorization": f"Bearer {token}"},
                                   data={"reason": "done"})
        assert lifted.ok, lifted.text()
    finally:
        operator.close()

"""What walking the pages as their users do found: a late cancellation needs the patient to
say they understand it, errors name moments in the hospital's time (never an ISO stamp in
UTC) and in the visitor's language, the desk offers no session that has started."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.domain.booking import BookingStatus
from fairslot.domain.credit import Suspended
from fairslot.domain.errors import InvalidInput
from fairslot.domain.schedule import Period
from fairslot.guard.errors import ActionTokenRefused, Blocked, Overloaded
from fairslot.monitoring.alerts import Sighting
from fairslot.monitoring.scenarios import Entity
from fairslot.monitoring.scenarios.catalogue import SCENARIO_NAMES
from fairslot.services import booking, catalog, release, rules
from fairslot.services.context import RequestContext
from fairslot.web import alert_summaries, i18n
from fairslot.web.app import create_app
from fairslot.web.pages import console as console_page
from fairslot.web.pages.common import explain
from fairslot.web.pages.desk import paid_with
from tests.conftest import World
from tests.web.test_pages import HTML, SQLITE_ONLY, after_min_age, alert, fields, log_in, platform
from tests.web.test_patient_pages import _open_round

__all__ = ["platform"]

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), headers=HTML) as test_client:
        yield test_client


def test_errors_show_moments_in_the_hospitals_time_and_codes_in_words() -> None:
    zh, en = i18n.LANGUAGES["zh_CN"], i18n.LANGUAGES["en"]
    until = dt.datetime(2026, 12, 28, 6, 10, 9, 797182, tzinfo=dt.UTC)
    detail = ("1st offence within a year (late cancellation on 2026-11-28): booking and "
              f"entering draws are suspended for 30 days, until {until.isoformat()}")
    suspended = Suspended(detail, until=until, reason=detail)
    assert str(explain(zh, suspended, SHANGHAI)) == (
        "因爽约或临近取消，预约和抽签登记暂停至 2026-12-28 14:10。")
    assert str(explain(en, suspended, SHANGHAI)) == (
        "Booking and entering draws are suspended until 2026-12-28 14:10 (missed visits or "
        "late cancellations).")
    # Where the page knows the zone's name, it says it: 北京时间, not the zone's id.
    assert str(explain(zh, suspended, SHANGHAI, zone_id="Asia/Shanghai")) == (
        "因爽约或临近取消，预约和抽签登记暂停至 北京时间 2026-12-28 14:10。")
    assert str(explain(en, suspended, SHANGHAI, zone_id="Asia/Shanghai")) == (
        "Booking and entering draws are suspended until 2026-12-28 14:10 Beijing time "
        "(missed visits or late cancellations).")
    wrong = InvalidInput("wrong code (4 tries left)", code="code_wrong", tries_left=4)
    assert str(explain(zh, wrong)) == "验证码错误（还可尝试 4 次）。"
    review = InvalidInput("this booking is being reviewed; it can be paid once it is "
                          "confirmed", code="under_review")
    assert "审核" in str(explain(zh, review)) and 'lang="en"' not in str(explain(zh, review))


@SQLITE_ONLY
def test_a_late_cancellation_needs_the_box_ticked(client: TestClient, world: World,
                                                  clock: FixedClock) -> None:
    platform = world.platform
    account, (patient_id,), _ = world.patient_account("late.canceller")
    session_id = world.session_ids[0]
    starts = platform.run(catalog.session_view, session_id).session.starts_at
    # 20 hours before the visit: online cancelling is still open (12 h), but late (24 h).
    clock.set(starts - dt.timedelta(hours=20))
    ctx = RequestContext(ip="203.0.113.10")
    held = platform.run(booking.book, account, patient_id, session_id, ctx)
    platform.run(booking.pay, account, held.booking.id, "alipay:late@example.com", ctx)
    log_in(client, "late.canceller")
    me = client.get("/me").text
    assert "临近取消" in me and 'name="understood"' in me and "30 天" in me
    cancel = f"/bookings/{held.booking.id}/cancel"
    form = fields(me, cancel)
    assert re.search(r'name="understood"[^>]*required', me) and "checked" not in me
    del form["understood"]  # the box as the page shows it: unticked
    after_min_age(world)
    refused = client.post(cancel, data=form, follow_redirects=False)
    assert refused.status_code == 400 and "勾选" in alert(refused.text)
    [mine] = platform.run(booking.my_bookings, account)
    assert mine.booking.status is BookingStatus.PAID
    assert platform.run(rules.standing, patient_id).suspension is None

    # The page's token was not spent: the same form with the box ticked cancels.
    done = client.post(cancel, data=form | {"understood": "yes"}, follow_redirects=False)
    assert done.status_code == 303, alert(done.text)
    [mine] = platform.run(booking.my_bookings, account)
    assert mine.booking.status is BookingStatus.REFUNDED
    assert platform.run(rules.standing, patient_id).suspension is not None

    # Booking again is refused with the end of the suspension in the hospital's time.
    other = world.session_ids[1]
    page = client.get(f"/sessions/{other}/confirm?patient_id={patient_id}")
    after_min_age(world)
    book = f"/sessions/{other}/book"
    again = client.post(book, data=fields(page.text, book), follow_redirects=False)
    said = alert(again.text)
    assert re.search(r"暂停至 北京时间 \d{4}-\d\d-\d\d \d\d:\d\d。", said), said
    assert "T" not in said and "+00:00" not in said


@SQLITE_ONLY
def test_a_cancellation_days_ahead_asks_nothing_more(client: TestClient, world: World,
                                                    clock: FixedClock) -> None:
    platform = world.platform
    account, (patient_id,), _ = world.patient_account("early.canceller")
    session_id = world.session_ids[1]
    starts = platform.run(catalog.session_view, session_id).session.starts_at
    clock.set(starts - dt.timedelta(hours=30))
    held = platform.run(booking.book, account, patient_id, session_id,
                        RequestContext(ip="203.0.113.11"))
    log_in(client, "early.canceller")
    me = client.get("/me").text
    assert 'name="understood"' not in me and "data-fairslot-confirm" in me
    after_min_age(world)
    cancel = f"/bookings/{held.booking.id}/cancel"
    done = client.post(cancel, data=fields(me, cancel), follow_redirects=False)
    assert done.status_code == 303, alert(done.text)
    assert platform.run(rules.standing, patient_id).suspension is None


@SQLITE_ONLY
def test_the_desk_offers_no_session_that_has_started(client: TestClient, world: World,
                                                     clock: FixedClock) -> None:
    platform = world.platform
    today = clock.now().astimezone(platform.settings.zone).date()
    (started,) = platform.run(catalog.schedule_sessions, world.doctor_id, [today],
                              [Period.AFTERNOON], 10, 5000, release_days_before=2)
    now = clock.now()
    with platform.uow() as uow:
        session = uow.schedule.session(started.id)
        session.starts_at = now - dt.timedelta(minutes=30)
        session.ends_at = now + dt.timedelta(hours=3)
        session.release_at = now - dt.timedelta(days=1)
        uow.commit()
    log_in(client, "staff-registration")
    desk = client.get("/desk").text
    on_site = desk.split('id="o-session"', 1)[1].split("</select>", 1)[0]
    assert f'value="{world.session_ids[0]}"' in on_site
    assert f'value="{started.id}"' not in on_site


@SQLITE_ONLY
def test_paying_takes_the_method_from_a_list_and_the_account_as_typed(
        client: TestClient, world: World) -> None:
    platform = world.platform
    account, (patient_id,), _ = world.patient_account("plain.payer")
    held = platform.run(booking.book, account, patient_id, world.session_ids[1],
                        RequestContext(ip="203.0.113.12"))
    log_in(client, "plain.payer")
    me = client.get("/me").text
    assert 'name="payer_method"' in me and "微信支付" in me and "alipay:you" not in me
    pay = f"/bookings/{held.booking.id}/pay"
    after_min_age(world)
    # A bare number and no method: refused in words, nothing paid.
    bare = client.post(pay, data=fields(me, pay) | {"payer_account": "13900001234"},
                       follow_redirects=False)
    assert bare.status_code == 422 and "选择支付方式" in alert(bare.text), alert(bare.text)
    me = bare.text
    after_min_age(world)
    done = client.post(pay, data=fields(me, pay) | {"payer_method": "wechat",
                                                    "payer_account": " 13900001234 "},
                       follow_redirects=False)
    assert done.status_code == 303, alert(done.text)
    [mine] = platform.run(booking.my_bookings, account)
    assert mine.booking.status is BookingStatus.PAID
    assert (mine.booking.payer_account or "").startswith("wechat:")


@SQLITE_ONLY
def test_a_booking_under_review_offers_no_payment(client: TestClient, world: World,
                                                  clock: FixedClock) -> None:
    platform = world.platform
    account, (patient_id,), _ = world.patient_account("reviewed.patient")
    held = platform.run(booking.book, account, patient_id, world.session_ids[1],
                        RequestContext(ip="203.0.113.13"))
    with platform.uow() as uow:
        row = uow.bookings.get(held.booking.id or 0)
        assert row is not None
        row.hold_for_review(clock.now() + dt.timedelta(hours=6))
        uow.commit()
    log_in(client, "reviewed.patient")
    me = client.get("/me").text
    assert "医院审核中" in me and "审核通过后即可支付" in me
    assert f'action="/bookings/{held.booking.id}/pay"' not in me and "支付期限" not in me
    assert f'action="/bookings/{held.booking.id}/cancel"' in me  # it can still be cancelled


@SQLITE_ONLY
def test_an_operator_adds_a_department_a_doctor_and_schedules_a_week(
        client: TestClient, world: World, clock: FixedClock) -> None:
    platform = world.platform
    log_in(client, "staff-operator")
    page = client.get("/operator/catalogue")
    assert page.status_code == 200 and "出诊排班" in page.text
    assert 'action="/operator/catalogue/hospitals"' not in page.text  # admins only
    assert client.post("/operator/catalogue/hospitals",
                       data=fields(page.text, "/operator/catalogue/departments") |
                       {"code": "X", "name": "Y"}).status_code == 403
    form = fields(page.text, "/operator/catalogue/departments")
    r = client.post("/operator/catalogue/departments",
                    data=form | {"hospital_id": world.hospital_id, "code": "NEPH",
                                 "name": "肾内科"}, follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    page = client.get("/operator/catalogue")
    assert "已新增科室" not in page.text  # the notice comes with the redirect's ?done=
    assert "肾内科" in client.get(r.headers["location"]).text
    [neph] = [d for _, ds in platform.run(catalog.hospitals) for d in ds if d.code == "NEPH"]
    form = fields(page.text, "/operator/catalogue/doctors")
    r = client.post("/operator/catalogue/doctors",
                    data=form | {"department_id": neph.id, "name": "白雪", "title": "主任医师",
                                 "specialty": "肾病", "policy": "fcfs"},
                    follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    [doctor] = platform.run(catalog.doctors, neph.id or 0)
    page = client.get("/operator/catalogue").text
    sessions = fields(page, "/operator/catalogue/sessions")
    tomorrow = clock.now().astimezone(platform.settings.zone).date() + dt.timedelta(days=1)
    # A bad fee: refused in words, nothing made, what was typed stays in the form.
    bad = client.post("/operator/catalogue/sessions",
                      data=sessions | {"doctor_id": doctor.id, "first": tomorrow.isoformat(),
                                       "days": "7", "periods": ["morning", "afternoon"],
                                       "capacity": "12", "fee": "25.005",
                                       "release_days": "3"}, follow_redirects=False)
    assert bad.status_code == 422 and "最多两位小数" in alert(bad.text), alert(bad.text)
    assert 'value="25.005"' in bad.text and 'value="12"' in bad.text
    assert all(r.doctor.id != doctor.id for r in platform.run(catalog.day_sessions, tomorrow))
    done = client.post("/operator/catalogue/sessions",
                       data=sessions | {"doctor_id": doctor.id, "first": tomorrow.isoformat(),
                                        "days": "7", "periods": ["morning", "afternoon"],
                                        "capacity": "12", "fee": "25.5",
                                        "release_days": "3"}, follow_redirects=False)
    assert done.status_code == 303, alert(done.text)
    made = [r for d in range(7)
            for r in platform.run(catalog.day_sessions, tomorrow + dt.timedelta(days=d))
            if r.doctor.id == doctor.id]
    assert len(made) == 14
    assert {(r.session.capacity, r.session.fee_cents) for r in made} == {(12, 2550)}
    # The doctor's page shows them to patients.
    assert "白雪" in client.get(f"/doctors/{doctor.id}").text


@SQLITE_ONLY
def test_an_admin_adds_a_hospital(client: TestClient, world: World) -> None:
    log_in(client, "staff-admin")
    page = client.get("/operator/catalogue").text
    form = fields(page, "/operator/catalogue/hospitals")
    empty = client.post("/operator/catalogue/hospitals", data=form | {"code": " ", "name": ""},
                        follow_redirects=False)
    assert empty.status_code == 422 and "代码和名称" in alert(empty.text)
    r = client.post("/operator/catalogue/hospitals",
                    data=form | {"code": "SZH2", "name": "第二人民医院"},
                    follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    assert "第二人民医院" in client.get("/").text


@SQLITE_ONLY
def test_a_sessions_patient_list_for_the_doctors_office(client: TestClient,
                                                        world: World) -> None:
    platform = world.platform
    account, (patient_id,), _ = world.patient_account("listed.patient")
    session_id = world.session_ids[1]
    held = platform.run(booking.book, account, patient_id, session_id,
                        RequestContext(ip="203.0.113.14"))
    with platform.uow() as uow:
        patient = uow.patients.get(patient_id)
    assert patient is not None
    log_in(client, "listed.patient")
    assert client.get(f"/operator/sessions/{session_id}").status_code == 403
    client.cookies.clear()
    log_in(client, "staff-operator")
    day = platform.run(catalog.session_view, session_id).session.date
    assert f'href="/operator/sessions/{session_id}"' in client.get(
        f"/operator?date={day.isoformat()}").text
    page = client.get(f"/operator/sessions/{session_id}")
    assert page.status_code == 200 and "出诊患者名单" in page.text
    assert str(held.booking.id) in page.text and "待支付" in page.text
    assert patient.id_number not in page.text and patient.name not in page.text
    assert client.get("/operator/sessions/999999").status_code == 404


@SQLITE_ONLY
def test_the_console_speaks_the_pages_language_and_the_hospitals_time(
        world: World, clock: FixedClock) -> None:
    platform = dataclasses.replace(world.platform, settings=world.platform.settings.model_copy(
        update={"monitor_mode": "embedded"}))
    account, _, _ = world.patient_account("watched.patient")
    with TestClient(create_app(platform), headers=HTML) as client:
        monitoring = client.app.state.monitoring  # type: ignore[attr-defined]
        monitoring.embedded.stop()
        hand = monitoring.hand
        seen = clock.now().timestamp()
        hand.store.record([Sighting("fast_action", Entity("account", str(account.id)), "medium",
                                    "account: 2 times in 30 days", {"count": 2}, [], [], [],
                                    seen, seen)], clock.now())
        decision = hand.decide("raise_level", Entity("route_group", "booking"),
                               dt.timedelta(hours=2), "li", "release at eight",
                               param="elevated")
        log_in(client, "staff-operator")
        text = client.get("/operator/console").text
        assert "UTC" not in text and "北京时间" in text
        assert "操作快于常人" in text and "fast_action" in text  # title, and its code beside
        assert "中</span>" in text and f'账户 <span class="mono">{account.id}</span>' in text
        assert '路由组 <span class="mono">预约与取消</span>' in text
        seen_local = clock.now().astimezone(SHANGHAI)
        assert seen_local.strftime("%m-%d %H:%M:%S") in text  # last seen, Beijing time
        assert (seen_local + dt.timedelta(hours=2)).strftime("%m-%d %H:%M") in text  # expires
        assert 'data-zone="Asia/Shanghai"' in text
        # Lifting asks first on the page; the server still wants a reason.
        action = f"/operator/console/decisions/{decision.id}/lift"
        form = re.search(rf'<form[^>]*action="{action}"[^>]*>', text)
        assert form is not None and "data-fairslot-confirm" in form.group(0)
        r = client.post(action, data=fields(text, action) | {"reason": " "})
        assert r.status_code == 422 and "reason_required" in r.text
        assert hand.store.decision(decision.id).lifted_at is None
        r = client.post(action, data=fields(text, action) | {"reason": "release is over"},
                        follow_redirects=False)
        assert r.status_code == 303 and hand.store.decision(decision.id).lifted_at is not None
        # In English, the same titles in English.
        client.cookies.set("fs_lang", "en")
        text = client.get("/operator/console").text
        assert "Actions faster than a person" in text and "Beijing time" in text
        # Figures without what the scenario's words need: the stored summary, marked English.
        assert '<span lang="en">account: 2 times in 30 days</span>' in text


def test_every_scenario_has_a_title_and_rounds_show_department_names(world: World) -> None:
    assert set(SCENARIO_NAMES) <= set(console_page.SCENARIO_TITLES)
    assert set(SCENARIO_NAMES) <= set(alert_summaries.SUMMARIES)
    platform = world.platform
    with platform.uow() as uow:
        shown = console_page._for_page(uow, platform.deps, {"entries": [
            {"round": 7, "department": world.department_id,
             "closes_at": "2026-03-02T16:30+00:00", "entries": 3}]})
    (entry,) = shown["entries"]
    assert entry["department_name"] == "心内科" and entry["closes"] == "03-03 00:30"


@SQLITE_ONLY
def test_disabling_a_staff_account_asks_first(client: TestClient, world: World) -> None:
    log_in(client, "staff-admin")
    page = client.get("/admin/users").text
    desk = world.staff[Role.REGISTRATION].id
    form = re.search(rf'<form[^>]*action="/admin/users/{desk}"[^>]*>', page)
    assert form is not None
    assert "停用账号 staff-registration？" in form.group(0)
    assert 'data-fairslot-confirm-when="disabled"' in form.group(0)  # not on a role change
    script = client.get("/static/fairslot-pages.js").text
    assert "data-fairslot-confirm-when" in script and "defaultChecked" in script


@SQLITE_ONLY
def test_a_staff_row_keeps_its_role_and_state_in_their_own_columns(
        client: TestClient, world: World) -> None:
    # One form per row, its role and Disabled fields in the Role and State cells (joined to
    # it by form="..."): each row's fields name that row's form, and the row has 4 cells
    # like the header (a cell spanning three put the box under the wrong heading).
    log_in(client, "staff-admin")
    page = client.get("/admin/users").text
    desk = world.staff[Role.REGISTRATION].id
    row = re.search(r'<tr>\s*<td><strong>staff-registration</strong></td>(.*?)</tr>', page, re.S)
    assert row is not None
    cells = re.findall(r"<td[ >]", row.group(1))
    assert len(cells) == 3 and "colspan" not in row.group(1)
    assert f'id="user-{desk}"' in row.group(1)
    assert re.search(rf'<select id="role-{desk}" name="role" form="user-{desk}">', row.group(1))
    assert re.search(rf'name="disabled" value="yes" form="user-{desk}"', row.group(1))


@SQLITE_ONLY
def test_draw_choices_are_short_and_the_sessions_listed_in_full(
        client: TestClient, world: World, clock: FixedClock) -> None:
    _, session_id, round_id = _open_round(world, clock)
    world.patient_account("short.choices")
    log_in(client, "short.choices")
    page = client.get(f"/rounds/{round_id}/enter").text
    session = world.platform.run(catalog.session_view, session_id).session
    (option,) = re.findall(rf'<option value="{session_id}"[^>]*>([^<]*)</option>', page)[:1]
    assert option.startswith(session.date.strftime("%m-%d ")) and "周正" in option
    assert str(session.date.year) not in option and "已登记" not in option
    listed = re.search(r'<ul class="draw-options">(.*?)</ul>', page, re.S)
    assert listed is not None and session.date.isoformat() in listed.group(1)
    assert "2 个号，已登记 0 人" in listed.group(1)


@SQLITE_ONLY
def test_counts_of_entries_and_choices_agree_in_number_in_english(
        client: TestClient, world: World, clock: FixedClock) -> None:
    _, session_id, round_id = _open_round(world, clock)
    account, (patient_id,), _ = world.patient_account("one.choice")
    world.platform.run(release.enter, account, round_id, patient_id, [session_id],
                       RequestContext(ip="198.51.100.9"))
    log_in(client, "one.choice")
    client.cookies.set("fs_lang", "en")
    enter = client.get(f"/rounds/{round_id}/enter").text
    assert "2 slots, 1 entry so far" in enter and "1 entries" not in enter
    for url in (f"/rounds/{round_id}", "/me"):
        page = client.get(url).text
        assert "1 choice" in page and "1 choices" not in page, url
    client.cookies.set("fs_lang", "zh_CN")
    assert "2 个号，已登记 1 人" in client.get(f"/rounds/{round_id}/enter").text
    assert "1 个志愿" in client.get("/me").text


@SQLITE_ONLY
def test_the_registration_slip_says_how_it_was_paid(client: TestClient, world: World) -> None:
    platform = world.platform
    account, (patient_id,), _ = world.patient_account("slip.payer")
    ctx = RequestContext(ip="203.0.113.15")
    held = platform.run(booking.book, account, patient_id, world.session_ids[0], ctx)
    platform.run(booking.pay, account, held.booking.id or 0, "alipay:13900005678", ctx)
    log_in(client, "staff-registration")
    slip = client.get(f"/desk/receipt/{held.booking.id}").text
    assert "<dt>付款方式</dt><dd>支付宝</dd>" in slip and "13900005678" not in slip
    assert paid_with("cash:patient-7") == "Cash"
    assert paid_with("insurance:YB12345678") == "Medical-insurance card"
    assert paid_with("corp-7788") == "Another account"
    assert paid_with(None) is None


def test_a_refused_page_view_says_what_happened_and_when_to_retry(world: World) -> None:
    """The guard's refusal of a page is a page in the visitor's language that says when to
    try again (from its Retry-After, which the page keeps), never its code or JSON alone."""
    tight = {"browsing": {"ip": "3/minute", "prefix": "3/minute", "device": "3/minute"}}
    platform = dataclasses.replace(world.platform, settings=world.platform.settings.model_copy(
        update={"guard_limits": tight}))
    with TestClient(create_app(platform), headers=HTML) as client:
        for _ in range(10):
            page = client.get(f"/departments/{world.department_id}")
            if page.status_code != 200:
                break
        assert page.status_code == 429, page.text
        assert page.headers["content-type"].startswith("text/html")
        wait = int(page.headers["Retry-After"])
        text = page.text
        assert "<h1>操作太频繁</h1>" in text and '<html lang="zh-CN">' in text
        assert f"本次请求没有执行。请在 {wait} 秒后再试。" in text
        assert f'href="/departments/{world.department_id}">重试</a>' in text
        assert "Too many requests" not in text and "problem+json" not in text
        client.cookies.set("fs_lang", "en")
        text = client.get(f"/departments/{world.department_id}").text
        assert "Please try again in " in text and ">Try again</a>" in text


def test_guard_refusals_on_forms_and_long_blocks_are_worded() -> None:
    zh, en = i18n.LANGUAGES["zh_CN"], i18n.LANGUAGES["en"]
    now = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
    blocked = Blocked("blocked", retry_after=3 * 3600)
    assert "您可以在北京时间 11-28 13:00 以后再试" in str(
        explain(zh, blocked, SHANGHAI, now, "Asia/Shanghai"))
    assert "try again after 11-28 13:00 (Beijing time)" in str(
        explain(en, blocked, SHANGHAI, now, "Asia/Shanghai"))
    assert "请在约 5 分钟后再试" in str(explain(zh, Overloaded("busy", retry_after=290)))
    replayed = ActionTokenRefused("This page was already used; please reload it to try "
                                  "again.", code="token_replayed")
    assert "该表单已经提交过一次" in str(explain(zh, replayed))


@SQLITE_ONLY
def test_a_booking_held_for_review_is_not_announced_as_to_pay(world: World) -> None:
    platform = dataclasses.replace(world.platform, settings=world.platform.settings.model_copy(
        update={"monitor_mode": "embedded"}))
    account, (patient_id,), _ = world.patient_account("held.patient")
    with TestClient(create_app(platform), headers=HTML) as client:
        monitoring = client.app.state.monitoring  # type: ignore[attr-defined]
        monitoring.monitor.decide("hold_bookings", Entity("account", str(account.id)),
                                  dt.timedelta(days=1), "li", "ring")
        log_in(client, "held.patient")
        session_id = world.session_ids[0]
        confirm = client.get(f"/sessions/{session_id}/confirm",
                             params={"patient_id": patient_id}).text
        after_min_age(world)
        r = client.post(f"/sessions/{session_id}/book",
                        data=fields(confirm, f"/sessions/{session_id}/book"),
                        follow_redirects=False)
        assert r.status_code == 303 and "done=booked_review" in r.headers["location"]
        me = client.get(r.headers["location"]).text
        assert "预约已提交。医院正在审核这个预约" in me and "请在支付期限前支付" not in me


def test_an_id_beyond_the_columns_range_is_refused_in_words(client: TestClient,
                                                             world: World) -> None:
    """An id of 2**31 typed into a form (PostgreSQL's integer columns end at 2**31 - 1):
    a refusal on the page, not a server error, and nothing added."""
    log_in(client, "staff-operator")
    page = client.get("/operator/catalogue")
    before = sum(len(ds) for _, ds in world.platform.run(catalog.hospitals))
    r = client.post("/operator/catalogue/departments",
                    data=fields(page.text, "/operator/catalogue/departments")
                    | {"hospital_id": str(2**31), "code": "BIG", "name": "大号"},
                    follow_redirects=False)
    assert r.status_code in (404, 422), r.text
    assert alert(r.text)
    assert sum(len(ds) for _, ds in world.platform.run(catalog.hospitals)) == before

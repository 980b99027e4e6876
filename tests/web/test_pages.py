"""The server-rendered pages, driven like a browser would: forms with their hidden fields,
cookies, redirects. A patient's journey, the desk and operator pages, and the defences
(CSRF and action tokens, roles, proof of work, escaping)."""

from __future__ import annotations

import datetime as dt
import functools
import html
import html.parser
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from altcha.v1 import Challenge, Payload, solve_challenge
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.domain.identity import mask_id_number
from fairslot.services import accounts, booking, catalog
from fairslot.services.context import RequestContext
from fairslot.web.app import create_app
from tests.conftest import PASSWORD, World, make_settings

HTML = {"accept": "text/html"}
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def platform(engine: sa.Engine, clock: FixedClock) -> Platform:
    # The test client speaks plain HTTP, so the guard's device cookie must not be Secure;
    # small proof-of-work challenges keep the solver test fast.
    settings = make_settings(database_url=str(engine.url), guard_device_cookie_secure=False,
                             guard_pow_base_maxnumber=1000)
    return bootstrap(settings, clock=clock, engine=engine)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), headers=HTML) as test_client:
        yield test_client


class Forms(html.parser.HTMLParser):
    """Every form of a page: its action and the values of its inputs."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append({"action": values.get("action"), "attrs": values, "fields": {}})
        elif tag == "input" and self.forms and values.get("name"):
            if values.get("type") == "radio" and "checked" not in values:
                return
            self.forms[-1]["fields"][values["name"]] = values.get("value") or ""

    def get(self, action: str) -> dict[str, Any]:
        found = [f for f in self.forms if f["action"] == action]
        assert found, f"no form posting to {action}"
        return found[0]


def fields(page: str, action: str) -> dict[str, str]:
    return dict(Forms(page).get(action)["fields"])


def submit(client: TestClient, page_url: str, action: str, **values: Any) -> Any:
    """Open the page, fill in the form that posts to ``action``, submit it."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    data = fields(page.text, action) | {k: str(v) for k, v in values.items()}
    return client.post(action, data=data, follow_redirects=False)


def alert(page: str) -> str:
    match = re.search(r'role="alert">(.*?)</p>', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))) if match else ""


def log_in(client: TestClient, username: str) -> None:
    r = submit(client, "/login", "/login", username=username, password=PASSWORD)
    assert r.status_code == 303, alert(r.text)


def after_min_age(world: World) -> None:
    """A person reads the confirmation page for longer than the tokens' minimum age."""
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(world.platform.settings.guard_token_min_age_seconds + 0.5)


def test_a_patient_logs_in_adds_family_books_through_the_confirmation_pays_and_cancels(
        client: TestClient, world: World) -> None:
    world.patient_account("zhang.wei", patients=0)
    r = submit(client, "/login", "/login", username="zhang.wei", password=PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/me"
    cookie = r.headers["set-cookie"]
    assert "fs_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie

    mother = world.residents.pop()
    r = submit(client, "/me", "/me/patients", id_number=mother.id_number, name=mother.name)
    assert r.status_code == 303, alert(r.text)
    me = client.get(r.headers["location"]).text
    assert "已添加就诊人" in me
    assert mask_id_number(mother.id_number) in me and mother.id_number not in me
    assert mother.name not in me  # shown masked only

    session_id = world.session_ids[0]
    doctor_page = client.get(f"/doctors/{world.doctor_id}").text
    assert f'href="/sessions/{session_id}/book"' in doctor_page
    assert "10</strong> / 10" in doctor_page
    choose = client.get(f"/sessions/{session_id}/book").text
    patient_id = fields(choose, f"/sessions/{session_id}/confirm")["patient_id"]
    confirm = client.get(f"/sessions/{session_id}/confirm", params={"patient_id": patient_id})
    assert confirm.status_code == 200 and "确认预约" in confirm.text
    after_min_age(world)
    data = fields(confirm.text, f"/sessions/{session_id}/book")
    r = client.post(f"/sessions/{session_id}/book", data=data, follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    me = client.get("/me").text
    assert "待支付" in me and "支付期限" in me
    viewer = world.platform.run(accounts.authenticate, client.cookies["fs_session"])
    [mine] = world.platform.run(booking.my_bookings, viewer)
    assert mine.booking.session_id == session_id and mine.patient.id == int(patient_id)

    # The same confirmation cannot book twice: its action token is spent.
    again = client.post(f"/sessions/{session_id}/book", data=data, follow_redirects=False)
    assert again.status_code == 403 and "已经提交过一次" in alert(again.text)

    after_min_age(world)
    pay = f"/bookings/{mine.booking.id}/pay"
    r = client.post(pay, data=fields(me, pay) | {"payer_account": "alipay:zhang@example.com"},
                    follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    me = client.get("/me").text
    assert "已支付" in me

    after_min_age(world)
    cancel = f"/bookings/{mine.booking.id}/cancel"
    r = client.post(cancel, data=fields(me, cancel), follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    assert "已退款" in client.get("/me").text
    assert world.platform.run(catalog.session_view, session_id).free == 10


@SQLITE_ONLY
def test_a_forged_post_without_the_form_tokens_is_refused(client: TestClient,
                                                          world: World) -> None:
    _, ids, _ = world.patient_account("li.na", patients=2)
    log_in(client, "li.na")
    person = world.residents.pop()
    forged = client.post("/me/patients", data={"id_number": person.id_number,
                                               "name": person.name})
    assert forged.status_code == 403 and "已失效" in alert(forged.text)
    wrong = client.post("/me/patients", data={"id_number": person.id_number,
                                              "name": person.name, "csrf": "0" * 64})
    assert wrong.status_code == 403
    me = world.platform.run(accounts.authenticate, client.cookies["fs_session"])
    assert len(world.platform.run(accounts.list_patients, me)) == 2

    # With the session's CSRF token but without the confirmation page's action token, a
    # booking is still refused: the POST must come from the page that leads to it.
    csrf = fields(client.get("/me").text, "/me/patients")["csrf"]
    session_id = world.session_ids[0]
    r = client.post(f"/sessions/{session_id}/book",
                    data={"csrf": csrf, "patient_id": ids[0]}, follow_redirects=False)
    assert r.status_code == 403 and "从相应页面开始" in alert(r.text)
    # A token issued for one patient does not book another.
    other = ids[1]
    page = client.get(f"/sessions/{session_id}/confirm", params={"patient_id": ids[0]}).text
    after_min_age(world)
    r = client.post(f"/sessions/{session_id}/book",
                    data=fields(page, f"/sessions/{session_id}/book") | {"patient_id": other},
                    follow_redirects=False)
    assert r.status_code == 403 and "与当前页面不符" in alert(r.text)
    assert world.platform.run(catalog.session_view, session_id).free == 10

    # Logging out is a form post too.
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/me", follow_redirects=False).headers["location"] == "/login?next=%2Fme"


@SQLITE_ONLY
def test_staff_pages_refuse_patients_and_anonymous_visitors(client: TestClient,
                                                            world: World) -> None:
    for path in ("/desk", "/operator"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    world.patient_account("wang.lei")
    log_in(client, "wang.lei")
    for path in ("/desk", "/operator"):
        r = client.get(path)
        assert r.status_code == 403 and "员工权限" in r.text
    csrf = fields(client.get("/me").text, "/me/patients")["csrf"]
    r = client.post("/desk/book", data={"csrf": csrf, "session_id": world.session_ids[0]})
    assert r.status_code == 403
    assert world.platform.run(catalog.session_view, world.session_ids[0]).free == 10


@SQLITE_ONLY
def test_the_desk_checks_in_with_the_presented_identity_and_books_on_site(
        client: TestClient, world: World, clock: FixedClock) -> None:
    account, ids, _ = world.patient_account("zhao.min")
    ctx = RequestContext(ip="203.0.113.7")
    held = world.platform.run(booking.book, account, ids[0], world.session_ids[0], ctx)
    world.platform.run(booking.pay, account, held.booking.id or 0, "wechat:wxid_zhao", ctx)
    clock.set(held.session.starts_at - dt.timedelta(minutes=30))
    client.cookies.set("fs_session", world.token(Role.REGISTRATION))

    patient = held.patient
    stranger = world.residents.pop()
    r = submit(client, "/desk", "/desk/check-in", booking_id=held.booking.id,
               id_number=stranger.id_number, name=stranger.name)
    assert r.status_code == 403 and "与预约的就诊人不符" in alert(r.text)
    r = submit(client, "/desk", "/desk/check-in", booking_id=held.booking.id,
               id_number=patient.id_number, name=patient.name)
    assert r.status_code == 303, alert(r.text)
    page = client.get(r.headers["location"]).text
    assert "已取号" in page
    assert patient.id_number not in page

    walk_in = world.residents.pop()
    r = submit(client, "/desk", "/desk/book", session_id=world.session_ids[0],
               id_number=walk_in.id_number, name=walk_in.name, payer_account="card:622200001")
    assert r.status_code == 303, alert(r.text)
    assert "现场挂号成功" in client.get(r.headers["location"]).text
    assert world.platform.run(catalog.session_view, world.session_ids[0]).free == 8

    client.cookies.set("fs_session", world.token(Role.OPERATOR))
    day = held.session.date.isoformat()
    ops = client.get("/operator", params={"date": day})
    assert ops.status_code == 200 and "李明" in ops.text
    assert "已取号 1" in ops.text and "已支付 1" in ops.text


@SQLITE_ONLY
def test_hostile_values_are_escaped(client: TestClient, world: World) -> None:
    hostile = '<script>alert("x")</script>'
    doctor = world.platform.run(catalog.create_doctor, world.department_id, "王五", "主任医师",
                                   f'"><img src=x onerror=alert(1)>{hostile}', hot=True)
    for path in (f"/departments/{world.department_id}", f"/doctors/{doctor.id}"):
        page = client.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    # What a visitor typed comes back escaped, too.
    r = submit(client, "/login", "/login", username=hostile, password="whatever!")
    assert r.status_code in (401, 422) and "<script>alert" not in r.text
    assert 'value="&lt;script&gt;' in r.text


@SQLITE_ONLY
def test_a_challenged_booking_comes_back_with_the_proof_of_work_for_the_solver(
        client: TestClient, world: World) -> None:
    _, ids, _ = world.patient_account("sun.li")
    log_in(client, "sun.li")
    guard = client.app.state.guard  # type: ignore[attr-defined]
    assert client.portal is not None
    client.portal.call(functools.partial(guard.set_level, "booking", "under_attack"))
    session_id = world.session_ids[1]
    page = client.get(f"/sessions/{session_id}/confirm", params={"patient_id": ids[0]}).text
    after_min_age(world)
    r = client.post(f"/sessions/{session_id}/book",
                    data=fields(page, f"/sessions/{session_id}/book"), follow_redirects=False)
    assert r.status_code == 403
    form = Forms(r.text).get(f"/sessions/{session_id}/book")
    assert "data-fairslot-pow" in form["attrs"] and "data-fairslot-autosubmit" in form["attrs"]
    assert '<script src="/static/altcha-solver.js"' in r.text
    challenge = json.loads(form["attrs"]["data-challenge"])
    solution = solve_challenge(Challenge(challenge["algorithm"], challenge["challenge"],
                                         challenge["maxNumber"], challenge["salt"],
                                         challenge["signature"]))
    assert solution is not None
    payload = Payload(challenge["algorithm"], challenge["challenge"], solution.number,
                      challenge["salt"], challenge["signature"]).to_base64()
    r = client.post(f"/sessions/{session_id}/book", data=form["fields"] | {"altcha": payload},
                    follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    assert world.platform.run(catalog.session_view, session_id).free == 9


@SQLITE_ONLY
def test_unknown_pages_are_friendly_while_the_api_keeps_problem_json(
        client: TestClient, world: World) -> None:
    for path in ("/no-such-page", "/doctors/not-a-number", "/doctors/99999"):
        r = client.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert "返回首页" in r.text and "Traceback" not in r.text
    api = client.get("/api/v1/doctors/99999", headers={"accept": "*/*"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert client.get("/static/fairslot.css").status_code == 200
    home = client.get("/")
    assert home.status_code == 200 and "测试医院" in home.text and "心内科" in home.text
    assert home.headers["x-frame-options"] == "DENY"


@SQLITE_ONLY
def test_a_visitor_registers_through_the_form_and_lands_on_their_account(
        client: TestClient, world: World) -> None:
    r = submit(client, "/register", "/register", username="chen.jie", password=PASSWORD,
               phone="13912345678")
    assert r.status_code == 303 and r.headers["location"] == "/me/phone?done=registered"
    page = client.get(r.headers["location"]).text
    assert "注册成功" in page and "未验证" in page and "139****5678" in page
    r = submit(client, "/register", "/register", username="chen.jie", password=PASSWORD,
               phone="13912345678")
    assert r.status_code == 409 and "已被使用" in alert(r.text)


@SQLITE_ONLY
@pytest.mark.parametrize("password", ["short", "password123"])
def test_a_refused_password_is_not_always_called_too_short(
        client: TestClient, world: World, password: str) -> None:
    # One code for both refusals: a long but guessable password must not be told, in
    # Chinese, that it is too short.
    r = submit(client, "/register", "/register", username="weak.pw", password=password,
               phone="13912345679")
    assert r.status_code == 422
    assert "密码太短或太容易被猜到" in alert(r.text)


@SQLITE_ONLY
def test_log_in_returns_only_to_pages_of_this_site(client: TestClient, world: World) -> None:
    world.patient_account("zhou.yu")
    r = submit(client, "/login?next=//evil.example/steal", "/login", username="zhou.yu",
               password=PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/me"
    client.cookies.clear()
    r = submit(client, f"/login?next=/doctors/{world.doctor_id}", "/login", username="zhou.yu",
               password=PASSWORD)
    assert r.headers["location"] == f"/doctors/{world.doctor_id}"


@SQLITE_ONLY
def test_a_challenged_payment_comes_back_ready_to_resubmit_with_the_same_token(
        client: TestClient, world: World) -> None:
    account, ids, _ = world.patient_account("qian.hui")
    held = world.platform.run(booking.book, account, ids[0], world.session_ids[0],
                        RequestContext(ip="203.0.113.8"))
    log_in(client, "qian.hui")
    guard = client.app.state.guard  # type: ignore[attr-defined]
    assert client.portal is not None
    client.portal.call(functools.partial(guard.set_level, "payment", "under_attack"))
    pay = f"/bookings/{held.booking.id}/pay"
    page = client.get("/me").text
    after_min_age(world)
    sent = fields(page, pay) | {"payer_account": "wechat:wxid_qian"}
    r = client.post(pay, data=sent, follow_redirects=False)
    assert r.status_code == 403
    form = Forms(r.text).get(pay)
    assert "data-fairslot-autosubmit" in form["attrs"]
    assert form["fields"]["action_token"] == sent["action_token"]
    assert form["fields"]["payer_account"] == "wechat:wxid_qian"
    assert world.platform.run(booking.get_booking, account, held.booking.id or 0).booking.paid_at \
        is None


@SQLITE_ONLY
def test_a_session_not_yet_released_shows_when_it_opens_in_the_hospitals_time(
        client: TestClient, world: World) -> None:
    from fairslot.domain.schedule import Period

    today = world.platform.clock.now().astimezone(world.platform.settings.zone).date()
    later = today + dt.timedelta(days=10)
    world.platform.run(catalog.schedule_sessions, world.doctor_id, [later], [Period.AFTERNOON],
                              10, 5000, release_days_before=2)
    page = client.get(f"/doctors/{world.doctor_id}").text
    opens = f"{(later - dt.timedelta(days=2)).isoformat()} 08:00"  # 08:00 in Shanghai
    assert f"{opens} 放号" in page
    client.cookies.set("fs_lang", "en")
    page = client.get(f"/doctors/{world.doctor_id}").text
    assert f"Opens at {opens}" in page and '<html lang="en">' in page
    assert page.count('href="/sessions/') == len(world.session_ids)  # no Book link for it


@SQLITE_ONLY
def test_a_patient_enters_a_draw_round_from_the_doctors_page(
        client: TestClient, world: World, clock: FixedClock) -> None:
    from fairslot.domain.schedule import Period, ReleasePolicy
    from fairslot.services import release

    doctor = world.platform.run(catalog.create_doctor, world.department_id, "周正", "主任医师",
                                   "心律失常", release_policy=ReleasePolicy.DRAW, hot=True)
    today = clock.now().astimezone(world.platform.settings.zone).date()
    [session] = world.platform.run(catalog.schedule_sessions, doctor.id or 0,
                                          [today + dt.timedelta(days=5)], [Period.MORNING],
                                          10, 30000, release_days_before=1)
    clock.set(session.release_at - dt.timedelta(hours=1))
    world.platform.run_job(release.open_due_rounds)
    world.patient_account("he.ping")
    log_in(client, "he.ping")

    page = client.get(f"/doctors/{doctor.id}").text
    link = re.search(r'href="(/rounds/(\d+)/enter\?session_id=\d+)"', page)
    assert link is not None, "no entry link for an open round"
    action = f"/rounds/{link.group(2)}/enter"
    form = client.get(link.group(1).replace("&amp;", "&")).text
    data = fields(form, action)
    data["choice1"] = str(session.id)
    after_min_age(world)
    r = client.post(action, data=data, follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    me = client.get("/me").text
    assert "等待抽签" in me
    # Entering again with the spent token is refused.
    again = client.post(action, data=data, follow_redirects=False)
    assert again.status_code == 403


@SQLITE_ONLY
def test_the_desk_lists_its_walk_in_draw_wins_and_takes_their_payment(
        client: TestClient, world: World, clock: FixedClock) -> None:
    from fairslot.domain.schedule import Period, ReleasePolicy
    from fairslot.services import release

    platform = world.platform
    doctor = platform.run(catalog.create_doctor, world.department_id, "周敏", "主任医师", "心律",
                                   release_policy=ReleasePolicy.DRAW, hot=True)
    day = clock.now().astimezone(platform.settings.zone).date() + dt.timedelta(days=2)
    (session,) = platform.run(catalog.schedule_sessions, doctor.id or 0, [day], [Period.MORNING],
                                           2, 30000, release_days_before=1)
    assert platform.run_job(release.open_due_rounds) == 1
    with platform.uow() as uow:
        round_id = uow.rounds.round_of_session(session.id or 0) or 0
    desk = world.staff[Role.REGISTRATION]
    walk_in = world.residents.pop()
    platform.run(release.enter_at_desk, desk, round_id, walk_in.id_number, walk_in.name,
                          [session.id or 0], RequestContext(ip="203.0.113.9"))
    clock.set(platform.run(release.round_view, round_id).round.closes_at)
    assert platform.run_job(release.draw_due_rounds) == 0  # frozen; the beacon is not out
    due = platform.run(release.round_view, round_id).stage.beacon_due_at
    assert due is not None
    clock.set(due)
    assert platform.run_job(release.draw_due_rounds) == 1

    client.cookies.set("fs_session", world.token(Role.REGISTRATION))
    page = client.get("/desk").text
    (won,) = platform.run(booking.desk_awaiting_payment)
    assert f">{won.booking.id}<" in page and mask_id_number(walk_in.id_number) in page
    assert walk_in.id_number not in page and walk_in.name not in page
    r = submit(client, "/desk", "/desk/pay", booking_id=won.booking.id, method="account",
               payer_account="nonsense")
    assert r.status_code == 422, alert(r.text)
    r = submit(client, "/desk", "/desk/pay", booking_id=won.booking.id, method="cash")
    assert r.status_code == 303, alert(r.text)
    assert "已在挂号台收费" in client.get(r.headers["location"]).text
    assert platform.run(booking.desk_awaiting_payment) == []
    assert "暂无" in client.get("/desk").text

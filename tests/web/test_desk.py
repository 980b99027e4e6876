"""The registration desk and its limits (issue 18's desk insider): today and tomorrow only,
the ID card read or typed with a reason, quotas per desk account and shift, a rate per
minute, cancelling others' bookings only with the patient present or a second staff
member, every action audited. Through the API and through the pages."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.domain.errors import InvalidInput
from fairslot.domain.identity import mask_id_number
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import accounts, booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.storage import tables as t
from fairslot.web.app import create_app
from fairslot.web.pages import checkin
from tests.conftest import PASSWORD, World, make_settings
from tests.web.test_pages import HTML, SQLITE_ONLY, alert, submit

CTX = RequestContext(ip="203.0.113.20")


@pytest.fixture
def platform(engine: sa.Engine, clock: FixedClock) -> Platform:
    settings = make_settings(database_url=str(engine.url), guard_device_cookie_secure=False,
                             desk_actions_per_minute=3, desk_actions_per_shift=5,
                             desk_typed_ids_per_shift=1, draw_window_hours=96)
    return bootstrap(settings, clock=clock, engine=engine)


@pytest.fixture
def api(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {world.token(Role.REGISTRATION)}"
        yield test_client


@pytest.fixture
def pages(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), headers=HTML) as test_client:
        test_client.cookies.set("fs_session", world.token(Role.REGISTRATION))
        yield test_client


def _book(api: TestClient, world: World, session_id: int, **extra: Any) -> Any:
    person = world.residents.pop()
    body = {"session_id": session_id, "id_number": person.id_number, "name": person.name,
            "payer_account": "cash", "id_source": "card"} | extra
    return api.post("/api/v1/staff/bookings", json=body)


def _desk_events(world: World) -> list[dict[str, Any]]:
    with world.platform.uow() as uow:
        rows = uow.db.execute(sa.select(t.events.c.detail, t.events.c.account_id)
                              .where(t.events.c.kind == "desk.action")
                              .order_by(t.events.c.id)).all()
    return [dict(r.detail) | {"account": r.account_id} for r in rows]


def test_the_desk_books_only_for_today_and_tomorrow_with_the_card_or_a_reason(
        api: TestClient, world: World) -> None:
    tomorrow, after = world.session_ids  # sessions 1 and 2 days ahead
    r = _book(api, world, after)
    assert r.status_code == 429 and r.json()["code"] == "desk_day"
    missing = world.residents[-1]
    r = api.post("/api/v1/staff/bookings", json={
        "session_id": tomorrow, "id_number": missing.id_number, "name": missing.name,
        "payer_account": "cash"})
    assert r.status_code == 422  # how the ID was taken is required
    r = _book(api, world, tomorrow, id_source="typed")
    assert r.status_code == 422 and r.json()["code"] == "desk_reason"
    r = _book(api, world, tomorrow, id_source="typed", typed_reason="card chip broken")
    assert r.status_code == 201, r.text
    r = _book(api, world, tomorrow, payer_account="insurance:SZ12345678")
    assert r.status_code == 201 and r.json()["status"] == "paid"
    # Nothing of the refusals changed the session.
    assert world.platform.run(catalog.session_view, tomorrow).free == 8
    events = _desk_events(world)
    assert [e.get("refused") for e in events] == ["desk_day", None, None]
    assert events[1]["id_source"] == "typed" and events[1]["reason_given"] is True
    text = json.dumps(events, ensure_ascii=False)
    assert all(p.id_number not in text and p.name not in text for p in world.residents)


def test_a_rate_per_minute_and_quotas_per_shift_bound_one_desk_account(
        api: TestClient, world: World, clock: FixedClock) -> None:
    tomorrow = world.session_ids[0]
    clock.set(clock.now().astimezone(world.platform.settings.zone).replace(
        hour=9, minute=0, second=0))
    for _ in range(3):
        assert _book(api, world, tomorrow).status_code == 201
    r = _book(api, world, tomorrow)
    assert r.status_code == 429 and r.json()["code"] == "desk_rate"
    clock.advance(61)
    assert _book(api, world, tomorrow, id_source="typed",
                 typed_reason="old card").status_code == 201
    r = _book(api, world, tomorrow, id_source="typed", typed_reason="old card")
    assert r.status_code == 429 and r.json()["code"] == "desk_typed_quota"
    assert _book(api, world, tomorrow).status_code == 201  # five this shift
    clock.advance(61)
    r = _book(api, world, tomorrow)
    assert r.status_code == 429 and r.json()["code"] == "desk_quota"
    # Another desk account has its own quota; the next shift (16:00) starts afresh.
    other = world.platform.run(accounts.create_user, "desk-two", PASSWORD,
                               Role.REGISTRATION)
    token = world.platform.run(accounts.issue_token, other.id or 0)
    person = world.residents.pop()
    r = api.post("/api/v1/staff/bookings", headers={"Authorization": f"Bearer {token}"},
                 json={"session_id": tomorrow, "id_number": person.id_number,
                       "name": person.name, "payer_account": "cash", "id_source": "card"})
    assert r.status_code == 201, r.text
    clock.set(clock.now().replace(hour=16, minute=1))
    assert _book(api, world, tomorrow).status_code == 201


def test_draw_entries_at_the_desk_only_for_draws_that_run_today_or_tomorrow(
        api: TestClient, world: World, clock: FixedClock) -> None:
    platform = world.platform
    doctor = platform.run(catalog.create_doctor, world.department_id, "周敏", "主任医师",
                          "心律", release_policy=ReleasePolicy.DRAW, hot=True)
    today = clock.now().astimezone(platform.settings.zone).date()
    # The near draw runs tomorrow at 08:00, the far one in three days; both windows are
    # open today.
    (near,) = platform.run(catalog.schedule_sessions, doctor.id or 0,
                           [today + dt.timedelta(days=3)], [Period.MORNING], 2, 30000,
                           release_days_before=2)
    (far,) = platform.run(catalog.schedule_sessions, doctor.id or 0,
                          [today + dt.timedelta(days=9)], [Period.MORNING], 2, 30000,
                          release_days_before=6)
    # Both windows open now (a window opens draw_window_hours = 96 before its release).
    clock.set(dt.datetime.combine(today, dt.time(9, 0), platform.settings.zone))
    platform.run_job(release.open_due_rounds)
    with platform.uow() as uow:
        near_round = uow.rounds.round_of_session(near.id or 0)
        far_round = uow.rounds.round_of_session(far.id or 0)
    assert near_round and far_round and near_round != far_round
    person = world.residents.pop()
    body = {"id_number": person.id_number, "name": person.name, "id_source": "card"}
    r = api.post(f"/api/v1/staff/rounds/{far_round}/entries",
                 json=body | {"choices": [far.id]})
    assert r.status_code == 429 and r.json()["code"] == "desk_day"
    r = api.post(f"/api/v1/staff/rounds/{near_round}/entries",
                 json=body | {"choices": [near.id]})
    assert r.status_code == 201, r.text


def test_cancelling_a_patients_own_booking_needs_the_patient_or_a_second_staff_member(
        api: TestClient, world: World) -> None:
    platform = world.platform
    account, (pid,), _ = world.patient_account("qian.yu")
    held = platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    other_held = platform.run(booking.book, account, pid, world.session_ids[1], CTX)
    patient = held.patient
    url = f"/api/v1/staff/bookings/{held.booking.id}/cancel"
    r = api.post(url, json={"reason": "patient asked by phone"})
    assert r.status_code == 403 and r.json()["code"] == "desk_second_staff"
    stranger = world.residents.pop()
    r = api.post(url, json={"id_number": stranger.id_number, "name": stranger.name,
                            "reason": "at the window"})
    assert r.status_code == 403 and r.json()["code"] == "identity_mismatch"
    r = api.post(url, json={"approver_username": "staff-registration",
                            "approver_password": PASSWORD, "reason": "self approval"})
    assert r.status_code == 403 and r.json()["code"] == "desk_approval"
    r = api.post(url, json={"approver_username": "staff-admin",
                            "approver_password": "wrong password", "reason": "approval"})
    assert r.status_code == 403 and r.json()["code"] == "desk_approval"
    assert platform.run(booking.get_booking, account, held.booking.id or 0).booking.active
    r = api.post(url, json={"id_number": patient.id_number, "name": patient.name,
                            "reason": "patient at the window"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = api.post(f"/api/v1/staff/bookings/{other_held.booking.id}/cancel",
                 json={"approver_username": "staff-operator",
                       "approver_password": PASSWORD, "reason": "duplicate booking"})
    assert r.status_code == 200, r.text
    hows = [e.get("how") for e in _desk_events(world) if e["action"] == "cancel"]
    assert hows[-2:] == ["patient_present", f"approved_by:{world.staff[Role.OPERATOR].id}"]
    refused = [e["refused"] for e in _desk_events(world) if e.get("refused")]
    assert refused == ["desk_second_staff", "identity_mismatch", "desk_approval",
                       "desk_approval"]
    # The desk's own on-site booking it cancels without either.
    own = _book(api, world, world.session_ids[0]).json()
    r = api.post(f"/api/v1/staff/bookings/{own['id']}/cancel", json={})
    assert r.status_code == 200 and r.json()["status"] in ("cancelled", "refunded")


def test_a_desk_account_cannot_cancel_another_desks_booking_alone(api: TestClient,
                                                                  world: World) -> None:
    # A walk-in patient's booking made at one desk is theirs: a second clerk (a corrupt
    # one steering waitlist offers) needs the patient or a second staff member too.
    own = _book(api, world, world.session_ids[0]).json()
    clerk = world.platform.run(accounts.create_user, "clerk-two", PASSWORD,
                               Role.REGISTRATION)
    token = world.platform.run(accounts.issue_token, clerk.id or 0)
    r = api.post(f"/api/v1/staff/bookings/{own['id']}/cancel", json={"reason": "no reason"},
                 headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json()["code"] == "desk_second_staff"
    r = api.post(f"/api/v1/staff/bookings/{own['id']}/cancel", json={})
    assert r.status_code == 200 and r.json()["status"] in ("cancelled", "refunded")


def test_a_patient_cannot_pay_online_as_cash_or_insurance(api: TestClient,
                                                          world: World) -> None:
    account, (pid,), _ = world.patient_account("kong.jie")
    held = world.platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    with pytest.raises(InvalidInput):
        world.platform.run(booking.pay, account, held.booking.id or 0, "cash:patient-1", CTX)


@SQLITE_ONLY
def test_the_desk_pages_find_check_in_by_qr_code_book_with_cash_and_print_a_receipt(
        pages: TestClient, world: World, clock: FixedClock) -> None:
    platform = world.platform
    account, (pid,), _ = world.patient_account("lu.xin")
    held = platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    platform.run(booking.pay, account, held.booking.id or 0, "wechat:wxid_lu", CTX)
    patient = held.patient
    # Find by the ID number on the card: masked on the page, never echoed.
    r = submit(pages, "/desk", "/desk/find", query=patient.id_number)
    assert r.status_code == 200, alert(r.text)
    assert f">{held.booking.id}<" in r.text and mask_id_number(patient.id_number) in r.text
    assert patient.id_number not in r.text
    # An on-site booking for the day after tomorrow is refused with the words why, and
    # the session list only offers today and tomorrow.
    walk_in = world.residents.pop()
    r = submit(pages, "/desk", "/desk/book", session_id=world.session_ids[1],
               id_number=walk_in.id_number, name=walk_in.name)
    assert r.status_code == 429 and "今明两天" in alert(r.text)
    assert f'value="{world.session_ids[1]}"' not in r.text
    # Check in with the QR code from the patient's page (the scanner types it).
    clock.set(held.session.starts_at - dt.timedelta(minutes=30))
    pages.cookies.set("fs_session", world.token(Role.REGISTRATION))  # a new day's log-in
    code = checkin.code_for(platform.deps, held.booking.id or 0)
    forged = code[:-1] + ("0" if code[-1] != "0" else "1")
    r = submit(pages, "/desk", "/desk/check-in", booking_id=forged,
               id_number=patient.id_number, name=patient.name)
    assert r.status_code == 422
    r = submit(pages, "/desk", "/desk/check-in", booking_id=code,
               id_number=patient.id_number, name=patient.name)
    assert r.status_code == 303, alert(r.text)
    assert "已取号" in pages.get(r.headers["location"]).text
    # Today's list for the doctor shows the patient, checked in.
    listing = pages.get("/desk", params={"doctor": world.doctor_id}).text
    assert mask_id_number(patient.id_number) in listing
    r = submit(pages, "/desk", "/desk/book", session_id=world.session_ids[1],
               id_number=walk_in.id_number, name=walk_in.name, id_source="typed")
    assert r.status_code == 422 and "原因" in alert(r.text)
    r = submit(pages, "/desk", "/desk/book", session_id=world.session_ids[1],
               id_number=walk_in.id_number, name=walk_in.name, method="cash")
    assert r.status_code == 303, alert(r.text)
    done = pages.get(r.headers["location"]).text
    booking_id = int(r.headers["location"].rsplit("=", 1)[1])
    assert f'href="/desk/receipt/{booking_id}"' in done
    slip = pages.get(f"/desk/receipt/{booking_id}").text
    assert "挂号条" in slip and "心内科" in slip and "李明" in slip and "<svg" in slip
    assert walk_in.id_number not in slip and mask_id_number(walk_in.id_number) in slip
    # Its own booking the desk cancels with a reason: the form asks for nothing else.
    own = submit(pages, "/desk", "/desk/find", query=str(booking_id)).text
    assert "填写原因即可" in own and 'name="approver"' not in own
    # A patient cannot open the desk's receipt page.
    _, _, token = world.patient_account("tao.ran")
    pages.cookies.set("fs_session", token)
    assert pages.get(f"/desk/receipt/{booking_id}").status_code == 403


def test_a_refused_desk_form_comes_back_as_the_clerk_left_it_save_the_id_number(
        pages: TestClient, world: World) -> None:
    platform = world.platform
    account, (pid,), _ = world.patient_account("qin.yu")
    held = platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    number = held.booking.id or 0
    found = submit(pages, "/desk", "/desk/find", query=str(number))
    # Cancelling and refunding asks first (the page's script reads this attribute).
    assert f'data-fairslot-confirm="取消预约 {number}' in found.text
    # The patient's own online booking: the desk alone may not cancel it. The page comes
    # back with the booking found again, its cancel form open, the name and the reason as
    # typed, and the ID number typed nowhere on it.
    r = pages.post("/desk/cancel", data={
        "csrf": _csrf(found.text), "booking_id": str(number),
        "id_number": world.residents[0].id_number, "name": "王某某", "reason": "患者来电"})
    assert r.status_code in (403, 409, 422), r.text
    assert f">{number}<" in r.text and "<details open>" in r.text
    assert 'value="王某某"' in r.text and 'value="患者来电"' in r.text
    assert "非挂号台办理的预约" in r.text and "填写原因即可" not in r.text
    assert world.residents[0].id_number not in r.text
    # A refused check-in keeps the name, not the ID number.
    patient = held.patient
    r = submit(pages, "/desk", "/desk/check-in", booking_id=str(number),
               id_number=patient.id_number, name="李四")
    assert r.status_code >= 400
    assert 'id="c-name" name="name" required maxlength="60" value="李四"' in r.text
    assert patient.id_number not in r.text


def _csrf(page: str) -> str:
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)

"""A patient's whole journey through the JSON API, and the errors they can meet on the way."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.domain.residents import make_residents
from fairslot.domain.schedule import Period
from fairslot.services import catalog
from fairslot.web.app import create_app
from tests.conftest import PASSWORD, World, api_book, api_cancel, api_pay
from tests.identity.helpers import last_code


@pytest.fixture
def client(world: World) -> TestClient:
    return TestClient(create_app(world.platform))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_patient_registers_adds_family_books_pays_and_cancels(client: TestClient,
                                                                world: World) -> None:
    r = client.post("/api/v1/auth/register",
                    json={"username": "wang.fang", "password": PASSWORD, "phone": "13812345678"})
    assert r.status_code == 201, r.text
    assert r.json()["phone"] == "138****5678"
    r = client.post("/api/v1/auth/login", json={"username": "wang.fang", "password": PASSWORD})
    assert r.status_code == 200
    headers = auth(r.json()["token"])
    r = client.post("/api/v1/me/phone/verify", headers=headers,
                    json={"code": last_code(world.platform, "+8613812345678")})
    assert r.status_code == 200 and r.json()["phone_verified"] is True

    person = world.residents.pop()
    r = client.post("/api/v1/me/patients", headers=headers,
                    json={"id_number": person.id_number, "name": person.name})
    assert r.status_code == 201, r.text
    patient = r.json()
    assert patient["id_number"] == person.id_number[:4] + "*" * 10 + person.id_number[-4:]
    assert patient["name"].startswith(person.name[0]) and "*" in patient["name"]

    session_id = world.session_ids[0]
    before = client.get(f"/api/v1/sessions/{session_id}").json()["free"]
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    r = api_book(client, headers["Authorization"][7:], session_id, patient["id"], clock)
    assert r.status_code == 201, r.text
    booking = r.json()
    assert booking["status"] == "held" and booking["slot_number"] == 1
    assert client.get(f"/api/v1/sessions/{session_id}").json()["free"] == before - 1

    r = api_pay(client, headers["Authorization"][7:], booking["id"],
                "alipay:wang.fang@example.com", clock)
    assert r.status_code == 200 and r.json()["status"] == "paid"

    mine = client.get("/api/v1/me/bookings", headers=headers).json()
    assert [b["id"] for b in mine] == [booking["id"]]

    r = api_cancel(client, headers["Authorization"][7:], booking["id"], clock)
    assert r.status_code == 200 and r.json()["status"] == "refunded"
    assert client.get(f"/api/v1/sessions/{session_id}").json()["free"] == before


def test_a_made_up_identity_with_a_valid_checksum_is_refused(client: TestClient,
                                                              world: World) -> None:
    import random

    _, _, token = world.patient_account("li.na", patients=0)
    stranger = make_residents(random.Random(99), 1)[0]  # well-formed, not in the registry
    r = client.post("/api/v1/me/patients", headers=auth(token),
                    json={"id_number": stranger.id_number, "name": stranger.name})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "identity_not_verified"


def test_an_invalid_id_number_is_refused_with_its_reason(client: TestClient,
                                                          world: World) -> None:
    _, _, token = world.patient_account("zhao.lei", patients=0)
    r = client.post("/api/v1/me/patients", headers=auth(token),
                    json={"id_number": "110105194912310021", "name": "赵磊"})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_id_number"
    assert "check digit" in r.json()["detail"]


def test_an_account_manages_at_most_five_patients(client: TestClient, world: World) -> None:
    _, _, token = world.patient_account("big.family", patients=5)
    person = world.residents.pop()
    r = client.post("/api/v1/me/patients", headers=auth(token),
                    json={"id_number": person.id_number, "name": person.name})
    assert r.status_code == 409
    assert r.json()["code"] == "quota_patients_per_account"


def test_a_phone_number_backs_at_most_two_accounts(client: TestClient, world: World) -> None:
    for n, expected in ((1, 201), (2, 201), (3, 409)):
        r = client.post("/api/v1/auth/register", json={
            "username": f"shared{n}", "password": PASSWORD, "phone": "+86 139 0000 1111"})
        assert r.status_code == expected, r.text
        if expected == 201:  # only verified accounts count against the number
            token = client.post("/api/v1/auth/login", json={
                "username": f"shared{n}", "password": PASSWORD}).json()["token"]
            assert client.post("/api/v1/me/phone/verify", headers=auth(token), json={
                "code": last_code(world.platform, "+8613900001111")}).status_code == 200
    assert r.json()["code"] == "quota_accounts_per_phone"


def test_one_patient_cannot_hold_two_bookings_in_one_session(client: TestClient,
                                                              world: World) -> None:
    _, (patient_id,), token = world.patient_account("chen.jie")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    sid = world.session_ids[0]
    assert api_book(client, token, sid, patient_id, clock).status_code == 201
    r = api_book(client, token, sid, patient_id, clock)
    assert r.status_code == 409 and r.json()["code"] == "already_booked"


def test_a_full_session_answers_slot_unavailable(world: World) -> None:
    client = TestClient(create_app(world.platform))
    _, patients, token = world.patient_account("many", patients=5)
    # Fill the session from other accounts, then try once more.
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    for n in range(2):
        _, ids, other = world.patient_account(f"filler{n}", patients=5)
        for pid in ids:
            assert api_book(client, other, world.session_ids[0], pid, clock).status_code == 201
    r = api_book(client, token, world.session_ids[0], patients[0], clock)
    assert r.status_code == 409 and r.json()["code"] == "slot_unavailable"


def test_an_unpaid_hold_expires_at_the_deadline_and_frees_its_slot(client: TestClient,
                                                                    world: World) -> None:
    from fairslot.services.booking import expire_overdue

    _, (pid,), token = world.patient_account("slow.payer")
    sid = world.session_ids[0]
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    booking = api_book(client, token, sid, pid, clock).json()
    clock.advance(16 * 60)
    assert world.platform.run_job(expire_overdue) == 1
    # Its payment screen hands out no token any more: nothing can be paid or cancelled.
    r = client.get(f"/api/v1/bookings/{booking['id']}/payment-screen",
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 409 and r.json()["code"] == "booking_settled"
    assert client.get(f"/api/v1/sessions/{sid}").json()["free"] == 10


def test_the_desk_checks_in_only_the_booked_patient(client: TestClient, world: World) -> None:
    _, (pid,), token = world.patient_account("sun.li")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    booking = api_book(client, token, world.session_ids[0], pid, clock).json()
    api_pay(client, token, booking["id"], "card:6222020000001234", clock)
    with world.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    world.platform.clock.set(  # type: ignore[attr-defined]
        dt.datetime.fromisoformat(booking["session_starts_at"]) - dt.timedelta(minutes=30))
    desk = auth(world.token(Role.REGISTRATION))
    impostor = world.residents.pop()
    r = client.post("/api/v1/staff/check-in", headers=desk, json={
        "booking_id": booking["id"], "id_number": impostor.id_number, "name": impostor.name})
    assert r.status_code == 403 and r.json()["code"] == "identity_mismatch"
    r = client.post("/api/v1/staff/check-in", headers=desk, json={
        "booking_id": booking["id"], "id_number": patient.id_number, "name": patient.name})
    assert r.status_code == 200 and r.json()["status"] == "checked_in"


def test_validation_errors_are_problem_json_with_a_code(client: TestClient) -> None:
    r = client.post("/api/v1/auth/login", json={"username": 5})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "validation_error" and body["errors"]
    r = client.get("/api/v1/no/such/route")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_repeated_log_in_failures_ask_for_a_proof_of_work(client: TestClient,
                                                         world: World) -> None:
    world.patient_account("target")
    codes = [client.post("/api/v1/auth/login",
                         json={"username": "target", "password": "wrong-password"}).json()["code"]
             for _ in range(5)]
    # Three free failures, then every attempt must carry a solved challenge first.
    assert codes[:3] == ["bad_credentials"] * 3
    assert codes[3:] == ["challenge_required"] * 2


def test_screens_refused_before_the_release_spend_none_of_the_screens_limit(
        client: TestClient, world: World) -> None:
    """A patient who opens a booking screen again and again before its release hears "not
    released yet" each time and still gets a screen, with its token, when it opens: the
    screens limit (ten a minute for an account or a device) counts the screens that issue
    a token, not the refused ones."""
    platform = world.platform
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    later, = platform.run(catalog.schedule_sessions, world.doctor_id,
                          [today + dt.timedelta(days=5)], [Period.AFTERNOON], 5, 5000,
                          release_days_before=1)
    _, _, token = world.patient_account("early.bird")
    early = [client.get(f"/api/v1/sessions/{later.id}/booking-screen", headers=auth(token))
             for _ in range(12)]
    assert {(r.status_code, r.json()["code"]) for r in early} == {(409, "not_released")}
    released = client.get(f"/api/v1/sessions/{world.session_ids[0]}/booking-screen",
                          headers=auth(token))
    assert released.status_code == 200, released.text
    assert released.json()["action_token"]


def test_a_booking_without_the_screens_token_is_refused(client: TestClient,
                                                         world: World) -> None:
    _, (pid,), token = world.patient_account("api.bot")
    body = {"session_id": world.session_ids[0], "patient_id": pid}
    r = client.post("/api/v1/bookings", headers=auth(token), json=body)
    assert r.status_code == 403 and r.json()["code"] == "token_missing"
    screen = client.get(f"/api/v1/sessions/{world.session_ids[0]}/booking-screen",
                        headers=auth(token)).json()
    fast = {**auth(token), screen["token_header"]: screen["action_token"]}
    r = client.post("/api/v1/bookings", headers=fast, json=body)  # 0 s after the screen
    assert r.status_code == 403 and r.json()["code"] == "token_too_early"

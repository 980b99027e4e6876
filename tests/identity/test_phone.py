"""Phones are verified by a one-time code. Before, a random valid number always worked: the
red team made 85 accounts in 74 s and each could book at once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.storage import tables as t
from fairslot.web.app import create_app
from tests.conftest import PASSWORD, World, api_book
from tests.identity.helpers import last_code


@pytest.fixture
def client(world: World) -> TestClient:
    return TestClient(create_app(world.platform))


def _register(client: TestClient, name: str, phone: str, **extra: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/register",
                    json={"username": name, "password": PASSWORD, "phone": phone, **extra})
    assert r.status_code == 201, r.text
    assert r.json()["phone_verified"] is False
    r = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_an_unverified_account_cannot_add_book_or_enter_until_it_types_the_code(
        client: TestClient, world: World) -> None:
    headers = _register(client, "farm.bot01", "13712345678")
    person = world.residents.pop()
    r = client.post("/api/v1/me/patients", headers=headers,
                    json={"id_number": person.id_number, "name": person.name})
    assert r.status_code == 403 and r.json()["code"] == "phone_not_verified"

    code = last_code(world.platform, "+8613712345678", "phone.code")
    r = client.post("/api/v1/me/phone/verify", headers=headers, json={"code": code})
    assert r.status_code == 200 and r.json()["phone_verified"] is True
    r = client.post("/api/v1/me/patients", headers=headers,
                    json={"id_number": person.id_number, "name": person.name})
    assert r.status_code == 201, r.text
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    r = api_book(client, headers["Authorization"][7:], world.session_ids[0], r.json()["id"],
                 clock)
    assert r.status_code == 201, r.text


def test_an_unverified_account_is_refused_at_booking_and_entering(world: World) -> None:
    from fairslot.domain.errors import Forbidden
    from fairslot.services import accounts, booking
    from fairslot.services.context import RequestContext
    from fairslot.services.release import entries

    verified, patient_ids, _ = world.patient_account("real.family")
    with world.platform.uow() as uow:  # the phone number changes hands: verification lapses
        stored = uow.accounts.get(verified.id or 0)
        assert stored is not None
        stored.phone_verified_at = None
        uow.commit()
    unverified = world.platform.run(accounts.authenticate,
                                    world.platform.run(accounts.issue_token, verified.id or 0))
    with pytest.raises(Forbidden) as refused:
        world.platform.run(booking.book, unverified, patient_ids[0], world.session_ids[0],
                           RequestContext())
    assert refused.value.code == "phone_not_verified"
    with pytest.raises(Forbidden):
        world.platform.run(entries.enter, unverified, 1, patient_ids[0], [1],
                           RequestContext())


def test_codes_are_hashed_short_lived_and_allow_few_tries(client: TestClient,
                                                          world: World) -> None:
    headers = _register(client, "li.lei", "13612345678")
    code = last_code(world.platform, "+8613612345678")
    with world.platform.engine.connect() as conn:
        stored = conn.execute(sa.select(t.verification_codes.c.code_hash)).scalars().all()
    assert stored and all(code not in h and len(h) == 64 for h in stored)

    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1, 0):
        r = client.post("/api/v1/me/phone/verify", headers=headers, json={"code": wrong})
        assert r.status_code == 422 and r.json()["code"] == "code_wrong", r.text
        assert r.json()["tries_left"] == left
    r = client.post("/api/v1/me/phone/verify", headers=headers, json={"code": code})
    assert r.json()["code"] == "code_expired"  # spent by the wrong tries

    r = client.post("/api/v1/me/phone/code", headers=headers)
    assert r.status_code == 200 and r.json()["sent_to"] == "136****5678"
    fresh = last_code(world.platform, "+8613612345678")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(11 * 60)  # past its ten minutes
    r = client.post("/api/v1/me/phone/verify", headers=headers, json={"code": fresh})
    assert r.json()["code"] == "code_expired"


def test_codes_to_one_phone_are_rate_limited(client: TestClient, world: World) -> None:
    headers = _register(client, "flood.er", "13512345678")  # the first code
    for _ in range(4):
        assert client.post("/api/v1/me/phone/code", headers=headers).status_code == 200
    r = client.post("/api/v1/me/phone/code", headers=headers)
    assert r.status_code == 429 and r.json()["code"] == "codes_rate_limited"
    assert int(r.headers["Retry-After"]) > 0
    # another account cannot flood that number either
    other = _register(client, "flood.er2", "13412345678")
    r = client.post("/api/v1/me/phone", headers=other, json={"phone": "13512345678"})
    assert r.status_code == 429 and r.json()["code"] == "codes_rate_limited"


def test_changing_phone_keeps_the_old_number_until_the_new_one_is_verified(
        client: TestClient, world: World) -> None:
    headers = _register(client, "mover", "13312345678")
    client.post("/api/v1/me/phone/verify", headers=headers,
                json={"code": last_code(world.platform, "+8613312345678")})
    r = client.post("/api/v1/me/phone", headers=headers, json={"phone": "18912345678"})
    assert r.status_code == 200 and r.json()["sent_to"] == "189****5678"
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["phone"] == "133****5678" and me["phone_verified"] is True
    r = client.post("/api/v1/me/phone/verify", headers=headers,
                    json={"code": last_code(world.platform, "+8618912345678")})
    assert r.json()["phone"] == "189****5678" and r.json()["phone_verified"] is True


def test_a_phone_backs_at_most_two_verified_accounts(client: TestClient, world: World) -> None:
    phone = "13212345678"
    # Unverified registrations do not use up the number (nobody can block a stranger's
    # phone by typing it in); verifying is where the limit holds.
    farm, codes = [], []
    for n in range(3):
        farm.append(_register(client, f"shared{n}", phone))
        codes.append(last_code(world.platform, "+86" + phone))
    results = [client.post("/api/v1/me/phone/verify", headers=h, json={"code": c})
               for h, c in zip(farm, codes, strict=True)]
    assert [r.status_code for r in results[:2]] == [200, 200]
    assert results[2].json()["code"] == "quota_accounts_per_phone"
    r = client.post("/api/v1/auth/register",
                    json={"username": "shared3", "password": PASSWORD, "phone": phone})
    assert r.status_code == 409 and r.json()["code"] == "quota_accounts_per_phone"


def test_the_phone_page_verifies_with_the_code(world: World) -> None:
    client = TestClient(create_app(world.platform))
    page = client.get("/register")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    r = client.post("/register", data={"csrf": csrf, "username": "page.user",
                                       "password": PASSWORD, "phone": "13112345678"},
                    follow_redirects=True)
    assert r.status_code == 200 and "未验证" in r.text
    csrf = r.text.split('name="csrf" value="')[1].split('"')[0]
    r = client.post("/me/phone/verify", data={"csrf": csrf, "code": "000000"},
                    follow_redirects=True)
    assert r.status_code == 422 and "wrong code" in r.text
    r = client.post("/me/phone/verify", data={
        "csrf": csrf, "code": last_code(world.platform, "+8613112345678")},
        follow_redirects=True)
    assert r.status_code == 200 and "手机号已验证" in r.text

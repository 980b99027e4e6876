"""Devices are minted by the server alone: a browser keeps a signed cookie, an app sends
back the signed id it was given; anything a client makes up is no device at all, which is
a risk and is counted by the IP prefix, never a fresh device with a clean record."""

from __future__ import annotations

import pytest

from fairslot.clock import FixedClock
from fairslot.guard import Requester

from .conftest import Events, GuardFactory, asgi_call, build_app, client_for

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def test_a_browser_gets_a_signed_device_cookie_and_keeps_its_id(
    make_guard: GuardFactory,
) -> None:
    app = build_app(make_guard())
    async with client_for(app, "198.51.100.20") as browser:
        first = await browser.get("/whoami")
        cookie = first.headers["set-cookie"]
        second = await browser.get("/whoami")
        third = await browser.get("/whoami")
    assert cookie.startswith("fs_device=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie
    # The request that brought no cookie has no device; the next ones have the minted one.
    assert first.json()["device_id"] is None
    assert "set-cookie" not in second.headers
    assert second.json()["device_id"] is not None
    assert second.json()["device_id"] == third.json()["device_id"]
    assert second.json()["device_id"] in cookie


@pytest.mark.parametrize(
    ("setting", "scheme", "peer", "proto", "secure"),
    [
        (None, "http", "198.51.100.20", None, False),  # plain HTTP: the cookie must come back
        (None, "https", "198.51.100.20", None, True),  # our own TLS
        (None, "http", "10.0.0.5", "https", True),  # a trusted proxy terminated TLS
        (None, "http", "198.51.100.20", "https", False),  # an untrusted peer's claim
        (None, "http", "10.0.0.5", "http", False),
        (True, "http", "198.51.100.20", None, True),  # forced by the setting
        (False, "https", "198.51.100.20", None, False),
    ],
)
async def test_the_device_cookie_is_secure_when_the_request_came_over_https(
    make_guard: GuardFactory, setting: bool | None, scheme: str, peer: str,
    proto: str | None, secure: bool,
) -> None:
    app = build_app(make_guard(guard_device_cookie_secure=setting))
    headers = {"x-forwarded-proto": proto} if proto else {}
    async with client_for(app, peer, scheme=scheme) as browser:
        cookie = (await browser.get("/whoami", headers=headers)).headers["set-cookie"]
    assert ("; Secure" in cookie) is secure


async def test_a_forged_cookie_or_an_invented_device_header_is_no_device(
    make_guard: GuardFactory,
) -> None:
    app = build_app(make_guard())
    for headers in ({"cookie": "fs_device=abc.forged"},
                    {"cookie": "fs_device=AAAAAAAAAAAAAAAAAAAA.68000000.AAAAAAAAAAAAAAAAAAAAAA"},
                    {"x-device-id": "ios-1234"},
                    {"x-device-id": "AAAAAAAAAAAAAAAAAAAA.68000000.AAAAAAAAAAAAAAAAAAAAAA"}):
        status, response, body = await asgi_call(app, "GET", "/whoami", ip="198.51.100.20",
                                                  headers=headers)
        assert status == 200
        assert b'"device_id":null' in body, headers
        assert "set-cookie" in response and "x-device-id" in response  # a new one offered


async def test_an_app_sends_back_the_signed_id_the_server_gave_it(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    app = build_app(make_guard())
    _, first, _ = await asgi_call(app, "GET", "/whoami", ip="198.51.100.20")
    given = first["x-device-id"]
    _, again, body = await asgi_call(app, "GET", "/whoami", ip="198.51.100.20",
                                     headers={"x-device-id": given})
    assert given.split(".")[0] in body.decode()
    assert "x-device-id" not in again and "set-cookie" not in again
    # A signed id from another server (another secret) is not ours.
    other = build_app(make_guard(secret_key="another-secret-" + "y" * 40))
    _, _, body = await asgi_call(other, "GET", "/whoami", ip="198.51.100.20",
                                 headers={"x-device-id": given})
    assert b'"device_id":null' in body


async def test_dropping_the_cookie_never_gives_a_fresh_device(
    make_guard: GuardFactory, events: Events,
) -> None:
    # Registration allows 5 a day per device. A farm that throws its cookie away after
    # each registration, and even changes address within its /24, shares one bucket.
    app = build_app(make_guard())
    served = []
    for n in range(8):
        status, _, _ = await asgi_call(app, "POST", "/register", ip=f"203.0.113.{10 + n}")
        served.append(status)
    assert served == [200] * 5 + [429] * 3
    refusals = [e for e in events if e.decision == "deny"]
    assert {e.key for e in refusals} == {"device"}
    assert {e.key_hash for e in refusals} == {"none@203.0.113.0/24"}
    # A person in another network with a browser that keeps its cookie is not affected.
    async with client_for(app, "198.51.100.20") as person:
        await person.get("/whoami")
        assert (await person.post("/register")).status_code == 200


async def test_a_missing_or_new_device_is_a_risk_and_an_aged_one_is_not(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    guard = make_guard(guard_device_young_seconds=900)
    await guard.set_level("entering", "elevated")
    app = build_app(guard)
    async with client_for(app, "198.51.100.20") as browser:
        no_device = await browser.post("/enter", headers={"x-account": "mother"})
        assert "set-cookie" in no_device.headers  # from now on it has one ...
        young = await browser.post("/enter", headers={"x-account": "mother"})
        clock.advance(901)  # ... which is no longer new a quarter of an hour later
        settled = await browser.post("/enter", headers={"x-account": "mother"})
    assert no_device.status_code == 403 and no_device.json()["code"] == "challenge_required"
    assert young.status_code == 403 and young.json()["code"] == "challenge_required"
    assert settled.status_code == 200
    passed = await guard.decide(Requester("198.51.100.20", None), "browsing")
    assert passed.risk == 1


async def test_the_guard_counts_distinct_accounts_per_device(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    app = build_app(guard)
    async with client_for(app, "198.51.100.20") as browser:
        await browser.get("/whoami")
        for account in ("a", "b", "a", "c"):
            await browser.post("/enter", headers={"x-account": account})
        device = (await browser.get("/whoami")).json()["device_id"]
    passed = await guard.decide(Requester("198.51.100.20", device), "entering", account_id="d")
    assert passed.device_accounts == 4
    # Without a device there is no set to count: the request is a risk instead.
    anonymous = await guard.decide(Requester("198.51.100.20"), "entering", account_id="e")
    assert anonymous.device_accounts is None and anonymous.risk == 1

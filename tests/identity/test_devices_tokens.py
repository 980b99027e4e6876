"""Devices and action tokens, end to end through the real application (the guard's own
tests check its parts). The red team: a made-up ``X-Device-Id`` passed a cookieless log-in
at ``elevated`` without a challenge; dropping the device cookie gave a fresh device every
time (8 of 8 registrations past the limit of 5); over plain HTTP the ``Secure`` device
cookie never came back; a spent action token was accepted again after a restart
(embedded mode, no Redis)."""

from __future__ import annotations

import pathlib

from fastapi.testclient import TestClient

from fairslot.bootstrap import bootstrap
from fairslot.clock import FixedClock
from fairslot.services import booking
from fairslot.services.context import RequestContext
from fairslot.web.app import create_app
from tests.conftest import PASSWORD, World, build_world, make_settings


def _set_cookie(response: object) -> str:
    headers = response.headers  # type: ignore[attr-defined]
    return next((v for v in headers.get_list("set-cookie") if v.startswith("fs_device=")), "")


def test_the_device_cookie_is_secure_only_over_https_and_comes_back_over_http(
        world: World) -> None:
    app = create_app(world.platform)
    plain = TestClient(app, base_url="http://hospital.test")
    first = plain.get("/api/v1/hospitals")
    cookie = _set_cookie(first)
    assert cookie and "secure" not in cookie.lower() and "httponly" in cookie.lower()
    second = plain.get("/api/v1/hospitals")
    assert _set_cookie(second) == ""  # it came back: the same device, no new one
    tls = TestClient(app, base_url="https://hospital.test")
    assert "secure" in _set_cookie(tls.get("/api/v1/hospitals")).lower()


def test_an_invented_device_header_is_no_device_and_is_challenged_at_elevated(
        world: World) -> None:
    world.patient_account("mother.li")
    with TestClient(create_app(world.platform)) as client:
        client.portal.call(client.app.state.guard.set_level, "login", "elevated")
        bot = TestClient(client.app)  # no cookie
        r = bot.post("/api/v1/auth/login", json={"username": "mother.li", "password": PASSWORD},
                     headers={"X-Device-Id": "ios-made-up-0001"})
        assert r.status_code == 403 and r.json()["code"] == "challenge_required", r.text
        # The signed id the server minted, sent back as the app does, is a device.
        minted = r.headers["x-device-id"]
        assert minted != "ios-made-up-0001" and minted.count(".") == 2


def test_dropping_the_device_cookie_never_buys_more_registrations(world: World) -> None:
    app = create_app(world.platform)
    answers = []
    for n in range(8):
        fresh = TestClient(app)  # a new client: no cookie, as a farm that drops it
        r = fresh.post("/api/v1/auth/register", json={
            "username": f"dropper{n}", "password": PASSWORD, "phone": f"1390000{n:04d}"})
        answers.append(r.status_code)
    assert answers[:5] == [201] * 5 and set(answers[5:]) == {429}


def test_a_spent_action_token_stays_spent_after_a_restart_in_embedded_mode(
        tmp_path: pathlib.Path, clock: FixedClock, sqlite_template: pathlib.Path) -> None:
    import shutil

    db = tmp_path / "fairslot.db"
    shutil.copyfile(sqlite_template, db)
    settings = make_settings(database_url=f"sqlite:///{db}", redis_url=None,
                             guard_ledger_path=str(tmp_path / "var" / "guard-ledger.db"))
    platform = bootstrap(settings, clock=clock)
    world = build_world(platform)
    account, (patient_id,), token = world.patient_account("replayer")
    headers = {"Authorization": f"Bearer {token}"}
    session_id = world.session_ids[0]
    with TestClient(create_app(platform)) as before:
        screen = before.get(f"/api/v1/sessions/{session_id}/booking-screen", headers=headers)
        spent = {screen.json()["token_header"]: screen.json()["action_token"]}
        clock.advance(3)
        r = before.post("/api/v1/bookings", headers={**headers, **spent},
                        json={"session_id": session_id, "patient_id": patient_id})
        assert r.status_code == 201, r.text
    # Cancelled, so that only the spent token stands between a replay and a second booking.
    platform.run(booking.cancel, account, r.json()["id"], RequestContext())
    # The server stops and starts again (same database, same ledger file, no Redis).
    clock.advance(5)
    with TestClient(create_app(bootstrap(settings, clock=clock))) as after:
        r = after.post("/api/v1/bookings", headers={**headers, **spent},
                       json={"session_id": session_id, "patient_id": patient_id})
        assert r.status_code == 403 and r.json()["code"] == "token_replayed", r.text

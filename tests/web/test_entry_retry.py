"""Entering a round over HTTP with an ``Idempotency-Key``: a retry whose answer was lost
gets the first request's entry back without a new action token, and acts no more; a new
key still needs the screen's token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.web.app import create_app
from tests.conftest import build_world
from tests.independent.test_verifier_agrees import _draw_round, _headers, _round_of


def test_a_retry_with_the_same_key_returns_the_first_entry_and_needs_no_token(
        platform: Platform, clock: FixedClock) -> None:
    world = build_world(platform, residents=20)
    _, sessions = _draw_round(platform, clock, world)
    with TestClient(create_app(platform)) as client:
        round_id = _round_of(client, sessions)
        _account, (patient,), token = world.patient_account("retrier", patients=1)
        screen = client.get(f"/api/v1/rounds/{round_id}/entry-screen",
                            headers=_headers(token)).json()
        clock.advance(2)
        url = f"/api/v1/rounds/{round_id}/entries"
        body = {"patient_id": patient, "choices": sessions[:2]}
        first = client.post(url, json=body, headers={
            **_headers(token), "Idempotency-Key": "visit-1",
            screen["token_header"]: screen["action_token"]})
        assert first.status_code == 201, first.text

        retry = client.post(url, json={"patient_id": patient, "choices": sessions[2:3]},
                            headers={**_headers(token), "Idempotency-Key": "visit-1"})
        assert retry.status_code == 201, retry.text
        assert retry.json()["id"] == first.json()["id"]
        assert retry.json()["receipt"] == first.json()["receipt"]  # nothing changed

        fresh = client.post(url, json={"patient_id": patient, "choices": sessions[2:3]},
                            headers={**_headers(token), "Idempotency-Key": "visit-2"})
        assert (fresh.status_code, fresh.json()["code"]) == (403, "token_missing")
        assert fresh.headers["content-type"].startswith("application/problem+json")
        mine = client.get("/api/v1/me/entries", headers=_headers(token)).json()
        assert [e["choices"] for e in mine] == [sessions[:2]]

"""A flood from one address is refused while a person elsewhere is served every time."""

from __future__ import annotations

import json

import pytest

from fairslot.clock import FixedClock

from .conftest import Events, GuardFactory, asgi_call, build_app, client_for

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

FLOOD = 10_000
HUMAN_EVERY = 1_000


async def test_one_ip_flooding_bookings_is_refused_while_a_human_is_always_served(
    make_guard: GuardFactory, clock: FixedClock, events: Events
) -> None:
    guard = make_guard(guard_allow_event_every=100)
    app = build_app(guard)
    refused = served = 0
    human_results: list[int] = []
    async with client_for(app, "198.51.100.20") as human:
        await human.get("/whoami")  # the person's browser gets its device cookie
        for i in range(FLOOD):
            # The bot fans out over accounts and patients and forges X-Forwarded-For;
            # none of that moves it out of its address's bucket.
            status, headers, body = await asgi_call(
                app, "POST", f"/book/s{i % 7}", ip="203.0.113.7",
                headers={"x-account": f"bot{i % 300}", "x-patient": f"p{i}",
                         "x-forwarded-for": f"100.64.{i % 250}.{i % 200}"},
            )
            if status == 429:
                refused += 1
            elif status == 200:
                served += 1
            if i % HUMAN_EVERY == HUMAN_EVERY // 2:
                person = {"x-account": "mother", "x-patient": f"child{(i // HUMAN_EVERY) % 2}"}
                page = await human.get("/slots/s1", headers=person)
                human_results.append(page.status_code)
                clock.advance(20)  # reads the page, then confirms
                confirm = await human.post(
                    "/confirm/s1",
                    headers={**person, "x-fairslot-action-token": page.json()["token"]},
                )
                human_results.append(confirm.status_code)
    assert refused + served == FLOOD
    assert refused / FLOOD >= 0.99, (refused, served)
    assert human_results == [200] * (2 * FLOOD // HUMAN_EVERY)
    # The last answer the bot got is a complete problem+json refusal.
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "rate_limited" and problem["status"] == 429
    assert {"type", "title", "detail"} <= problem.keys()
    assert int(headers["retry-after"]) >= 1
    assert headers["ratelimit-remaining"] == "0"
    assert int(headers["ratelimit-limit"]) >= 1
    denials = [e for e in events if e.decision == "deny"]
    assert len(denials) == refused
    assert {e.key for e in denials} <= {"ip", "prefix", "account", "patient", "device"}
    # The bot sends no device: its device-keyed limit (12 a minute) is its /24's, and
    # refuses first; forged addresses and rotating accounts change nothing.
    assert denials[0].key == "device" and denials[0].limit == "12 per 1 minute"
    assert denials[0].key_hash == "none@203.0.113.0/24"
    assert all(e.client_ip == "203.0.113.7" for e in denials)

"""An action needs the single-use token its page issued, not too soon and only once."""

from __future__ import annotations

import pytest

from fairslot.clock import FixedClock

from .conftest import Events, GuardFactory, build_app, client_for

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

MOTHER = {"x-account": "mother"}


async def test_a_token_works_once_after_the_minimum_age_and_never_again(
    make_guard: GuardFactory, clock: FixedClock, events: Events
) -> None:
    app = build_app(make_guard())
    async with client_for(app, "198.51.100.20") as person:
        token = (await person.get("/slots/s1", headers=MOTHER)).json()["token"]
        with_token = {**MOTHER, "x-fairslot-action-token": token}

        early = await person.post("/confirm/s1", headers=with_token)
        assert early.status_code == 403
        assert early.json()["code"] == "token_too_early"

        clock.advance(1.6)
        assert (await person.post("/confirm/s1", headers=with_token)).status_code == 200

        replay = await person.post("/confirm/s1", headers=with_token)
        assert replay.status_code == 403
        assert replay.json()["code"] == "token_replayed"
    assert [e.reason for e in events if e.decision == "deny"] == [
        "token_too_early", "token_replayed",
    ]


async def test_a_client_that_skips_the_page_has_no_token_and_is_refused(
    make_guard: GuardFactory,
) -> None:
    app = build_app(make_guard())
    async with client_for(app, "198.51.100.20") as bot:
        response = await bot.post("/confirm/s1", headers=MOTHER)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "token_missing"


async def test_a_token_is_bound_to_its_account_and_target(
    make_guard: GuardFactory, clock: FixedClock
) -> None:
    app = build_app(make_guard())
    async with client_for(app, "198.51.100.20") as person:
        token = (await person.get("/slots/s1", headers=MOTHER)).json()["token"]
        clock.advance(5)
        other_slot = await person.post(
            "/confirm/s2", headers={**MOTHER, "x-fairslot-action-token": token}
        )
        other_account = await person.post(
            "/confirm/s1", headers={"x-account": "broker", "x-fairslot-action-token": token}
        )
        forged = await person.post(
            "/confirm/s1", headers={**MOTHER, "x-fairslot-action-token": token[:-2] + "AA"}
        )
    assert [r.json()["code"] for r in (other_slot, other_account, forged)] == [
        "token_invalid", "token_invalid", "token_invalid",
    ]


async def test_a_token_expires(make_guard: GuardFactory, clock: FixedClock) -> None:
    guard = make_guard(guard_token_ttl_seconds=60)
    app = build_app(guard)
    async with client_for(app, "198.51.100.20") as person:
        token = (await person.get("/slots/s1", headers=MOTHER)).json()["token"]
        clock.advance(61)
        late = await person.post(
            "/confirm/s1", headers={**MOTHER, "x-fairslot-action-token": token}
        )
    assert late.json()["code"] == "token_expired"

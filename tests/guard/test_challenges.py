"""Proof of work: asked for by level or risk, bound to account and action, used once."""

from __future__ import annotations

import base64
import json

import pytest

from fairslot.clock import FixedClock
from fairslot.guard import Guard

from .conftest import Events, GuardFactory, build_app, client_for, solve

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def test_under_attack_a_request_must_solve_a_challenge_and_may_use_it_once(
    make_guard: GuardFactory, events: Events
) -> None:
    guard = make_guard()
    await guard.set_level("entering", "under_attack")
    app = build_app(guard)
    async with client_for(app, "198.51.100.20") as person:
        first = await person.post("/enter", headers={"x-account": "mother"})
        assert first.status_code == 403
        problem = first.json()
        assert problem["code"] == "challenge_required"
        solved = solve(problem["challenge"])

        headers = {"x-account": "mother", "x-fairslot-pow": solved}
        assert (await person.post("/enter", headers=headers)).status_code == 200
        replay = await person.post("/enter", headers=headers)
    assert replay.status_code == 403 and replay.json()["code"] == "challenge_required"
    assert [e.reason for e in events if e.decision == "challenge"] == [
        "challenge_required", "challenge_replayed",
    ]


async def test_a_solution_for_another_account_or_action_is_refused(
    make_guard: GuardFactory, events: Events
) -> None:
    guard = make_guard()
    await guard.set_level("entering", "under_attack")
    app = build_app(guard)
    for_other_account = await guard.new_challenge("entering", account_id="broker")
    for_other_action = await guard.new_challenge("entering", account_id="mother",
                                                 action="pay")
    async with client_for(app, "198.51.100.20") as person:
        for challenge in (for_other_account, for_other_action):
            response = await person.post(
                "/enter", headers={"x-account": "mother", "x-fairslot-pow": solve(challenge)}
            )
            assert response.status_code == 403
    assert [e.reason for e in events if e.decision == "challenge"] == [
        "challenge_mismatch", "challenge_mismatch",
    ]


async def test_an_expired_or_tampered_solution_is_refused(
    make_guard: GuardFactory, clock: FixedClock, events: Events
) -> None:
    guard = make_guard(guard_challenge_ttl_seconds=30)
    await guard.set_level("entering", "under_attack")
    app = build_app(guard)
    challenge = await guard.new_challenge("entering", account_id="mother")
    solved = solve(challenge)
    data = json.loads(base64.b64decode(solved))
    data["number"] += 1
    tampered = base64.b64encode(json.dumps(data).encode()).decode()
    async with client_for(app, "198.51.100.20") as person:
        await person.post("/enter", headers={"x-account": "mother", "x-fairslot-pow": tampered})
        clock.advance(31)
        await person.post("/enter", headers={"x-account": "mother", "x-fairslot-pow": solved})
        await person.post("/enter", headers={"x-account": "mother", "x-fairslot-pow": "!!"})
    assert [e.reason for e in events if e.decision == "challenge"] == [
        "challenge_invalid", "challenge_expired", "challenge_invalid",
    ]


async def test_at_normal_level_no_challenge_is_asked(make_guard: GuardFactory) -> None:
    app = build_app(make_guard())
    async with client_for(app, "198.51.100.20") as person:
        response = await person.post("/enter", headers={"x-account": "mother"})
    assert response.status_code == 200


async def test_elevated_level_challenges_only_risky_requesters_harder_with_risk(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    guard: Guard = make_guard(guard_device_accounts_risky=2)
    await guard.set_level("entering", "elevated")
    app = build_app(guard)
    async with client_for(app, "198.51.100.20") as person:
        await person.get("/whoami")
        clock.advance(3600)  # a browser with its cookie since an hour: not risky
        for n in (1, 2):
            assert (await person.post("/enter", headers={"x-account": f"a{n}"})).status_code == 200
        # The same device now signs in to account after account, as a farm does.
        third = await person.post("/enter", headers={"x-account": "a3"})
        await person.post("/enter", headers={"x-account": "a4"})
        busy_device = await person.post("/enter", headers={"x-account": "a5"})
    async with client_for(app, "198.51.100.30") as cookieless:
        new_device = await cookieless.post("/enter", headers={"x-account": "b1"})
    assert third.status_code == 403 and third.json()["code"] == "challenge_required"
    assert busy_device.status_code == 403 and new_device.status_code == 403
    # Five accounts on a device with threshold 2 is two risk points; no device is one.
    assert (busy_device.json()["challenge"]["maxNumber"]
            > new_device.json()["challenge"]["maxNumber"])

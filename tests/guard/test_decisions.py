"""Decisions about one requester (block, challenge, hold for review), with a lifetime, are
enforced by every worker within a second of being made or lifted."""

from __future__ import annotations

import datetime as dt

import pytest
import redis

from fairslot.clock import FixedClock
from fairslot.guard import Blocked, ChallengeRequired, RateLimited, Requester

from .conftest import Events, GuardFactory, asgi_call, build_app, solve

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

TEN_MINUTES = dt.timedelta(minutes=10)
BOT = Requester("203.0.113.9", "bot-device")
PERSON = Requester("198.51.100.20", "person-device")


async def test_a_block_made_on_one_worker_is_enforced_by_another_within_a_second(
    make_guard: GuardFactory, clock: FixedClock, events: Events,
) -> None:
    one, two = make_guard(), make_guard()
    await two.decide(BOT, "search")  # the second worker has just read the decisions
    decision = await one.decisions.apply("block", "ip", "203.0.113.9", lifetime=TEN_MINUTES,
                                         reason="request_rate_ip")
    with pytest.raises(Blocked) as refused:
        await one.decide(BOT, "search")  # at once where it was made
    assert refused.value.headers["Retry-After"] == "600"
    clock.advance(0.5)
    await two.decide(BOT, "search")  # still within the second worker's one-second read
    clock.advance(0.5)
    with pytest.raises(Blocked):
        await two.decide(BOT, "search")
    await two.decide(PERSON, "search")  # nobody else is affected
    assert [e.reason for e in events if e.decision == "deny"] == ["blocked", "blocked"]

    assert await two.decisions.lift(decision.id) is True
    clock.advance(1.0)
    await one.decide(BOT, "search")


async def test_a_decision_ends_at_its_lifetime_without_anyone_lifting_it(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    guard = make_guard()
    await guard.decisions.apply("block", "prefix", "203.0.113.0/24", lifetime=TEN_MINUTES)
    with pytest.raises(Blocked):
        await guard.decide(Requester("203.0.113.200", "d"), "browsing")
    clock.advance(600)
    await guard.decide(Requester("203.0.113.200", "d"), "browsing")
    assert await guard.decisions.active() == []


async def test_a_challenge_decision_forces_proof_of_work_on_every_worker(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    one, two = make_guard(), make_guard()
    await one.decisions.apply("challenge", "account", "broker-7", lifetime=TEN_MINUTES,
                              level="under_attack")
    clock.advance(1.0)
    with pytest.raises(ChallengeRequired) as asked:
        await two.decide(PERSON, "entering", account_id="broker-7")
    passed = await two.decide(PERSON, "entering", account_id="broker-7",
                              pow_payload=solve(asked.value.extra["challenge"]))
    assert passed.level == "under_attack"
    # Other accounts at the group's own level (normal): no challenge.
    assert (await two.decide(PERSON, "entering", account_id="mother")).level == "normal"


async def test_a_challenge_decision_raises_the_cost_of_browsing(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard(guard_limits={"browsing": {"ip": "40/minute", "prefix": "none",
                                                  "device": "none"}})
    await guard.decisions.apply("challenge", "device", "bot-device", lifetime=TEN_MINUTES)
    served = 0
    for _ in range(40):
        try:
            await guard.decide(BOT, "browsing")
        except RateLimited:
            continue
        served += 1
    assert served == 20  # page views are never challenged; at elevated each counts twice


async def test_a_hold_lets_the_request_through_and_names_the_decision(
    make_guard: GuardFactory, events: Events,
) -> None:
    guard = make_guard()
    hold = await guard.decisions.apply("hold", "patient", "p-42", lifetime=TEN_MINUTES,
                                       reason="t4_cancel_rebook")
    passed = await guard.decide(PERSON, "booking", account_id="mother", patient_id="p-42")
    assert passed.held_for_review == (hold.id,)
    other = await guard.decide(PERSON, "booking", account_id="mother", patient_id="p-43")
    assert other.held_for_review == ()
    assert [e.reason for e in events if e.decision == "allow"] == ["held_for_review", "ok"]


async def test_a_blocked_request_gets_a_problem_with_retry_after(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    await guard.decisions.apply("block", "ip", "203.0.113.9", lifetime=TEN_MINUTES)
    status, headers, body = await asgi_call(build_app(guard), "POST", "/book/s1",
                                            ip="203.0.113.9", headers={"x-account": "a"})
    assert status == 403
    assert headers["content-type"] == "application/problem+json"
    assert b'"code":"blocked"' in body
    assert int(headers["retry-after"]) == 600


async def test_without_redis_decisions_hold_in_the_process(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    guard = make_guard(redis_url=None)
    decision = await guard.decisions.apply("block", "payer", "alipay:gangpay01",
                                           lifetime=TEN_MINUTES)
    with pytest.raises(Blocked):
        await guard.decide(PERSON, "payment", account_id="a", payer="alipay:gangpay01")
    assert [d.id for d in await guard.decisions.lookup("payer", "alipay:gangpay01")] == [
        decision.id]
    assert await guard.decisions.lift(decision.id) is True
    await guard.decide(PERSON, "payment", account_id="a", payer="alipay:gangpay01")


async def test_redis_holds_keyed_hashes_not_identifiers(
    make_guard: GuardFactory, redis_url: str, prefix: str,
) -> None:
    guard = make_guard()
    await guard.decisions.apply("hold", "payer", "wechat:gangpay01", lifetime=TEN_MINUTES)
    await guard.decisions.apply("block", "account", "account-31337", lifetime=TEN_MINUTES)
    client = redis.Redis.from_url(redis_url)
    try:
        stored = b"".join(client.hvals(prefix + "decisions"))
    finally:
        client.close()
    assert b"gangpay01" not in stored and b"31337" not in stored
    assert guard.keys.pseudonym("payer", "wechat:gangpay01").encode() in stored


async def test_the_same_decision_id_replaces_the_earlier_record(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    guard = make_guard()
    for minutes in (10, 30):
        await guard.decisions.apply("block", "ip", "203.0.113.9", decision_id="alert-17:block",
                                    lifetime=dt.timedelta(minutes=minutes))
    clock.advance(1.0)
    active = await guard.decisions.active()
    assert [(d.id, d.until - d.created) for d in active] == [("alert-17:block", 1800.0)]


async def test_malformed_decisions_are_refused_and_change_nothing(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    with pytest.raises(ValueError, match="/24"):
        await guard.decisions.apply("block", "prefix", "203.0.0.0/16", lifetime=TEN_MINUTES)
    with pytest.raises(ValueError, match="lifetime"):
        await guard.decisions.apply("block", "ip", "203.0.113.9", lifetime=dt.timedelta(0))
    with pytest.raises(ValueError, match="level"):
        await guard.decisions.apply("hold", "ip", "203.0.113.9", lifetime=TEN_MINUTES,
                                    level="under_attack")
    with pytest.raises(ValueError):
        await guard.decisions.apply("ban", "ip", "203.0.113.9", lifetime=TEN_MINUTES)
    assert await guard.decisions.active() == []

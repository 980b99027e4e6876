"""Log-in throttling: limits per account, address, prefix and device; a proof of work from
the third failure in a row, then an exponential wait; a patient's own device is never
locked out by someone failing elsewhere. On Redis and in process alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fairslot.clock import FixedClock
from fairslot.guard import ChallengeRequired, Guard, RateLimited, Requester
from fairslot.guard.login import LoginAttempt

from .conftest import Events, GuardFactory, build_app, client_for, solve

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

ATTACKER = Requester("203.0.113.66", "attacker-device")
PATIENT = Requester("198.51.100.20", "patient-phone")


@pytest.fixture(params=["redis", "in-process"])
def login_guard(request: pytest.FixtureRequest, make_guard: GuardFactory
                ) -> Callable[..., Guard]:
    """A guard on Redis, or one without Redis: the same rules must hold in both."""
    def factory(**overrides: Any) -> Guard:
        if request.param == "in-process":
            overrides["redis_url"] = None
        return make_guard(**overrides)
    return factory


async def attempt(guard: Guard, who: Requester, username: str, *, right: bool,
                  pow_payload: str | None = None) -> LoginAttempt:
    """One log-in as the service makes it: ask the throttle, check, report the outcome."""
    ticket = await guard.login.before_attempt(username, who, pow_payload=pow_payload)
    if right:
        await guard.login.after_success(ticket)
    else:
        await guard.login.after_failure(ticket)
    return ticket


async def attempt_solving(guard: Guard, who: Requester, username: str, *,
                          right: bool) -> dict[str, Any] | None:
    """An attempt that solves the proof of work if asked; returns the challenge it met."""
    try:
        await attempt(guard, who, username, right=right)
        return None
    except ChallengeRequired as asked:
        challenge: dict[str, Any] = asked.extra["challenge"]
    await attempt(guard, who, username, right=right, pow_payload=solve(challenge))
    return challenge


async def test_from_the_third_failure_each_attempt_solves_a_harder_proof_of_work(
    login_guard: Callable[..., Guard], events: Events,
) -> None:
    guard = login_guard()
    for _ in range(3):  # typos cost nothing
        await attempt(guard, ATTACKER, "mother", right=False)
    with pytest.raises(ChallengeRequired) as first:
        await attempt(guard, ATTACKER, "mother", right=False)
    solved = solve(first.value.extra["challenge"])
    await attempt(guard, ATTACKER, "mother", right=False, pow_payload=solved)
    with pytest.raises(ChallengeRequired) as second:
        await attempt(guard, ATTACKER, "mother", right=False, pow_payload=solved)  # spent
    assert second.value.extra["challenge"]["maxNumber"] == \
        2 * first.value.extra["challenge"]["maxNumber"]
    assert [e.reason for e in events if e.decision == "challenge"] == [
        "challenge_required", "challenge_replayed"]


async def test_after_six_failures_the_account_waits_doubling_up_to_the_ceiling(
    login_guard: Callable[..., Guard], clock: FixedClock,
) -> None:
    guard = login_guard(guard_login_backoff_base_seconds=30,
                        guard_login_backoff_max_seconds=100, login_attempts_per_minute=50)
    for _ in range(6):
        await attempt_solving(guard, ATTACKER, "mother", right=False)
    waits = []
    for _ in range(4):
        with pytest.raises(RateLimited) as refused:
            await attempt(guard, ATTACKER, "mother", right=False)
        assert refused.value.code == "login_backoff"
        waits.append(int(refused.value.headers["Retry-After"]))
        clock.advance(waits[-1])
        # Once the wait is over, the attempt goes on (with its proof of work) and fails.
        await attempt_solving(guard, ATTACKER, "mother", right=False)
    assert waits == [30, 60, 100, 100]


async def test_an_attacker_cannot_lock_a_patient_out_of_her_own_device(
    login_guard: Callable[..., Guard], clock: FixedClock,
) -> None:
    guard = login_guard()
    await attempt(guard, PATIENT, "mother", right=True)  # her phone signed in before
    for _ in range(12):  # someone else fails on purpose, paying every proof of work
        try:
            await attempt_solving(guard, ATTACKER, "mother", right=False)
        except RateLimited:
            clock.advance(900)
    with pytest.raises(RateLimited):
        await attempt(guard, Requester("192.0.2.5", "other-device"), "mother", right=True)
    # Her phone keeps its own count: no wait, no challenge.
    ticket = await attempt(guard, PATIENT, "mother", right=True)
    assert ticket.known_device and ticket.failures == 0


async def test_an_attacker_using_up_the_accounts_limit_leaves_her_device_its_own(
    login_guard: Callable[..., Guard],
) -> None:
    guard = login_guard(login_attempts_per_minute=5, guard_login_free_failures=20,
                        guard_login_backoff_after=21)
    await attempt(guard, PATIENT, "mother", right=True)  # 1 of the account's 5 a minute
    for _ in range(4):
        await attempt(guard, ATTACKER, "mother", right=False)
    with pytest.raises(RateLimited):
        await attempt(guard, Requester("192.0.2.5", "other-device"), "mother", right=True)
    assert (await attempt(guard, PATIENT, "mother", right=True)).known_device


async def test_a_success_clears_the_failures_of_its_scope(
    login_guard: Callable[..., Guard],
) -> None:
    guard = login_guard()
    for _ in range(3):
        await attempt(guard, PATIENT, "mother", right=False)
    with pytest.raises(ChallengeRequired) as asked:
        await attempt(guard, PATIENT, "mother", right=True)
    await attempt(guard, PATIENT, "mother", right=True,
                  pow_payload=solve(asked.value.extra["challenge"]))
    assert (await attempt(guard, PATIENT, "mother", right=False)).failures == 0


async def test_failures_and_known_devices_are_forgotten_after_their_settings(
    login_guard: Callable[..., Guard], clock: FixedClock,
) -> None:
    guard = login_guard(guard_login_failure_memory_seconds=3600,
                        guard_login_known_device_days=2)
    for _ in range(3):
        await attempt(guard, ATTACKER, "mother", right=False)
    clock.advance(3601)
    assert (await attempt(guard, ATTACKER, "mother", right=True)).failures == 0
    await attempt(guard, PATIENT, "father", right=True)
    clock.advance(86400)
    assert (await attempt(guard, PATIENT, "father", right=True)).known_device
    clock.advance(2 * 86400 + 1)
    assert not (await attempt(guard, PATIENT, "father", right=False)).known_device


async def test_the_account_limit_holds_against_rotating_addresses(
    login_guard: Callable[..., Guard], events: Events,
) -> None:
    # The finding: wrong passwords from rotating client addresses, 65 in 13 minutes. The
    # account allows FAIRSLOT_LOGIN_ATTEMPTS_PER_MINUTE attempts a minute, wherever from.
    guard = login_guard(login_attempts_per_minute=4)
    served = 0
    for n in range(6):
        who = Requester(f"198.18.{n}.1", f"device-{n}")
        try:
            await attempt(guard, who, "Mother ", right=True)  # user names are normalised
        except RateLimited:
            continue
        served += 1
    assert served == 4
    refusal = next(e for e in events if e.decision == "deny")
    assert refusal.key == "account" and refusal.limit == "4 per 1 minute"


async def test_the_account_limit_allows_fifty_a_day(
    login_guard: Callable[..., Guard], clock: FixedClock,
) -> None:
    guard = login_guard()
    served = 0
    for n in range(60):
        clock.advance(61)  # never more than one a minute
        try:
            await attempt(guard, Requester(f"198.18.{n}.1", f"device-{n}"), "mother",
                          right=True)
        except RateLimited as refused:
            assert refused.extra["limit"] == "50 per 1 day"
            continue
        served += 1
    assert served == 50


@pytest.mark.parametrize(("kind", "limit", "who"), [
    ("device", 20, lambda n: Requester(f"198.18.{n}.1", "one-device")),
    ("ip", 20, lambda n: Requester("198.51.100.7", f"device-{n}")),
    ("prefix", 100, lambda n: Requester(f"198.51.100.{n % 250}", f"device-{n}")),
])
async def test_log_ins_are_limited_per_device_address_and_prefix(
    login_guard: Callable[..., Guard], events: Events, kind: str, limit: int,
    who: Callable[[int], Requester],
) -> None:
    guard = login_guard()
    served = 0
    for n in range(limit + 5):
        try:
            await attempt(guard, who(n), f"user{n}", right=True)
        except RateLimited:
            continue
        served += 1
    assert served == limit
    assert {e.key for e in events if e.decision == "deny"} == {kind}


async def test_at_elevated_a_log_in_without_a_device_is_challenged(
    login_guard: Callable[..., Guard],
) -> None:
    guard = login_guard()
    await attempt(guard, Requester("198.51.100.9"), "mother", right=True)  # normal: no
    await guard.set_level("login", "elevated")
    with pytest.raises(ChallengeRequired):
        await attempt(guard, Requester("198.51.100.9"), "mother", right=True)
    await attempt(guard, PATIENT, "mother", right=True)  # a device of long standing: no


async def test_two_workers_share_an_accounts_failures_on_redis(
    make_guard: GuardFactory,
) -> None:
    one, two = make_guard(), make_guard()
    for worker in (one, two, one):
        await attempt(worker, ATTACKER, "mother", right=False)
    with pytest.raises(ChallengeRequired):
        await attempt(two, ATTACKER, "mother", right=False)


async def test_the_log_in_route_answers_with_problems(make_guard: GuardFactory) -> None:
    app = build_app(make_guard(guard_login_backoff_after=4))
    async with client_for(app, "198.51.100.20") as browser:
        await browser.get("/whoami")
        wrong = {"x-user": "mother", "x-password": "wrong"}
        answers = [await browser.post("/login", headers=wrong) for _ in range(4)]
        challenge = answers[-1].json()["challenge"]
        fourth = await browser.post("/login", headers={**wrong,
                                                       "x-fairslot-pow": solve(challenge)})
        waiting = await browser.post("/login", headers=wrong)
    assert [a.status_code for a in answers] == [401, 401, 401, 403]
    assert fourth.status_code == 401
    assert waiting.status_code == 429 and waiting.json()["code"] == "login_backoff"
    assert waiting.headers["content-type"] == "application/problem+json"
    assert int(waiting.headers["retry-after"]) == 30


async def test_the_wait_never_comes_before_the_proof_of_work(
    make_guard: GuardFactory,
) -> None:
    with pytest.raises(ValueError, match="BACKOFF_AFTER"):
        make_guard(guard_login_free_failures=5, guard_login_backoff_after=5)

"""An action needs the single-use token its page issued, not too soon and only once, also
after a restart; the screens that issue tokens are rate-limited."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairslot.clock import FixedClock
from fairslot.guard.errors import ActionTokenRefused
from fairslot.guard.requester import Requester

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


async def test_a_token_is_bound_to_its_action(
    make_guard: GuardFactory, clock: FixedClock
) -> None:
    guard = make_guard()
    token = guard.issue_token("mother", "pay", "s1")  # the order page's token
    clock.advance(5)
    checked = await guard.tokens.redeem(token, "mother", "book", "s1")
    assert checked.reason == "token_invalid"
    assert (await guard.tokens.redeem(token, "mother", "pay", "s1")).ok


async def test_the_minimum_age_and_the_life_of_a_token_come_from_the_settings(
    make_guard: GuardFactory, clock: FixedClock
) -> None:
    guard = make_guard(guard_token_min_age_seconds=5, guard_token_ttl_seconds=30)
    early, on_time, late = (guard.issue_token("mother", "book", f"s{n}") for n in range(3))
    clock.advance(4.9)
    assert (await guard.tokens.redeem(early, "mother", "book", "s0")).reason == \
        "token_too_early"
    clock.advance(0.2)
    assert (await guard.tokens.redeem(on_time, "mother", "book", "s1")).ok
    clock.advance(25)
    assert (await guard.tokens.redeem(late, "mother", "book", "s2")).reason == "token_expired"


async def test_a_spent_token_stays_spent_after_a_restart_without_redis(
    make_guard: GuardFactory, clock: FixedClock, tmp_path: Path
) -> None:
    ledger = tmp_path / "var" / "guard-ledger.db"
    before = make_guard(redis_url=None, guard_ledger_path=str(ledger))
    token = before.issue_token("mother", "book", "s1")
    clock.advance(2)
    assert (await before.tokens.redeem(token, "mother", "book", "s1")).ok
    await before.close()  # the server stops; a new process starts with the same file
    after = make_guard(redis_url=None, guard_ledger_path=str(ledger))
    assert (await after.tokens.redeem(token, "mother", "book", "s1")).reason == \
        "token_replayed"
    assert ledger.stat().st_mode & 0o777 == 0o600
    # Without a ledger file (memory only) the same restart forgets it, as documented.
    forgetful = make_guard(redis_url=None, guard_ledger_path="")
    token = forgetful.issue_token("mother", "book", "s2")
    clock.advance(2)
    assert (await forgetful.tokens.redeem(token, "mother", "book", "s2")).ok
    restarted = make_guard(redis_url=None, guard_ledger_path="")
    assert (await restarted.tokens.redeem(token, "mother", "book", "s2")).ok


async def test_on_redis_a_token_spent_by_one_worker_is_spent_for_all(
    make_guard: GuardFactory, clock: FixedClock
) -> None:
    one, two = make_guard(), make_guard()
    token = one.issue_token("mother", "book", "s1")
    clock.advance(2)
    assert (await one.tokens.redeem(token, "mother", "book", "s1")).ok
    await one.close()
    assert (await two.tokens.redeem(token, "mother", "book", "s1")).reason == "token_replayed"


async def test_screens_that_issue_tokens_are_rate_limited(
    make_guard: GuardFactory, events: Events
) -> None:
    # The finding: 30 booking screens of one session in a burst, 30 tokens. The screens
    # group allows an account, and a device, 10 a minute.
    app = build_app(make_guard())
    async with client_for(app, "198.51.100.20") as bot:
        await bot.get("/whoami")
        answers = [await bot.get("/booking-screen/s1", headers=MOTHER) for _ in range(30)]
    assert [a.status_code for a in answers] == [200] * 10 + [429] * 20
    assert answers[-1].json()["code"] == "rate_limited"
    refusals = [e for e in events if e.decision == "deny"]
    assert {e.group for e in refusals} == {"screens"}
    assert {e.key for e in refusals} <= {"device", "account"}


async def test_an_unusable_ledger_file_is_logged_and_tokens_are_still_spent_once(
    make_guard: GuardFactory, clock: FixedClock, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    guard = make_guard(redis_url=None, guard_ledger_path=str(blocker / "guard-ledger.db"))
    token = guard.issue_token("mother", "book", "s1")
    clock.advance(2)
    assert (await guard.tokens.redeem(token, "mother", "book", "s1")).ok
    assert (await guard.tokens.redeem(token, "mother", "book", "s1")).reason == \
        "token_replayed"
    assert [r.levelname for r in caplog.records if "ledger" in r.getMessage()] == ["ERROR"]


async def test_on_redis_a_token_spent_with_the_admission_is_spent_for_every_worker(
    make_guard: GuardFactory, clock: FixedClock
) -> None:
    # At the normal level no proof of work can come before the token, so the admission's
    # one Redis call spends it; the ledger's own spend must see that, and the reverse.
    one, two = make_guard(), make_guard()
    person = Requester("198.51.100.30", "person-device")
    first, second = one.issue_token("mother", "book", "s1"), one.issue_token("mother", "book",
                                                                            "s2")
    clock.advance(2)
    await one.decide(person, "booking", account_id="mother", need_token="book", target="s1",
                     token=first)
    with pytest.raises(ActionTokenRefused) as refused:
        await two.decide(person, "booking", account_id="mother", need_token="book",
                         target="s1", token=first)
    assert refused.value.code == "token_replayed"
    assert not (await two.tokens.redeem(first, "mother", "book", "s1")).ok

    assert (await two.tokens.redeem(second, "mother", "book", "s2")).ok
    with pytest.raises(ActionTokenRefused) as refused:
        await one.decide(person, "booking", account_id="mother", need_token="book",
                         target="s2", token=second)
    assert refused.value.code == "token_replayed"

"""Levels are shared by all workers through Redis within a second; forged headers from an
untrusted peer change nothing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fairslot.clock import FixedClock
from fairslot.config import get_settings
from fairslot.guard import GuardLevel, RateLimited, Requester, RouteGroup

from .conftest import SECRET, Events, GuardFactory, asgi_call, build_app

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def test_a_level_set_by_one_worker_is_seen_by_another_within_a_second(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    one, two = make_guard(), make_guard()
    assert await two.level("booking") is GuardLevel.NORMAL
    assert await one.set_level("booking", "under_attack") is True
    clock.advance(0.5)
    assert await two.level("booking") is GuardLevel.NORMAL  # still its cached read
    clock.advance(0.5)
    assert await two.level(RouteGroup.BOOKING) is GuardLevel.UNDER_ATTACK
    assert (await two.levels())[RouteGroup.PAYMENT] is GuardLevel.NORMAL


async def test_elevated_halves_and_under_attack_quarters_what_a_requester_may_do(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard(guard_limits={"browsing": {"device": "none"}})
    served: dict[str, int] = {}
    # Browsing allows 600 requests a minute per address and never asks for proof of work.
    for level, ip in (("normal", "192.0.2.11"), ("elevated", "192.0.2.12"),
                      ("under_attack", "192.0.2.13")):
        await guard.set_level("browsing", level)
        served[level] = 0
        for _ in range(650):
            try:
                await guard.decide(Requester(client_ip=ip, device_id=f"dev-{level}"),
                                   "browsing")
            except RateLimited:
                continue
            served[level] += 1
    assert served == {"normal": 600, "elevated": 300, "under_attack": 150}


def test_the_cli_shows_and_sets_levels(
    prefix: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer

    from fairslot.cli import guard as guard_cli

    monkeypatch.setenv("FAIRSLOT_SECRET_KEY", SECRET)
    monkeypatch.setenv("FAIRSLOT_REDIS_URL", redis_url)
    monkeypatch.setenv("FAIRSLOT_GUARD_REDIS_PREFIX", prefix)
    get_settings.cache_clear()
    app = typer.Typer()
    guard_cli.register(app)
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["guard", "level", "payment", "elevated"]).exit_code == 0
        shown = runner.invoke(app, ["guard", "level"])
        assert "payment: elevated" in shown.output and "booking: normal" in shown.output
        one = runner.invoke(app, ["guard", "level", "payment"])
        assert one.output.strip() == "payment: elevated"
        status = runner.invoke(app, ["guard", "status"])
        assert "redis: up" in status.output and "level payment: elevated" in status.output
        bad = runner.invoke(app, ["guard", "level", "payment", "panic"])
        assert bad.exit_code == 2
    finally:
        get_settings.cache_clear()


async def test_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
    make_guard: GuardFactory, events: Events
) -> None:
    # Only the address limits here (the bot has no device, whose bucket would refuse first).
    app = build_app(make_guard(guard_limits={"booking": {"device": "none"}}))
    served = 0
    for i in range(60):
        status, _, _ = await asgi_call(
            app, "POST", "/book/s1", ip="203.0.113.50",
            headers={"x-forwarded-for": f"198.18.{i}.1", "x-account": f"acct{i}",
                     "x-real-ip": f"198.19.{i}.1"},
        )
        served += status == 200
    assert served == 20  # the booking IP limit of the real peer, not 60 fresh addresses
    assert {e.client_ip for e in events} == {"203.0.113.50"}


async def test_a_trusted_proxy_chain_resolves_to_the_right_most_untrusted_hop(
    make_guard: GuardFactory,
) -> None:
    app = build_app(make_guard())
    _, _, body = await asgi_call(
        app, "GET", "/whoami", ip="10.0.0.5",
        headers={"x-forwarded-for": "6.6.6.6, 198.51.100.9, 10.1.2.3"},
    )
    assert b'"client_ip":"198.51.100.9"' in body

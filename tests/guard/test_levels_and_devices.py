"""Levels are shared by all workers through Redis; devices are identified and counted;
forged headers from an untrusted peer change nothing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fairslot.config import get_settings
from fairslot.guard import GuardLevel, RateLimited, Requester, RouteGroup

from .conftest import SECRET, Events, GuardFactory, asgi_call, build_app, client_for

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def test_a_level_set_by_one_worker_is_seen_by_another(make_guard: GuardFactory) -> None:
    one, two = make_guard(), make_guard()
    assert await two.level("booking") is GuardLevel.NORMAL
    assert await one.set_level("booking", "under_attack") is True
    two._levels_read = float("-inf")  # skip the one-second cache instead of sleeping
    assert await two.level(RouteGroup.BOOKING) is GuardLevel.UNDER_ATTACK
    assert (await two.levels())[RouteGroup.PAYMENT] is GuardLevel.NORMAL


async def test_elevated_halves_and_under_attack_quarters_what_a_requester_may_do(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    served: dict[str, int] = {}
    # Browsing allows 600 requests a minute per address and never asks for proof of work.
    for level, ip in (("normal", "192.0.2.11"), ("elevated", "192.0.2.12"),
                      ("under_attack", "192.0.2.13")):
        await guard.set_level("browsing", level)
        served[level] = 0
        for _ in range(650):
            try:
                await guard.decide(Requester(client_ip=ip), "browsing")
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


async def test_a_browser_gets_a_signed_device_cookie_and_keeps_its_id(
    make_guard: GuardFactory,
) -> None:
    app = build_app(make_guard())
    async with client_for(app, "198.51.100.20") as browser:
        first = await browser.get("/whoami")
        cookie = first.headers["set-cookie"]
        second = await browser.get("/whoami")
    assert cookie.startswith("fs_device=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie
    assert "set-cookie" not in second.headers
    assert first.json()["device_id"] == second.json()["device_id"]
    assert second.json()["device_claimed"] is False


async def test_a_forged_device_cookie_is_replaced_and_an_app_id_is_marked_claimed(
    make_guard: GuardFactory,
) -> None:
    app = build_app(make_guard())
    _, headers, body = await asgi_call(app, "GET", "/whoami", ip="198.51.100.20",
                                       headers={"cookie": "fs_device=abc.forged"})
    assert "set-cookie" in headers and b"abc" not in body
    _, headers, body = await asgi_call(app, "GET", "/whoami", ip="198.51.100.20",
                                       headers={"x-device-id": "ios-1234"})
    assert "set-cookie" not in headers and b'"device_claimed":true' in body


async def test_the_guard_counts_distinct_accounts_per_device(make_guard: GuardFactory) -> None:
    guard = make_guard()
    app = build_app(guard)
    async with client_for(app, "198.51.100.20") as browser:
        await browser.get("/whoami")
        for account in ("a", "b", "a", "c"):
            await browser.post("/enter", headers={"x-account": account})
        device = (await browser.get("/whoami")).json()["device_id"]
    passed = await guard.decide(Requester("198.51.100.20", device), "entering", account_id="d")
    assert passed.device_accounts == 4


async def test_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
    make_guard: GuardFactory, events: Events
) -> None:
    app = build_app(make_guard())
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

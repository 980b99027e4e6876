"""When Redis goes away the guard keeps refusing floods with per-process limits, says so
in ``health()`` and the log (once), and goes back to Redis when it returns."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from fairslot.clock import FixedClock
from fairslot.guard.state import SLOW_SECONDS_DOWN

from .conftest import GuardFactory, asgi_call, build_app

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A redis-server of this test's own, on a free loopback port, without persistence."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not on PATH")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                client.close()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=5)
            self.process = None

    def keys(self) -> int:
        client = redis.Redis(port=self.port)
        try:
            return int(client.dbsize())
        finally:
            client.close()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


async def _flood(app: object, ip: str, n: int = 100) -> int:
    served = 0
    for i in range(n):
        status, _, _ = await asgi_call(app, "POST", "/book/s1", ip=ip,  # type: ignore[arg-type]
                                       headers={"x-account": f"{ip}-{i}"})
        assert status in (200, 429)
        served += status == 200
    return served


async def test_the_guard_survives_redis_going_down_and_recovers(
    make_guard: GuardFactory, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture,
    clock: FixedClock,
) -> None:
    # The address limit (20 a minute) is what this test watches; the bot's missing device
    # would otherwise be refused first by its /24's device bucket.
    # Booking fails closed while Redis is down (tests/faults); here it is let through to
    # show the per-process limits every other group keeps.
    guard = make_guard(redis_url=private_redis.url, guard_redis_retry_seconds=0.1,
                       guard_limits={"booking": {"device": "none"}},
                       guard_redis_down_refuse=[])
    app = build_app(guard)
    caplog.set_level(logging.WARNING, logger="fairslot.guard")

    assert await _flood(app, "198.51.100.1") == 20
    assert guard.health() == {"redis": "up", "guard": "ok"}
    assert private_redis.keys() > 0

    private_redis.stop()
    # Each worker now counts alone, but it still counts: the flood is refused.
    assert await _flood(app, "198.51.100.2") == 20
    assert guard.health() == {"redis": "down", "guard": "degraded: per-process limits"}
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1
    assert private_redis.url not in caplog.text and "127.0.0.1" not in caplog.text

    private_redis.start()  # same port, empty
    for _ in range(100):
        clock.advance(0.2)  # past the back-off, on the guard's clock
        await _flood(app, "198.51.100.3", n=1)
        if guard.health()["redis"] == "up":
            break
    assert guard.health() == {"redis": "up", "guard": "ok"}
    assert await _flood(app, "198.51.100.4") == 20
    assert private_redis.keys() > 0  # counting in Redis again
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def _pause(server: PrivateRedis, milliseconds: int) -> None:
    """Make the private Redis answer no client for a while: every call now is slow."""
    client = redis.Redis(port=server.port)
    try:
        client.execute_command("CLIENT", "PAUSE", str(milliseconds), "ALL")
    finally:
        client.close()


async def test_one_slow_redis_call_neither_refuses_a_booking_nor_takes_redis_for_down(
    make_guard: GuardFactory, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture,
) -> None:
    guard = make_guard(redis_url=private_redis.url)
    app = build_app(guard)
    caplog.set_level(logging.WARNING, logger="fairslot.guard")
    status, _, _ = await asgi_call(app, "POST", "/book/s1", ip="198.51.100.7",
                                   headers={"x-account": "a1"})
    assert status == 200

    # Longer than one socket timeout (0.5 s), shorter than two: the retry is answered.
    _pause(private_redis, 800)
    status, _, body = await asgi_call(app, "POST", "/book/s2", ip="198.51.100.7",
                                      headers={"x-account": "a2"})

    assert status == 200, body
    assert guard.health() == {"redis": "up", "guard": "ok"}
    assert not [r for r in caplog.records if "unreachable" in r.getMessage()]


async def test_an_unreachable_redis_refuses_booking_at_once(
    make_guard: GuardFactory, clock: FixedClock,
) -> None:
    guard = make_guard(redis_url=f"redis://127.0.0.1:{_free_port()}/0")
    app = build_app(guard)

    status, _, body = await asgi_call(app, "POST", "/book/s1", ip="198.51.100.8",
                                      headers={"x-account": "a1"})

    assert status == 503 and b"guard_unavailable" in body
    assert guard.health() == {"redis": "down", "guard": "degraded: per-process limits"}


async def test_redis_slow_for_seconds_on_end_is_taken_for_down(
    make_guard: GuardFactory, private_redis: PrivateRedis, clock: FixedClock,
) -> None:
    guard = make_guard(redis_url=private_redis.url)
    app = build_app(guard)
    status, _, _ = await asgi_call(app, "POST", "/book/warm", ip="198.51.100.9",
                                   headers={"x-account": "warm"})
    assert status == 200  # levels and decisions read: from here a booking is one call

    # Longer than a call and its retry: this booking's admission is not answered, and it
    # goes on with this worker's own counts; Redis is not down for one slow call.
    _pause(private_redis, 1200)
    status, _, _ = await asgi_call(app, "POST", "/book/s1", ip="198.51.100.9",
                                   headers={"x-account": "a1"})
    assert status == 200
    assert guard.health()["redis"] == "up"

    clock.advance(SLOW_SECONDS_DOWN)  # still slow that much later, with nothing answered
    _pause(private_redis, 1200)
    status, _, body = await asgi_call(app, "POST", "/book/s2", ip="198.51.100.9",
                                      headers={"x-account": "a2"})

    assert status == 503 and b"guard_unavailable" in body
    assert guard.health()["redis"] == "down"


async def test_a_retried_spend_and_slot_are_the_same_callers(
    make_guard: GuardFactory, private_redis: PrivateRedis, clock: FixedClock,
) -> None:
    guard = make_guard(redis_url=private_redis.url)
    state = guard.state.redis
    assert state is not None
    mine, theirs = state.spender(), state.spender()

    assert await state.spend("token-1", 60, mine)
    assert await state.spend("token-1", 60, mine)  # the same spend, asked again
    assert not await state.spend("token-1", 60, theirs)

    assert await state.acquire("slot-1", "owner-a", 30)
    assert await state.acquire("slot-1", "owner-a", 30)  # the same hold, asked again
    assert not await state.acquire("slot-1", "owner-b", 30)

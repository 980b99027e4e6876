"""Fixtures for the guard's tests: the real Redis under a throw-away key prefix, a guard
built from settings, and a small FastAPI app that uses the guard as the platform will.

Without Redis the Redis-backed tests fail with a clear message, never skip: a run that
silently skipped them would prove nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from altcha.v1 import Challenge, Payload, solve_challenge
from fastapi import Depends, FastAPI, Request

from fairslot.clock import FixedClock
from fairslot.config import Settings
from fairslot.domain.errors import Unauthenticated
from fairslot.guard import Guard, GuardEvent
from fairslot.guard.fastapi import GuardGate, guarded, install

MAIN_REDIS = os.environ.get("FAIRSLOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "test-secret-0123456789abcdef-" + "x" * 24


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(MAIN_REDIS, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError as exc:
        pytest.fail(f"Redis is unreachable at {MAIN_REDIS}: {exc}", pytrace=False)
    return MAIN_REDIS


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own, removed afterwards (never FLUSHALL)."""
    name = f"fairslot-test:{uuid.uuid4().hex}:"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=name + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC))


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret_key": SECRET,
        "guard_device_cookie_secure": False,
        "trusted_proxies": ["10.0.0.0/8", "fd00::/8"],
        "guard_pow_base_maxnumber": 1000,
        "guard_allow_event_every": 1,
        "guard_ledger_path": "",
        **overrides,
    }
    return Settings(**values)


class Events(list[GuardEvent]):
    """A sink that keeps every event, for assertions."""

    def __call__(self, event: GuardEvent) -> None:
        self.append(event)


@pytest.fixture
def events() -> Events:
    return Events()


def build_app(guard: Guard) -> FastAPI:
    """The shape of the platform's routes, with a header standing in for authentication."""
    app = FastAPI()
    install(app, guard, handle_errors=True)
    release = asyncio.Event()
    app.state.release = release

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        return {
            "client_ip": request.state.client_ip,
            "device_id": request.state.device_id,
            "device_new": request.state.device_new,
        }

    @app.post("/register", dependencies=[Depends(guarded("registration", auto=True))])
    async def register() -> dict[str, str]:
        return {"registered": "yes"}

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        # The log-in service's three calls around its password check.
        attempt = await guard.login.before_attempt(
            request.headers["x-user"], guard.requester(request),
            pow_payload=request.headers.get("x-fairslot-pow"))
        if request.headers.get("x-password") != "right":
            await guard.login.after_failure(attempt)
            raise Unauthenticated("wrong username or password", code="bad_credentials")
        await guard.login.after_success(attempt)
        return {"signed_in": request.headers["x-user"]}

    @app.get("/booking-screen/{slot_id}")
    async def booking_screen(slot_id: str, request: Request) -> dict[str, str]:
        token = await guard.screen_token(guard.requester(request),
                                         account_id=request.headers["x-account"],
                                         action="book", target=slot_id)
        return {"token": token}

    @app.get("/slots/{slot_id}")
    async def slot_page(
        slot_id: str, request: Request,
        gate: GuardGate = Depends(guarded("browsing", auto=True)),
    ) -> dict[str, str]:
        account = request.headers.get("x-account", "")
        return {"token": guard.issue_token(account, "book", slot_id)}

    @app.post("/book/{slot_id}")
    async def book(
        slot_id: str, request: Request,
        gate: GuardGate = Depends(guarded("booking", exclusive=True)),
    ) -> dict[str, str]:
        await gate.check(account_id=request.headers.get("x-account"),
                         patient_id=request.headers.get("x-patient"), target=slot_id)
        return {"booked": slot_id}

    @app.post("/confirm/{slot_id}")
    async def confirm(
        slot_id: str, request: Request,
        gate: GuardGate = Depends(guarded("booking", need_token="book")),
    ) -> dict[str, str]:
        await gate.check(account_id=request.headers.get("x-account"),
                         patient_id=request.headers.get("x-patient"), target=slot_id)
        return {"booked": slot_id}

    @app.post("/enter")
    async def enter(
        request: Request, gate: GuardGate = Depends(guarded("entering")),
    ) -> dict[str, str]:
        await gate.check(account_id=request.headers.get("x-account"))
        return {"entered": "yes"}

    @app.post("/slow-book")
    async def slow_book(
        request: Request, gate: GuardGate = Depends(guarded("booking", exclusive=True)),
    ) -> dict[str, str]:
        await gate.check(account_id=request.headers.get("x-account"))
        await release.wait()
        return {"booked": "slow"}

    @app.get("/slow")
    async def slow() -> str:
        # Unguarded (like a static file): counts as in flight, is never shed itself.
        await release.wait()
        return "done"

    return app


GuardFactory = Callable[..., Guard]


@pytest.fixture
async def make_guard(
    redis_url: str, prefix: str, clock: FixedClock, events: Events
) -> AsyncIterator[GuardFactory]:
    made: list[Guard] = []

    def factory(**overrides: Any) -> Guard:
        settings = make_settings(
            redis_url=overrides.pop("redis_url", redis_url),
            guard_redis_prefix=prefix,
            **overrides,
        )
        guard = Guard(settings, clock=clock, sink=events)
        made.append(guard)
        return guard

    yield factory
    for guard in made:
        await guard.close()


def client_for(app: FastAPI, ip: str, port: int = 40000, *,
               scheme: str = "http") -> httpx.AsyncClient:
    """An HTTP client (with a cookie jar, like a browser) whose TCP peer address is
    ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, port))
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://fairslot.test")


async def asgi_call(
    app: FastAPI, method: str, path: str, *, ip: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request straight into the ASGI app, without an HTTP client's cookie jar and
    request building: a bot's flood is thousands of these, and they must be cheap to send."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": (ip, 40000),
        "server": ("fairslot.test", 80),
    }
    status = 0
    response_headers: dict[str, str] = {}
    body = bytearray()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for key, value in message.get("headers", []):
                response_headers[key.decode().lower()] = value.decode()
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, response_headers, bytes(body)


def solve(challenge: dict[str, Any]) -> str:
    """What the browser solver does: find the number, post the base64 payload."""
    parsed = Challenge(
        challenge["algorithm"], challenge["challenge"], challenge["maxNumber"],
        challenge["salt"], challenge["signature"],
    )
    solution = solve_challenge(parsed)
    assert solution is not None
    return Payload(
        challenge["algorithm"], challenge["challenge"], solution.number, challenge["salt"],
        challenge["signature"],
    ).to_base64()

"""What the request guard costs: requests per second of the same endpoint with and without
the guard, from one run against one uvicorn server, with Redis as the guard's storage.

    python bench/guard.py [--requests 8000] [--concurrency 32] [--redis-url URL]
    python bench/guard.py --only windows

The server runs in a child process on the loopback interface. Three endpoint pairs:

* ``browse``: the platform's real ``GET /api/v1/hospitals`` (SQLite, demo data), wired as
  the platform wires it (``GuardMiddleware`` and the router's ``guarded("browsing")``),
  against the same handler with the guard taken off;
* ``browse, regulars``: the same, but each visitor comes back 40 times, so the browsing
  counters pass their sharing threshold and are reconciled through Redis in the background
  (``fairslot.guard.local_windows``); in ``browse`` nearly every request is a new visitor;
* ``booking``: a handler that does nothing, behind the full booking check (IP, /24, device,
  account and patient limits plus the one-in-flight slot) against the same handler bare.
  This is the guard's worst case: all of the time it adds is overhead.

Apart from the regulars, every request comes from a different simulated person (own
address via a trusted proxy's X-Forwarded-For, own device cookie, own account), and the
guard serves them all; a refused request would be reported. Rounds alternate between the two
variants so that drift in the machine's speed affects both alike. Besides requests per
second, the server's CPU time per request is printed for each variant (from ``/proc``):
on a busy shared machine throughput swings with the neighbours' load, CPU per request much
less, and its ratio plain / guarded is the same measure of the guard's cost.

``--only windows`` measures in this process, without a server or Redis, what counting one
browsing request (three moving-window limits) costs with the guard's own windows
(``fairslot.guard.windows``, on the injected clock) against the `limits` library's
in-memory storage (which reads ``time.time()`` itself) and against a clock-taking storage
built on `limits`' extension points (``Storage`` + ``MovingWindowSupport``), the two ways
the guard could have taken a clock.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import limits
import limits.storage
import limits.strategies
import redis
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from limits.storage.base import MovingWindowSupport

from _server import cpu_seconds
from fairslot.clock import Clock, FixedClock, SystemClock
from fairslot.config import Settings
from fairslot.guard import Guard
from fairslot.guard.device import DeviceIds
from fairslot.guard.fastapi import GuardGate, guarded, install
from fairslot.guard.keys import GuardKeys
from fairslot.guard.windows import Hit, MovingWindows
from fairslot.randomness import SystemRandomness

__all__ = ["main"]

SECRET = "bench-" + secrets.token_hex(24)


def _settings(redis_url: str, prefix: str, database_url: str) -> Settings:
    return Settings(
        secret_key=SECRET,
        redis_url=redis_url,
        guard_redis_prefix=prefix,
        database_url=database_url,
        trusted_proxies=["127.0.0.1/32"],
        guard_device_cookie_secure=False,
        # The bench offers more concurrent requests than the shedder's default thresholds
        # are meant for; it measures the guard's cost, not the shedder's refusals.
        guard_shed_browsing_at=10_000,
        guard_shed_other_at=10_000,
        guard_shed_critical_at=10_000,
    )


# -- the server (child process) ----------------------------------------------------------


def _platform_routes(settings: Settings) -> tuple[Any, Any]:
    """The platform (SQLite, demo data) and its public browsing router."""
    from fairslot.bootstrap import bootstrap
    from fairslot.services.demo import DEMO_USERS, seed_demo
    from fairslot.storage.database import make_engine
    from fairslot.storage.migrate import upgrade
    from fairslot.web.api import public

    upgrade(make_engine(settings.database_url))
    platform = bootstrap(settings)
    seed_demo(platform.uow, platform.deps, {user: secrets.token_urlsafe(9) for user in DEMO_USERS})
    return platform, public.router


def _twin_apps(settings: Settings) -> tuple[FastAPI, FastAPI]:
    """Two apps serving the platform's real public routes from one platform: one exactly as
    the platform wires them (GuardMiddleware, the router's ``guarded`` dependency), one with
    the guard's dependency taken off and no middleware. Neither has the access log or the
    pages, which are not the guard's cost."""
    from fairslot.web.problems import install_problem_handlers

    platform, router = _platform_routes(settings)
    guard = Guard(settings)
    apps = []
    for protected in (False, True):
        app = FastAPI()
        app.state.platform = platform
        install_problem_handlers(app)
        if protected:
            install(app, guard)
            app.include_router(router, prefix="/api/v1")
        else:
            for route in router.routes:
                assert isinstance(route, APIRoute)
                app.add_api_route(
                    "/api/v1" + route.path, route.endpoint, methods=list(route.methods or ()),
                    response_model=route.response_model,
                )
        _add_booking_route(app, protected)
        apps.append(app)
    return apps[0], apps[1]


def _add_booking_route(app: FastAPI, protected: bool) -> None:
    if not protected:
        @app.post("/book/{slot}")
        async def plain_book(slot: str, request: Request) -> dict[str, str]:
            return {"slot": slot}
        return

    @app.post("/book/{slot}")
    async def guarded_book(
        slot: str, request: Request,
        gate: GuardGate = Depends(guarded("booking", exclusive=True)),
    ) -> dict[str, str]:
        await gate.check(account_id=request.headers.get("x-account"),
                         patient_id=request.headers.get("x-patient"), target=slot)
        return {"slot": slot}


def serve(port: int, redis_url: str, prefix: str, workdir: str) -> None:
    import uvicorn

    settings = _settings(redis_url, prefix, f"sqlite:///{workdir}/bench.db")
    plain, protected = _twin_apps(settings)

    async def dispatch(scope: Any, receive: Any, send: Any) -> None:
        # One server: /plain/... goes to the unguarded twin, everything else to the guarded.
        if scope["type"] == "http" and scope["path"].startswith("/plain/"):
            scope = {**scope, "path": scope["path"][len("/plain"):]}
            await plain(scope, receive, send)
        else:
            await protected(scope, receive, send)

    uvicorn.run(dispatch, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                lifespan="off")


# -- the load (parent process) -----------------------------------------------------------


@dataclass
class Round:
    requests: int = 0
    ok: int = 0
    refused: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    """CPU seconds the server process spent on the round (user + system)."""


def _requests(method: str, path_of: Any, n: int, cookies: list[str], start: int) -> list[bytes]:
    out = []
    for i in range(start, start + n):
        person = i % len(cookies)
        path = path_of(i)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            # Each person has an address in a /24 of their own (the default limits allow
            # one booking address 20 requests a minute and one /24 a hundred).
            f"X-Forwarded-For: 100.{64 + person // 256 % 64}.{person % 256}.7\r\n"
            f"Cookie: fs_device={cookies[person]}\r\n"
            f"X-Account: acct{person}\r\nX-Patient: pat{person}\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        out.append(head.encode())
    return out


async def _worker(port: int, batch: list[bytes], result: Round) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in batch:
            writer.write(request)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            result.requests += 1
            if status < 300:
                result.ok += 1
            else:
                result.refused += 1
    finally:
        writer.close()
        await writer.wait_closed()


async def _round(port: int, requests: list[bytes], concurrency: int) -> Round:
    result = Round()
    batches = [requests[i::concurrency] for i in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(_worker(port, batch, result) for batch in batches))
    result.seconds = time.perf_counter() - started
    return result


async def _measure(port: int, pairs: dict[str, tuple[str, Any, Any, int]], n: int,
                   concurrency: int, everyone: list[str], server_pid: int
                   ) -> dict[str, dict[str, Round]]:
    totals = {name: {"plain": Round(), "guarded": Round()} for name in pairs}
    rounds = 4
    offset = 0
    for name, (method, plain_path, guarded_path, people) in pairs.items():
        cookies = everyone[:people]
        # Warm up both variants (connections, caches, JIT-free but import-heavy paths).
        for path_of in (plain_path, guarded_path):
            await _round(port, _requests(method, path_of, 200, cookies, offset), concurrency)
            offset += 200
        for _ in range(rounds):
            for variant, path_of in (("plain", plain_path), ("guarded", guarded_path)):
                batch = _requests(method, path_of, n // rounds, cookies, offset)
                offset += n // rounds
                cpu_before = cpu_seconds(server_pid)
                got = await _round(port, batch, concurrency)
                got.cpu = cpu_seconds(server_pid) - cpu_before
                total = totals[name][variant]
                total.cpu += got.cpu
                total.requests += got.requests
                total.ok += got.ok
                total.refused += got.refused
                total.seconds += got.seconds
    return totals


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the bench server exited during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the bench server did not start")


# -- in-process counting (``--only windows``) --------------------------------------------


class _ClockedStorage(limits.storage.Storage, MovingWindowSupport):
    """The alternative the guard did not take: a moving-window storage behind `limits`'
    extension points that reads the injected clock (newest entry first, as `limits` keeps
    its lists)."""

    STORAGE_SCHEME = ["fairslot-bench-clocked"]  # noqa: RUF012 - the base class declares it so

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock
        self._events: dict[str, list[float]] = {}

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError  # only the moving window is used

    def get(self, key: str) -> int:
        raise NotImplementedError

    def get_expiry(self, key: str) -> float:
        raise NotImplementedError

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        self._events.clear()
        return None

    def clear(self, key: str) -> None:
        self._events.pop(key, None)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = self._clock.monotonic()
        events = self._events.setdefault(key, [])
        if amount > limit or (len(events) > limit - amount
                              and events[limit - amount] > now - expiry):
            return False
        events[:0] = [now] * amount
        del events[limit:]
        return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = self._clock.monotonic()
        events = self._events.get(key) or []
        inside = bisect.bisect_left(events, -(now - expiry), key=lambda t: -t)
        return (events[inside - 1], inside) if inside else (now, 0)


def _limiter_admit(limiter: limits.strategies.MovingWindowRateLimiter
                   ) -> Callable[[list[Hit]], object]:
    def admit(hits: list[Hit]) -> object:
        if all(limiter.test(item, key, cost=cost) for item, key, cost in hits):
            for item, key, cost in hits:
                limiter.hit(item, key, cost=cost)
        return None
    return admit


def _windows_bench(n: int) -> None:
    import datetime as dt

    items = [limits.parse("600/minute"), limits.parse("3000/minute"),
             limits.parse("300/minute")]
    clock = FixedClock(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    variants: dict[str, Callable[[list[Hit]], object]] = {
        "guard windows (fairslot.guard.windows)": MovingWindows(clock).admit,
        "limits MemoryStorage (reads time.time)": _limiter_admit(
            limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())),
        "limits strategy + clocked Storage": _limiter_admit(
            limits.strategies.MovingWindowRateLimiter(_ClockedStorage(clock))),
    }
    print(f"in-process counting: {n} browsing requests per variant and key pattern, "
          "three limits each, best of 3, CPU time")
    print(f"{'variant':42} {'many keys us':>13} {'one hot key us':>15}")
    results: dict[str, list[float]] = {}
    for pattern in (5000, 1):
        people = [f"k{i}" for i in range(pattern)]
        for name, admit in variants.items():
            def run(admit: Callable[[list[Hit]], object] = admit,
                    people: list[str] = people) -> None:
                for i in range(n):
                    clock.advance(0.001)
                    person = people[i % len(people)]
                    admit([(item, f"{person}/{k}", 1) for k, item in enumerate(items)])
            # CPU time of this process: other work on a shared machine does not count.
            best = min(timeit.repeat(run, number=1, repeat=3, timer=time.process_time))
            results.setdefault(name, []).append(best / n * 1e6)
    for name, (many, hot) in results.items():
        print(f"{name:42} {many:13.1f} {hot:15.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8000,
                        help="requests per variant and endpoint (bounded; default 8000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", choices=["browse", "booking", "windows"],
                        help="measure one endpoint pair only, or in-process counting")
    parser.add_argument("--redis-url", default=os.environ.get("FAIRSLOT_REDIS_URL")
                        or "redis://127.0.0.1:6379/0")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.redis_url, args.prefix, args.workdir)
        return
    if not 100 <= args.requests <= 200_000:
        raise SystemExit("--requests must be between 100 and 200000")
    if args.only == "windows":
        _windows_bench(args.requests * 5)
        return

    client = redis.Redis.from_url(args.redis_url, socket_connect_timeout=1)
    client.ping()  # no Redis, no bench: the point is to measure with Redis as storage
    prefix = f"fairslot-bench:{uuid.uuid4().hex}:"
    port = _free_port()

    # Browsers that already hold their device cookie, as a returning patient's does.
    devices = DeviceIds(GuardKeys(SECRET.encode()).device, SystemClock(), SystemRandomness(),
                        young_seconds=900, secure=False)
    people = args.requests * 2
    cookies = [devices.mint()[1] for _ in range(people)]

    # (method, plain path, guarded path, people): "browse" has a new visitor for nearly
    # every request; "browse, regulars" has visitors who come back 40 times in the run, so
    # their keys are shared between workers through Redis (local_windows.py).
    regulars = max(200, args.requests // 40)
    pairs = {
        "browse (GET /api/v1/hospitals, SQLite)": (
            "GET", lambda i: "/plain/api/v1/hospitals", lambda i: "/api/v1/hospitals", people,
        ),
        "browse, regulars (40 visits each)": (
            "GET", lambda i: "/plain/api/v1/hospitals", lambda i: "/api/v1/hospitals", regulars,
        ),
        "booking check (no-op handler)": (
            "POST", lambda i: f"/plain/book/s{i % 50}", lambda i: f"/book/s{i % 50}", people,
        ),
    }
    if args.only:
        pairs = {name: pair for name, pair in pairs.items() if name.startswith(args.only)}
    with tempfile.TemporaryDirectory() as workdir:
        env = {**os.environ, "FAIRSLOT_SECRET_KEY": SECRET}
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", str(port),
             "--redis-url", args.redis_url, "--prefix", prefix, "--workdir", workdir],
            env=env,
        )
        try:
            _wait_ready(port, server)
            totals = asyncio.run(_measure(port, pairs, args.requests, args.concurrency,
                                          cookies, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=10)
            for key in client.scan_iter(match=prefix + "*", count=1000):
                client.delete(key)
            client.close()

    print(f"guard bench: {args.requests} requests per variant, concurrency "
          f"{args.concurrency}, one uvicorn worker, Redis storage")
    print(f"{'endpoint':42} {'plain rps':>10} {'guarded rps':>12} {'ratio':>6} {'refused':>8}"
          f" {'server CPU us/req plain':>24} {'guarded':>8} {'ratio':>6}")
    for name, variants in totals.items():
        plain, guarded = variants["plain"], variants["guarded"]
        plain_rps = plain.requests / plain.seconds
        guarded_rps = guarded.requests / guarded.seconds
        # CPU per request of the server process: what the guard costs a worker, which other
        # work on a shared machine does not change as much as it changes throughput.
        plain_cpu = plain.cpu / plain.requests * 1e6
        guarded_cpu = guarded.cpu / guarded.requests * 1e6
        cpu_ratio = plain_cpu / guarded_cpu if guarded_cpu else float("nan")
        print(f"{name:42} {plain_rps:10.0f} {guarded_rps:12.0f} "
              f"{guarded_rps / plain_rps:6.2f} {plain.refused + guarded.refused:8d}"
              f" {plain_cpu:24.0f} {guarded_cpu:8.0f} {cpu_ratio:6.2f}")


if __name__ == "__main__":
    main()

"""Shared by the benchmarks: a throw-away PostgreSQL database, a uvicorn server on a free
loopback port, and a bounded async load loop that reports requests per second."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import sqlalchemy as sa

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import Account, Patient, Role
from fairslot.domain.residents import make_residents
from fairslot.storage.database import make_engine
from fairslot.storage.migrate import upgrade

FLOOR_APP = "_floor_app:app"
"""fairslot's application with the benchmarks' floor route (``_floor_app``)."""
PG_ADMIN = os.environ.get("FAIRSLOT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-0123456789abcdef-" + "b" * 24


def fresh_database(name: str) -> str:
    admin = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:  # for the floor route (``_floor_app``)
        conn.execute(sa.text("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, "
                             "written_at timestamptz NOT NULL)"))
    engine.dispose()
    return url


def add_patients(platform: Platform, count: int, now: dt.datetime) -> list[tuple[int, int]]:
    """``count`` patient accounts, each with one verified identity of its own: (account id,
    patient id) pairs. Written directly, in one transaction: registration is not measured."""
    people = make_residents(random.Random(1), count)
    password_hash = platform.deps.hasher.hash("bench password")
    ids: list[tuple[int, int]] = []
    with platform.uow() as uow:
        for n, identity in enumerate(people):
            account = Account(username=f"bench{n:05d}", role=Role.PATIENT,
                              password_hash=password_hash, phone=None, created_at=now,
                              phone_verified_at=now)
            patient = Patient(id_number=identity.id_number, name=identity.name, phone=None,
                              verified_at=now, created_at=now)
            uow.accounts.add(account)
            uow.patients.add(patient)
            uow.flush()
            uow.patients.link(account.id or 0, patient.id or 0, now)
            ids.append((account.id or 0, patient.id or 0))
        uow.commit()
    return ids


def lifted_limits(*groups: str) -> str:
    """``FAIRSLOT_GUARD_LIMITS`` with the per-IP, per-prefix and per-device limits of these
    route groups lifted: the whole load comes from one loopback address and the bench client
    keeps no device cookie. The per-account and per-patient limits, the action tokens and
    the one-in-flight cap stay on."""
    return json.dumps({group: {"ip": "none", "prefix": "none", "device": "none"}
                       for group in groups})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``), or 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


class Server(str):
    """The served base URL, which also knows the server's processes and its database, so
    that a benchmark can read the CPU time both spent: on a shared machine, throughput
    swings with the neighbours' load; CPU per request much less."""

    pid: int
    database_url: str

    def backends(self, conn: sa.Connection | None = None) -> dict[int, float]:
        """CPU seconds so far of each PostgreSQL backend connected to the server's
        database, by process id (asked on ``conn``, an administrative connection, if
        given)."""
        if not self.database_url:
            return {}
        if conn is None:
            admin = sa.create_engine(
                PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                poolclass=sa.pool.NullPool)
            with admin.connect() as own:
                found = self.backends(own)
            admin.dispose()
            return found
        name = self.database_url.rsplit("/", 1)[1]
        pids = [int(p) for p in conn.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = :name"),
            {"name": name}).scalars()]
        conn.rollback()
        return {p: cpu_seconds(p) for p in pids}

    def server_cpu(self) -> float:
        """CPU seconds so far of the server's processes."""
        return sum(cpu_seconds(p) for p in _descendants(self.pid))


class BackendWatch:
    """The database backends' CPU over a phase. A backend may connect or quit while the
    phase runs (a pool opening or recycling a connection): summing the backends connected
    at the start and at the end, as this bench once did, misses the ones that came and went
    and subtracts the ones that quit, which gave impossible figures (negative, or near zero
    for four statements). So every backend is sampled every ``every`` seconds while the
    phase runs: its CPU counts from its first sample (0 for one that connected during the
    phase) to its last. What a backend spends after its last sample and before it quits is
    missed (at most ``every`` seconds of its life)."""

    def __init__(self, base: Server, every: float = 0.1) -> None:
        import threading
        self.base, self.every = base, every
        self._admin = sa.create_engine(
            PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
            poolclass=sa.pool.NullPool)
        self._conn = self._admin.connect() if base.database_url else None
        self.first = base.backends(self._conn)
        self.last = dict(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        for pid, cpu in self.base.backends(self._conn).items():
            self.first.setdefault(pid, 0.0)
            self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._sample()

    def stop(self) -> float:
        """The backends' CPU seconds over the phase."""
        self._stop.set()
        self._thread.join()
        self._sample()
        if self._conn is not None:
            self._conn.close()
        self._admin.dispose()
        return sum(self.last[p] - self.first[p] for p in self.last)


@contextlib.contextmanager
def server(env: dict[str, str], *, workers: int = 4,
           app: str = "fairslot.web.asgi:app") -> Iterator[Server]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--workers", str(workers),
         "--log-level", "warning", "--no-access-log"],
        env={**os.environ, **env, "PYTHONPATH": os.pathsep.join(
            p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)})
    base = Server(f"http://127.0.0.1:{port}")
    base.pid = proc.pid
    base.database_url = env.get("FAIRSLOT_DATABASE_URL", "")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Connection:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams. httpx's async client spends
    more CPU per request than the server under test on a 2-core machine, which would make
    the load generator, not fairslot, the thing measured."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(body)}"]
        if body:
            lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()


examples: dict[int, str] = {}
"""One body for each error status of the last load run, to explain refusals."""

Request = Callable[[Connection, int], Awaitable[tuple[int, bytes]]]


async def _load(base: str, total: int, concurrency: int, request: Request
                ) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}
    counter = iter(range(total))
    examples.clear()
    host, port = base.removeprefix("http://").split(":")

    async def worker() -> None:
        conn = Connection(host, int(port))
        try:
            for n in counter:
                status, body = await request(conn, n)
                statuses[status] = statuses.get(status, 0) + 1
                if status >= 400 and status not in examples:
                    examples[status] = body[:300].decode(errors="replace")
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return total / elapsed, statuses


def load(base: str, total: int, concurrency: int, request: Request
         ) -> tuple[float, dict[int, int]]:
    """Send ``total`` requests with ``concurrency`` connections; requests/s and statuses."""
    return asyncio.run(_load(base, total, concurrency, request))


@dataclasses.dataclass
class Measured:
    rps: float
    statuses: dict[int, int]
    server_ms: float
    """The server's CPU milliseconds per request."""
    database_ms: float
    """The database backends' CPU milliseconds per request."""

    @property
    def cpu_ms(self) -> float:
        return self.server_ms + self.database_ms

    def line(self, label: str) -> str:
        return (f"{label:<22}{self.rps:8.0f} req/s   CPU ms/req: server {self.server_ms:6.2f}"
                f" database {self.database_ms:6.2f}   statuses {self.statuses}")


def measure(base: Server, total: int, concurrency: int, request: Request) -> Measured:
    """``load``, and the CPU time the server and its database spent per request."""
    watch = BackendWatch(base)
    server_before = base.server_cpu()
    rps, statuses = load(base, total, concurrency, request)
    server_after = base.server_cpu()
    database = watch.stop()
    return Measured(rps, statuses, (server_after - server_before) / total * 1000,
                    database / total * 1000)


def combined(parts: list[Measured]) -> Measured:
    """Several phases of the same request taken as one: requests per second over their
    total time, CPU per request over all their requests."""
    times = [sum(p.statuses.values()) / p.rps for p in parts]
    counts = [sum(p.statuses.values()) for p in parts]
    total = sum(counts)
    statuses: dict[int, int] = {}
    for part in parts:
        for status, n in part.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    return Measured(total / sum(times), statuses,
                    sum(p.server_ms * n for p, n in zip(parts, counts, strict=True)) / total,
                    sum(p.database_ms * n for p, n in zip(parts, counts, strict=True)) / total)


def ratios(health: Measured, action: Measured) -> tuple[float, float]:
    """``action`` against ``/healthz``: by throughput, and by CPU per request."""
    return action.rps / health.rps, health.cpu_ms / action.cpu_ms


def report(health: Measured, action: Measured, name: str) -> None:
    """The two ratios of ``action`` to ``/healthz``: throughput, and CPU per request (the
    one a busy machine disturbs less)."""
    by_rps, by_cpu = ratios(health, action)
    print(f"ratio {name}/healthz = {by_rps:.3f} (throughput), {by_cpu:.3f} (CPU per request)")


def arguments(description: str | None) -> argparse.Namespace:
    """The options the screen-then-act benchmarks share."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=4,
                        help="alternate /healthz and the action this many times")
    parser.add_argument("--redis-url", default=os.environ.get(
        "FAIRSLOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--pool-size", type=int, default=2,
                        help="each worker's PostgreSQL connections (FAIRSLOT_DATABASE_POOL_SIZE;"
                             " 2 x 4 workers: sized to this 2-core machine, docs/performance.md)")
    parser.add_argument("--pool-overflow", type=int, default=0,
                        help="connections a worker may open beyond them (the settings' "
                             "default: 10, with a pool of 10)")
    return parser.parse_args()


def production_env(args: argparse.Namespace, url: str, *groups: str) -> dict[str, str]:
    """The server's settings in production shape (PostgreSQL, the guard on Redis, each
    worker's connections as ``args`` size them), with the per-IP and per-device limits of
    ``groups`` lifted (``lifted_limits``)."""
    return {"FAIRSLOT_DATABASE_URL": url, "FAIRSLOT_SECRET_KEY": SECRET,
            "FAIRSLOT_DATABASE_POOL_SIZE": str(args.pool_size),
            "FAIRSLOT_DATABASE_POOL_OVERFLOW": str(args.pool_overflow),
            "FAIRSLOT_SCHEDULER": "false", "FAIRSLOT_REDIS_URL": args.redis_url,
            "FAIRSLOT_GUARD_REDIS_PREFIX": f"fairslot-bench:{os.getpid()}:",
            "FAIRSLOT_GUARD_LEDGER_PATH": "",
            "FAIRSLOT_GUARD_LIMITS": lifted_limits(*groups)}


def screen_then_act(base: Server, args: argparse.Namespace, screen_path: Callable[[int], str],
                    act: Callable[[int], tuple[str, str, bytes]], tokens: list[str],
                    labels: tuple[str, str, str]) -> None:
    """Measure ``/healthz``, every patient's screen (which issues the action token) and,
    after the tokens' minimum age, every patient's action with its token, in ``args.pairs``
    pairs: each pair's patients see their screens, then ``/healthz`` is measured while their
    tokens age, then they act. So each action phase has a ``/healthz`` phase of its own
    measured seconds before it on the same server, and a neighbour's burst on this shared
    machine skews one pair rather than the whole run. Prints the figures of all phases
    together and the ratios from them (as before the pairs), then each pair's ratios and
    their medians. ``act(n)`` gives the action's method, path and JSON body.

    Each pair also measures the floor (``_floor_app``: a durable one-row write through the
    same stack, no guard or rules) after ``/healthz``, if the server serves it
    (``server(..., app=FLOOR_APP)``): what an action costs beyond it is the action's own
    work (the guard's checks, the log-in, locks, quotas, rules, events)."""
    action_tokens: list[dict[str, str]] = [{}] * len(tokens)
    offset = 0

    async def health_request(conn: Connection, n: int) -> tuple[int, bytes]:
        return await conn.request("GET", "/healthz")

    async def floor_request(conn: Connection, n: int) -> tuple[int, bytes]:
        return await conn.request("POST", "/bench/floor")

    async def screen(conn: Connection, n: int) -> tuple[int, bytes]:
        n += offset
        status, body = await conn.request("GET", screen_path(n),
                                          headers={"Authorization": f"Bearer {tokens[n]}"})
        if status == 200:
            parsed = json.loads(body)
            action_tokens[n] = {parsed["token_header"]: parsed["action_token"]}
        return status, body

    async def action_request(conn: Connection, n: int) -> tuple[int, bytes]:
        n += offset
        method, path, body = act(n)
        return await conn.request(method, path, body,
                                  {"Authorization": f"Bearer {tokens[n]}", **action_tokens[n]})

    load(base, 300, args.concurrency, health_request)  # warm-up
    pairs = max(1, min(args.pairs, args.requests // 100))
    size = args.requests // pairs
    # /healthz is cheap: at least 1,000 a phase, so that its CPU is many clock ticks.
    health_size = max(size, 1000)
    healths, screens, actions, floors = [], [], [], []
    with_floor = load(base, 1, 1, floor_request)[1] == {201: 1}
    for _ in range(pairs):
        screens.append(measure(base, size, args.concurrency, screen))
        shown = time.monotonic()
        healths.append(measure(base, health_size, args.concurrency, health_request))
        if with_floor:
            floors.append(measure(base, health_size, args.concurrency, floor_request))
        # The action tokens' minimum age: a patient reads the screen first.
        time.sleep(max(0.0, 2.0 - (time.monotonic() - shown)))
        actions.append(measure(base, size, args.concurrency, action_request))
        offset += size
    health, screened, action = combined(healths), combined(screens), combined(actions)
    print(f"server: {args.workers} uvicorn workers, PostgreSQL ({args.pool_size} connections a "
          f"worker, {args.pool_overflow} more at a busy moment); client: {args.concurrency} "
          f"concurrent connections, {pairs * size} requests of each action in {pairs} pairs "
          f"of phases ({health_size} /healthz a pair); CPU: the server's processes and the "
          f"database's backends")
    print(health.line("GET /healthz"))
    print(screened.line(labels[0]))
    print(action.line(labels[1]))
    for status, body in examples.items():
        print(f"  e.g. {status}: {body}")
    report(health, action, labels[2])
    if floors:
        floor = combined(floors)
        print(floor.line("POST durable write"))
        print(f"floor: a durable one-row write through the same stack against /healthz = "
              f"{ratios(health, floor)[1]:.3f} (CPU per request); {labels[2]} beyond it: "
              f"server {action.server_ms - floor.server_ms:+.2f} ms, database "
              f"{action.database_ms - floor.database_ms:+.2f} ms")
    by_pair = [ratios(h, a) for h, a in zip(healths, actions, strict=True)]
    for n, ((by_rps, by_cpu), h, a) in enumerate(zip(by_pair, healths, actions,
                                                     strict=True), 1):
        floor_ms = (f", durable write {floors[n - 1].server_ms:.2f} + "
                    f"{floors[n - 1].database_ms:.2f} ms" if floors else "")
        print(f"  pair {n}: /healthz {h.server_ms:.2f} ms{floor_ms}, {labels[2]} "
              f"{a.server_ms:.2f} + {a.database_ms:.2f} ms; ratio {by_rps:.3f} (throughput), "
              f"{by_cpu:.3f} (CPU)")
    print(f"median of {pairs} pairs: ratio {labels[2]}/healthz = "
          f"{statistics.median(r for r, _ in by_pair):.3f} (throughput), "
          f"{statistics.median(c for _, c in by_pair):.3f} (CPU per request)")

"""Shared by the benchmarks: a throw-away PostgreSQL database, a uvicorn server on a free
loopback port, and a bounded async load loop that reports requests per second."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
import sqlalchemy as sa

from fairslot.storage.database import make_engine
from fairslot.storage.migrate import upgrade

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
    engine.dispose()
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(env: dict[str, str], *, workers: int = 4,
           app: str = "fairslot.web.asgi:app") -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--workers", str(workers),
         "--log-level", "warning", "--no-access-log"],
        env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
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

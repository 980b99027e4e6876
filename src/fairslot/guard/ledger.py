"""Where spent action tokens and proof-of-work solutions are remembered until they would
have expired anyway, so that each is accepted once, also across a restart.

A ``TokenLedger`` has one operation, ``spend(name, expires_at)``: True the first time a
name is spent, False every later time until ``expires_at`` (seconds since the epoch on the
guard's clock). Three implementations:

- ``RedisLedger``: shared by every worker (``SET NX``); while Redis is unreachable it
  spends in a local ledger instead (so a token could then be replayed once against the
  other side of the outage; docs/guard.md says so);
- ``SqliteLedger``: a SQLite file of its own (stdlib ``sqlite3``, WAL,
  ``synchronous=FULL``), for embedded mode: a spent token stays spent when the server
  restarts or crashes, and several processes on one host share it. Its own file rather than
  a table in the platform's database keeps the guard free of the platform's storage layer
  and migrations, and works the same under PostgreSQL deployments without Redis;
- ``MemoryLedger``: this process only (tests, and a ledger path of ``""``).

``build_ledger`` picks one from the settings; ``Guard`` takes another through its
``ledger`` argument.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from fairslot.clock import Clock
from fairslot.guard.state import REDIS_ERRORS, SharedState

__all__ = ["MemoryLedger", "RedisLedger", "SqliteLedger", "TokenLedger", "build_ledger"]

_log = logging.getLogger("fairslot.guard")

_SWEEP_SECONDS = 60.0


class TokenLedger(Protocol):
    async def spend(self, name: str, expires_at: float) -> bool:
        """Mark ``name`` spent until ``expires_at``; False if it already was."""
        ...

    async def close(self) -> None: ...


class MemoryLedger:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._spent: dict[str, float] = {}
        self._next_sweep = 0.0

    async def spend(self, name: str, expires_at: float) -> bool:
        return self.spend_now(name, expires_at)

    def spend_now(self, name: str, expires_at: float) -> bool:
        now = self._clock.now().timestamp()
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_SECONDS
            self._spent = {k: t for k, t in self._spent.items() if t > now}
        known = self._spent.get(name)
        if known is not None and known > now:
            return False
        self._spent[name] = expires_at
        return True

    async def close(self) -> None:
        self._spent.clear()


class SqliteLedger:
    """Spent names in a SQLite file. The file is opened on first use (building a guard
    creates nothing on disk); calls run in a worker thread so that a slow disk's ``fsync``
    never stalls the event loop. If the file cannot be opened or written (a read-only or
    full disk), the ledger logs it once and remembers spent names in memory instead, as
    the guard did before it had a ledger: a request never fails for it."""

    def __init__(self, path: str | os.PathLike[str], clock: Clock) -> None:
        self.path = Path(path)
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._next_sweep = 0.0
        self._fallback = MemoryLedger(clock)
        self._broken = False

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            db = sqlite3.connect(self.path, isolation_level=None, timeout=2.0,
                                 check_same_thread=False)
            if fresh:
                os.chmod(self.path, 0o600)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a spend that returned True is on disk, through a power cut as well as
            # a crash (measured at about 0.2 ms a spend on the test machine).
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE IF NOT EXISTS spent (name TEXT PRIMARY KEY, "
                       "expires_at REAL NOT NULL) WITHOUT ROWID")
            db.execute("CREATE INDEX IF NOT EXISTS spent_expiry ON spent (expires_at)")
            self._db = db
        return self._db

    def spend_now(self, name: str, expires_at: float) -> bool:
        now = self._clock.now().timestamp()
        with self._lock:
            db = self._open()
            db.execute("BEGIN IMMEDIATE")
            try:
                if now >= self._next_sweep:
                    self._next_sweep = now + _SWEEP_SECONDS
                    db.execute("DELETE FROM spent WHERE expires_at <= ?", (now,))
                else:
                    db.execute("DELETE FROM spent WHERE name = ? AND expires_at <= ?",
                               (name, now))
                inserted = db.execute("INSERT OR IGNORE INTO spent VALUES (?, ?)",
                                      (name, expires_at)).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return inserted == 1

    async def spend(self, name: str, expires_at: float) -> bool:
        if not self._broken:
            try:
                return await asyncio.to_thread(self.spend_now, name, expires_at)
            except (sqlite3.Error, OSError) as exc:
                self._broken = True
                # The class and the file name only: nothing secret is in either.
                _log.error("guard ledger %s unusable (%s); spent tokens are kept in memory "
                           "until restart", self.path.name, type(exc).__name__)
        return self._fallback.spend_now(name, expires_at)

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class RedisLedger:
    """Spent names in Redis (``<prefix>spent:<name>``, expiring with the name), and in
    ``local`` while Redis is unreachable."""

    def __init__(self, state: SharedState, local: MemoryLedger | SqliteLedger,
                 clock: Clock) -> None:
        assert state.redis is not None
        self._state = state
        self._local = local
        self._clock = clock

    async def spend(self, name: str, expires_at: float) -> bool:
        redis_state = self._state.redis
        if redis_state is not None and self._state.use_redis():
            ttl = max(expires_at - self._clock.now().timestamp(), 0.001)
            spender = redis_state.spender()
            try:
                spent = await self._state.retrying(
                    lambda r: r.spend(name, ttl, spender), redis_state)
            except REDIS_ERRORS as exc:
                self._state.failed(exc)
            else:
                self._state.succeeded()
                return spent
        return await self._local.spend(name, expires_at)

    async def close(self) -> None:
        await self._local.close()


def build_ledger(state: SharedState, path: str, clock: Clock) -> TokenLedger:
    """Redis when configured (with the file, or memory, for outages); else the file at
    ``path``; else (``path`` empty) memory."""
    local: MemoryLedger | SqliteLedger = (
        SqliteLedger(path, clock) if path else MemoryLedger(clock))
    if state.configured:
        return RedisLedger(state, local, clock)
    return local

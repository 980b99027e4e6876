"""Engines and sessions for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import os
import pathlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from fairslot.storage.errors import USE_CASE, install_translation
from fairslot.storage.keys import follow_keyring
from fairslot.storage.orm import map_domain

__all__ = ["lock_engine", "make_engine", "make_session_factory", "ping", "side_engine"]


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_SQLITE_POOL = 40


def _private_database_file(path: pathlib.Path) -> None:
    """The SQLite file holds encrypted PII, blind indexes and the event log: readable by
    its owner only (0600; SQLite gives its -wal and -shm files the same mode). A file that
    exists is tightened too when this process owns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except OSError:  # another user's file: leave its mode to its owner
            pass
    else:
        os.close(fd)


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None,
                pool_timeout: float = 30.0) -> Engine:
    """An engine for ``url``. PostgreSQL: a pool of ``pool_size`` connections, and at busy
    moments up to ``max_overflow`` more (``pool_size`` more if not given), closed again
    once given back; with 0, a request beyond the pool waits for a pooled connection, up
    to ``pool_timeout`` seconds (``Settings.database_pool_size``). SQLite keeps its own
    pool."""
    map_domain()
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        pool: dict[str, Any] = {}
        if parsed.database and parsed.database != ":memory:":
            _private_database_file(pathlib.Path(parsed.database))
            # Keep as many connections as the server's threadpool runs handlers (40):
            # with the default five, every busier moment opened and closed connections,
            # each paying for its pragmas, and that was a tenth of a browsing request.
            pool = {"pool_size": _SQLITE_POOL, "max_overflow": 10}
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **pool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(parsed, pool_size=pool_size, pool_timeout=pool_timeout,
                              max_overflow=pool_size if max_overflow is None else max_overflow)
    _ping_when_idle(engine)
    return engine


_SIDE_ENGINES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_LOCK_ENGINES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_MADE: weakref.WeakSet[Engine] = weakref.WeakSet()  # side and lock engines themselves
_MAKING = threading.Lock()
SIDE_POOL = (1, 9)
"""The side engine's pool: one connection kept, up to nine more while busy (closed again)."""


def _beside(engine: Engine, made: weakref.WeakKeyDictionary[Engine, Engine],
            pooled: bool) -> Engine:
    """``made``'s engine for ``engine``'s database, made once (``pooled``: the side pool,
    sharing ``engine``'s time-out and pinged when idle; else a connection a use), disposed
    with ``engine``, with its keyring now and after any rebinding. PostgreSQL only:
    SQLite's engine, or an engine made here, is returned as it is."""
    if engine.dialect.name != "postgresql" or engine in _MADE:
        return engine
    with _MAKING:
        found = made.get(engine)
        if found is None:
            if pooled:
                size, overflow = SIDE_POOL
                found = sa.create_engine(
                    engine.url, pool_size=size, max_overflow=overflow,
                    pool_timeout=getattr(engine.pool, "timeout", lambda: 30.0)())
                _ping_when_idle(found)
            else:
                found = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
            follow_keyring(engine, found)  # the same database: the same keys
            event.listen(engine, "engine_disposed", _disposer(found))
            _MADE.add(found)
            made[engine] = found
    return found


def _disposer(other: Engine) -> Callable[[Engine], None]:
    def dispose(_: Engine) -> None:
        other.dispose()
    return dispose


def side_engine(engine: Engine) -> Engine:
    """An engine on ``engine``'s database with a small pool of its own, for work done
    outside a request's unit of work that may run while the request holds one of
    ``engine``'s connections: the monitor's and the shared blacklist's stores and the
    list's reads into memory. Taken from the requests' pool, such work waited for a
    connection its own caller held whenever every pooled connection was held that way
    (``FAIRSLOT_DATABASE_POOL_OVERFLOW=0``), up to the pool's time-out, which the side
    pool shares. SQLite's engine is returned as it is (its pool opens another connection
    to the file when all are taken)."""
    return _beside(engine, _SIDE_ENGINES, pooled=True)


def lock_engine(engine: Engine) -> Engine:
    """Where the background loops hold PostgreSQL's session advisory locks: a connection
    opened for each hold and closed after it, outside both pools. Closing it is what
    surely ends the hold; a pooled connection given back with its lock still held (an
    unlock that failed) would keep every other worker out until this one restarts."""
    return _beside(engine, _LOCK_ENGINES, pooled=False)


PING_AFTER_IDLE_SECONDS = 5.0
"""A pooled PostgreSQL connection idle this long is pinged before it is handed out."""


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling at a round trip per *idle* checkout, not per
    checkout: ``pool_pre_ping`` pinged before every request, a round trip that cost a busy
    server more than some of the request's own statements. A connection given back less
    than ``PING_AFTER_IDLE_SECONDS`` ago was working then; one that has waited longer (a
    database restarted, a firewall dropping idle sockets) is pinged and, if dead, replaced
    before any statement uses it. A connection that dies under load is caught by
    SQLAlchemy's disconnect handling, which also discards every older connection in the
    pool, so the request that meets it fails and the next ones get new connections."""

    @event.listens_for(engine, "connect")
    def connected(dbapi_connection: Any, record: Any) -> None:
        record.info["fairslot_returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        record.info["fairslot_returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def handed_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get("fairslot_returned_at")
        if returned_at is not None and time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc
        if not alive:
            raise sa.exc.DisconnectionError("the pooled connection did not answer")


def ping(engine: Engine) -> None:
    """Raises ``sqlalchemy.exc.SQLAlchemyError`` when the database does not answer."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def make_session_factory(engine: Engine) -> sessionmaker[Any]:
    """Sessions for units of work: their statements' errors become the platform's own."""
    install_translation(engine)
    return sessionmaker(bind=engine.execution_options(**{USE_CASE: True}),
                        expire_on_commit=False)

"""PostgreSQL connections whose transactions start without a round trip of their own.

psycopg, outside autocommit, sends ``BEGIN`` and waits for its answer before the first
statement of every transaction: a booking paid one of its six round trips for it. These
connections keep psycopg itself in autocommit and start each transaction themselves: the
first statement goes out in pipeline mode behind ``BEGIN``, both in one write, answered
together (``BEGIN``, the statement, one ``Sync``; the explicit ``BEGIN`` keeps the
transaction open past the ``Sync``).

To SQLAlchemy and every other caller they behave as ordinary psycopg connections:
``autocommit`` reads and sets the *requested* mode (``False`` by default, as psycopg's),
``commit()`` and ``rollback()`` end the transaction (psycopg sends them whenever one is open,
whatever its autocommit), the isolation level, read-only and deferrable settings go into
the ``BEGIN``, and a statement that fails leaves the transaction failed until its rollback,
as before. ``executemany``, ``copy``, ``stream`` and server-side cursors send their
``BEGIN`` alone first (they are not on the hot path)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq

__all__ = ["LazyBeginConnection", "connect"]

_IDLE = pq.TransactionStatus.IDLE


def _begin_command(conn: LazyBeginConnection) -> bytes:
    parts = [b"BEGIN"]
    if conn.isolation_level is not None:
        parts.append(b"ISOLATION LEVEL " + conn.isolation_level.name.replace("_", " ").encode())
    if conn.read_only is not None:
        parts.append(b"READ ONLY" if conn.read_only else b"READ WRITE")
    if conn.deferrable is not None:
        parts.append(b"DEFERRABLE" if conn.deferrable else b"NOT DEFERRABLE")
    return b" ".join(parts)


def _needs_begin(conn: Any) -> bool:
    return (isinstance(conn, LazyBeginConnection) and conn.transactional
            and conn.pgconn.transaction_status == _IDLE)


def _begin_alone(conn: Any) -> None:
    if _needs_begin(conn):
        psycopg.Cursor(conn).execute(_begin_command(conn))


class LazyBeginCursor(psycopg.Cursor[Any]):
    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None,
                binary: bool | None = None) -> LazyBeginCursor:
        conn = self.connection
        if not _needs_begin(conn) or conn.pgconn.pipeline_status:
            _begin_alone(conn)
            super().execute(query, params, prepare=prepare, binary=binary)
            return self
        with conn.pipeline():
            psycopg.Cursor(conn).execute(_begin_command(conn))  # type: ignore[arg-type]
            super().execute(query, params, prepare=prepare, binary=binary)
        return self

    def executemany(self, query: Any, params_seq: Any, *, returning: bool = False) -> None:
        _begin_alone(self.connection)
        super().executemany(query, params_seq, returning=returning)

    def stream(self, query: Any, params: Any = None, *, binary: bool | None = None,
               size: int = 1) -> Iterator[Any]:
        _begin_alone(self.connection)
        return super().stream(query, params, binary=binary, size=size)

    @contextmanager
    def copy(self, statement: Any, params: Any = None, *,
             writer: Any = None) -> Iterator[psycopg.Copy]:
        _begin_alone(self.connection)
        with super().copy(statement, params, writer=writer) as copy:
            yield copy


class LazyBeginServerCursor(psycopg.ServerCursor[Any]):
    def execute(self, query: Any, params: Any = None, *, binary: bool | None = None,
                **kwargs: Any) -> LazyBeginServerCursor:
        _begin_alone(self.connection)
        super().execute(query, params, binary=binary, **kwargs)
        return self


class LazyBeginConnection(psycopg.Connection[Any]):
    transactional = True
    """The mode asked for: ``False`` once a caller sets ``autocommit`` (psycopg itself stays in
    autocommit either way; these connections send ``BEGIN`` when this is ``True``)."""

    @property
    def autocommit(self) -> bool:
        return not self.transactional

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self.set_autocommit(value)

    def set_autocommit(self, value: bool) -> None:
        if self.pgconn.transaction_status != _IDLE:
            raise psycopg.ProgrammingError(
                "can't change 'autocommit' now: connection in transaction status "
                f"{pq.TransactionStatus(self.pgconn.transaction_status).name}")
        self.transactional = not value


def connect(*args: Any, **kwargs: Any) -> LazyBeginConnection:
    """``psycopg.connect`` for a connection of this module's kind."""
    autocommit = bool(kwargs.pop("autocommit", False))
    conn = LazyBeginConnection.connect(*args, **kwargs)
    psycopg.Connection.set_autocommit(conn, True)
    conn.transactional = not autocommit
    conn.cursor_factory = LazyBeginCursor
    conn.server_cursor_factory = LazyBeginServerCursor
    return conn

"""PostgreSQL's fast paths (migrations 0018 and 0020's functions) send several statements in
one message on the unit of work's own psycopg connection, past SQLAlchemy: what they share."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.storage.errors import translate

__all__ = ["IDLE", "Decoders", "FactRow", "begin_if_idle", "connection", "decoders", "errors",
           "read_with_facts"]

IDLE = psycopg.pq.TransactionStatus.IDLE

Decoders = tuple[tuple[str, str, Callable[[Any, sa.Dialect], Any] | None], ...]
FactRow = tuple[str, str | None, dt.datetime | None]


def connection(db: DbSession) -> psycopg.Connection[Any]:
    """The session's connection (checked out, and the transaction begun, as SQLAlchemy does
    for any statement) as psycopg's."""
    raw = db.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def begin_if_idle(raw: psycopg.Connection[Any]) -> str:
    """``"BEGIN; "`` to put before a message's statements when the connection is in
    autocommit (``UnitOfWork.autocommit``) and no transaction is open, so that the
    transaction starts in that message; outside autocommit psycopg sends its own ``BEGIN``
    first, as for any statement."""
    return "BEGIN; " if raw.autocommit and raw.info.transaction_status == IDLE else ""


def decoders(table: sa.Table, fields: tuple[str, ...], prefix: str) -> Decoders:
    """For each field: its name, its column's label in a fast look-up's row and the column
    type's result processing (None: the value as the driver gives it), found once rather
    than per request."""
    found = []
    for f in fields:
        kind = table.c[f].type
        decode = kind.process_result_value if isinstance(kind, sa.types.TypeDecorator) else None
        found.append((f, prefix + f, decode))
    return tuple(found)


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """psycopg's errors as the unit of work's statements raise them: the platform's where
    ``storage.errors.translate`` has one (a refused row, a lost deadlock, the database
    gone), SQLAlchemy's otherwise."""
    try:
        yield
    except psycopg.Error as exc:
        wrapped = sa.exc.DBAPIError.instance(None, None, exc, psycopg.Error)
        raise (translate(wrapped) or wrapped) from exc


def read_with_facts(db: DbSession, statement: str, params: Sequence[Any]
                    ) -> tuple[tuple[Any, ...] | None, list[FactRow]]:
    """Send ``statement`` (a look-up under the quota locks, then the quota facts' select)
    as one message, opening the transaction in it when the connection is in autocommit:
    the look-up's first row (None: no row) and the facts' rows, their times in UTC."""
    conn = connection(db)
    begin = begin_if_idle(conn)
    with errors(), psycopg.ClientCursor(conn) as cur:
        cur.execute(begin + statement, params)
        if begin:
            cur.nextset()
        row = cur.fetchone()
        cur.nextset()
        facts = [(kind, key, None if at is None else at.astimezone(dt.UTC))
                 for kind, key, at in cur.fetchall()]
    return row, facts

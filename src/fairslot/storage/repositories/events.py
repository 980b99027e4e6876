"""The append-only event log, the notifications inbox and the outbox of external calls."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as DbSession

from fairslot.storage import tables as t

__all__ = ["EventLogWriter", "EventRepository", "Notification", "NotificationRepository",
           "OutboxItem", "OutboxRepository", "RecordedEvent"]


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedEvent:
    kind: str
    at: dt.datetime
    fields: dict[str, Any]


_INSERT_EVENT = sa.insert(t.events)
_EMPTY_EVENT: dict[str, Any] = {c.name: None for c in t.events.columns if c.name != "id"}


class EventRepository:
    """There is deliberately no update or delete here. Events appended in a transaction are
    kept in ``appended`` so that, once it commits, they can be handed on (to monitoring)."""

    def __init__(self, db: DbSession) -> None:
        self.db = db
        self.appended: list[RecordedEvent] = []

    def append(self, kind: str, at: dt.datetime, **fields: Any) -> None:
        # One statement object with every column as a parameter: compiled once, reused.
        self.db.execute(_INSERT_EVENT, self.along(kind, at, **fields))

    def along(self, kind: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
        """The event's row (every column but ``id``), for a statement that writes it along
        with other rows (``RoundRepository.add_new_entry``), which the caller runs in this
        transaction; it is handed on with the others once the transaction commits."""
        detail = fields.pop("detail", None) or {}
        self.appended.append(RecordedEvent(kind, at, {**fields, "detail": detail}))
        return {**_EMPTY_EVENT, **fields, "kind": kind, "at": at, "detail": detail}

    def note(self, kind: str, at: dt.datetime, **fields: Any) -> None:
        """An event another statement of this transaction wrote (``BookingRepository.
        hold_free_slot``), to be handed on at commit like an appended one."""
        self.appended.append(RecordedEvent(kind, at, fields))

    # -- the operator's console: what happened in the last minutes ------------------------

    def counts_since(self, kinds: Sequence[str], since: dt.datetime) -> dict[str, int]:
        """Events of each kind at or after ``since``."""
        rows = self.db.execute(
            sa.select(t.events.c.kind, sa.func.count()).where(
                t.events.c.at >= since, t.events.c.kind.in_(list(kinds)))
            .group_by(t.events.c.kind)).all()
        return {str(kind): int(n) for kind, n in rows}

    def times_since(self, kinds: Sequence[str], since: dt.datetime,
                    limit: int = 50_000) -> list[tuple[str, dt.datetime]]:
        """(kind, time) of the events of these kinds since ``since`` (for per-minute series
        of low-volume kinds: bookings, cancellations)."""
        return [(str(k), at) for k, at in self.db.execute(
            sa.select(t.events.c.kind, t.events.c.at).where(
                t.events.c.at >= since, t.events.c.kind.in_(list(kinds)))
            .order_by(t.events.c.at).limit(limit)).all()]

    def details_since(self, kind: str, since: dt.datetime,
                      limit: int = 20_000) -> list[dict[str, Any]]:
        return [dict(d or {}) for (d,) in self.db.execute(
            sa.select(t.events.c.detail).where(t.events.c.at >= since,
                                               t.events.c.kind == kind)
            .order_by(t.events.c.id.desc()).limit(limit)).all()]

    def top_since(self, column: str, kinds: Sequence[str], since: dt.datetime,
                  limit: int = 5) -> list[tuple[str, int]]:
        """The most frequent values of ``column`` (ip, account_id, device_id) among events
        of these kinds since ``since``."""
        col = t.events.c[column]
        n = sa.func.count().label("n")
        return [(str(v), int(c)) for v, c in self.db.execute(
            sa.select(col, n).where(t.events.c.at >= since, t.events.c.kind.in_(list(kinds)),
                                    col.is_not(None))
            .group_by(col).order_by(n.desc()).limit(limit)).all()]
    def of_account_since(self, account_id: int, kind: str,
                         since: dt.datetime) -> list[tuple[dt.datetime, dict[str, Any]]]:
        """(time, detail) of the account's events of ``kind`` at or after ``since``, oldest
        first (what the desk's quotas count)."""
        rows = self.db.execute(
            sa.select(t.events.c.at, t.events.c.detail)
            .where(t.events.c.account_id == account_id, t.events.c.kind == kind,
                   t.events.c.at >= since)
            .order_by(t.events.c.at)).all()
        return [(row.at, dict(row.detail or {})) for row in rows]

    def recent(self, limit: int = 100, kind: str | None = None) -> Sequence[Any]:
        query = sa.select(t.events).order_by(t.events.c.id.desc()).limit(limit)
        if kind:
            query = query.where(t.events.c.kind == kind)
        return self.db.execute(query).all()


class EventLogWriter:
    """Writes batches of events outside any use case (the access log, the guard's
    decisions), each batch in a transaction of its own."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                _copy_events(conn, rows)
            else:
                conn.execute(sa.insert(t.events), rows)


_COPY_COLUMNS = ("at", "kind", "account_id", "patient_id", "session_id", "booking_id", "ip",
                 "device_id", "detail")
_COPY_EVENTS = f"COPY events ({', '.join(_COPY_COLUMNS)}) FROM STDIN"


def _copy_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """A batch of events in one COPY: PostgreSQL parses, plans and executes no statement
    per row, and the driver sends one stream, where ``executemany`` ran one INSERT per row
    (the batch's server CPU fell by more than half when measured with 50 access rows).
    Values are converted as the columns' types would: times to UTC (a naive one is an
    error, as ``UTCDateTime`` makes it), ``detail`` to JSON."""
    from psycopg.types.json import Json

    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(_COPY_EVENTS) as copy:
        for row in rows:
            at = row["at"]
            if at.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            copy.write_row((at.astimezone(dt.UTC), row["kind"], row.get("account_id"),
                            row.get("patient_id"), row.get("session_id"),
                            row.get("booking_id"), row.get("ip"), row.get("device_id"),
                            Json(row.get("detail") or {})))


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    id: int
    account_id: int
    at: dt.datetime
    kind: str
    text: str
    read: bool


class NotificationRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def add(self, account_id: int, at: dt.datetime, kind: str, text: str) -> None:
        self.db.execute(sa.insert(t.notifications).values(account_id=account_id, at=at,
                                                          kind=kind, text=text, read=False))

    def inbox(self, account_id: int, limit: int = 50) -> list[Notification]:
        return [Notification(r.id, r.account_id, r.at, r.kind, r.text, bool(r.read))
                for r in self.db.execute(
                    sa.select(t.notifications).where(t.notifications.c.account_id == account_id)
                    .order_by(t.notifications.c.id.desc()).limit(limit)).all()]


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    due_at: dt.datetime


class OutboxRepository:
    """Calls to the outside world (a payment provider's charge or refund, a text message)
    recorded in the transaction that decided them, made after it commits, and retried until
    done: a failed call is never lost."""

    def __init__(self, db: DbSession) -> None:
        self.db = db
        self.added: list[int] = []

    def add(self, kind: str, payload: dict[str, Any], now: dt.datetime) -> int:
        item_id = int(self.db.execute(sa.insert(t.outbox).values(
            kind=kind, payload=payload, created_at=now, due_at=now, attempts=0)
            .returning(t.outbox.c.id)).scalar_one())
        self.added.append(item_id)
        return item_id

    def claim(self, item_id: int) -> OutboxItem | None:
        """Lock a pending item for this transaction (skipped when another worker has it)."""
        row = self.db.execute(
            sa.select(t.outbox).where(t.outbox.c.id == item_id, t.outbox.c.done_at.is_(None))
            .with_for_update(skip_locked=True)).first()
        return None if row is None else _item(row)

    def due(self, now: dt.datetime, limit: int = 100) -> list[int]:
        return [int(i) for i in self.db.scalars(
            sa.select(t.outbox.c.id).where(t.outbox.c.done_at.is_(None),
                                           t.outbox.c.due_at <= now)
            .order_by(t.outbox.c.due_at, t.outbox.c.id).limit(limit)).all()]

    def done(self, item_id: int, now: dt.datetime) -> None:
        self.db.execute(sa.update(t.outbox).where(t.outbox.c.id == item_id)
                        .values(done_at=now, attempts=t.outbox.c.attempts + 1))

    def failed(self, item_id: int, error: str, retry_at: dt.datetime) -> None:
        self.db.execute(sa.update(t.outbox).where(t.outbox.c.id == item_id)
                        .values(attempts=t.outbox.c.attempts + 1, due_at=retry_at,
                                last_error=error[:200]))

    def pending(self, kind: str | None = None) -> list[OutboxItem]:
        query = sa.select(t.outbox).where(t.outbox.c.done_at.is_(None)).order_by(t.outbox.c.id)
        if kind:
            query = query.where(t.outbox.c.kind == kind)
        return [_item(r) for r in self.db.execute(query).all()]


def _item(row: Any) -> OutboxItem:
    return OutboxItem(id=row.id, kind=row.kind, payload=dict(row.payload),
                      attempts=row.attempts, due_at=row.due_at)

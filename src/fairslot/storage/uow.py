"""The unit of work: one database transaction, the repositories that share it, the locks
its rules need, and what to hand on once it commits.

A web request gets one unit of work (``web/deps.py``): authentication and the use case run
in it, so a booking checks out one pooled connection. ``with uow: ...; uow.commit()``;
leaving the block without commit rolls back, so a failed request never leaves half its
writes behind. A use case may commit more than once when it must call the outside world
between two short transactions (a payment's charge runs after the booking is marked paid,
with an outbox item that finishes the work if the process dies in between)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from fairslot.crypto import Keyring
from fairslot.storage.errors import translated
from fairslot.storage.locks import lock_columns, lock_keys, sqlite_begin_immediate
from fairslot.storage.repositories import (
    AccountRepository,
    BookingRepository,
    CodeRepository,
    DrawRepository,
    EventRepository,
    MessageRepository,
    NotificationRepository,
    OutboxRepository,
    PatientRepository,
    QuotaRepository,
    RecordedEvent,
    RoundRepository,
    ScheduleRepository,
)
from fairslot.storage.repositories.consortium import ConsortiumReviewRepository

__all__ = ["CommitHook", "UnitOfWork"]

CommitHook = Callable[[list[RecordedEvent]], None]
"""Called after each commit with the events that transaction appended."""


class UnitOfWork:
    db: DbSession

    def __init__(self, session_factory: sessionmaker[Any], keyring: Keyring, *,
                 on_commit: Iterable[CommitHook] = ()) -> None:
        self._factory = session_factory
        self.keyring = keyring
        self._on_commit = list(on_commit)
        bind = session_factory.kw.get("bind")
        self.dialect: str = bind.dialect.name if bind is not None else "sqlite"

    closed = False
    """True once the block has ended: a late reader (an error page rendered after the
    request's unit of work closed) must not start a transaction nobody would end."""

    def __enter__(self) -> UnitOfWork:
        self.closed = False
        self.db = self._factory()
        postgres = self.dialect == "postgresql"
        self.schedule = ScheduleRepository(self.db)
        self.accounts = AccountRepository(self.db, self.keyring)
        self.patients = PatientRepository(self.db, self.keyring)
        self.bookings = BookingRepository(self.db, self.keyring, postgres=postgres)
        self.quotas = QuotaRepository(self.db)
        self.events = EventRepository(self.db)
        self.rounds = RoundRepository(self.db)
        self.draw = DrawRepository(self.db)
        self.notifications = NotificationRepository(self.db)
        self.outbox = OutboxRepository(self.db)
        self.consortium = ConsortiumReviewRepository(self.db)
        self.messages = MessageRepository(self.db)
        self.codes = CodeRepository(self.db, self.keyring)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Detach first: objects handed out stay readable after the block, and a rollback
        # cannot expire them into needing a session that is gone.
        self.closed = True
        self.db.expunge_all()
        self.db.rollback()
        self.db.close()

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    def autocommit(self) -> None:
        """PostgreSQL: run this unit of work's statements in autocommit until a use case
        opens a transaction itself, which the booking's fast path does in the message of
        its first locked statement (``BookingRepository.read_for_booking``): psycopg
        would otherwise send ``BEGIN`` alone, a round trip of its own, before the log-in
        token's look-up. Call it before the first statement, for a use case that writes
        only through such a path; nothing on SQLite."""
        if self.postgres:
            self.db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    def lock(self, *names: tuple[str, str | int]) -> None:
        """Hold these named locks (e.g. ``("patient", 42)``) until the transaction ends, so
        that a rule read after this point cannot change under the transaction before it
        commits (see ``storage.locks``). Call it before reading what a quota counts."""
        keys = lock_keys(names)
        if not keys:
            return
        if self.postgres:
            self.db.execute(sa.select(*lock_columns(keys)))
        else:
            self.begin_write()

    def begin_write(self) -> None:
        """On SQLite, become the one writer now (``BEGIN IMMEDIATE``); nothing on
        PostgreSQL, whose row and advisory locks do the same job per thing."""
        if not self.postgres:
            raw = self.db.connection().connection.dbapi_connection
            sqlite_begin_immediate(raw)

    def lock_keys(self, *names: tuple[str, str | int]) -> list[int]:
        """The advisory keys for ``names``, for a query that takes them itself (and, on
        SQLite, the write lock taken now instead)."""
        if not self.postgres:
            self.begin_write()
            return []
        return lock_keys(names)

    def release(self) -> None:
        """End the transaction (rolled back unless committed) and give the connection back
        to the pool; the unit of work can start another transaction later."""
        self.db.expunge_all()
        self.db.close()
        self.events.appended.clear()
        self.outbox.added.clear()

    def rollback(self) -> None:
        """Undo this transaction's work (a page that shows an error after a refused use
        case reads on from a clean state)."""
        self.db.rollback()
        self.events.appended.clear()
        self.outbox.added.clear()

    def flush(self) -> None:
        with translated():
            self.db.flush()

    def commit(self) -> None:
        with translated():
            self.db.commit()
        appended, self.events.appended = self.events.appended, []
        for hook in self._on_commit:
            hook(appended)

"""The unit of work: one database transaction and the repositories that share it."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from fairslot.storage.repositories import (
    AccountRepository,
    BookingRepository,
    EventRepository,
    PatientRepository,
    RoundRepository,
    ScheduleRepository,
)

__all__ = ["UnitOfWork"]


class UnitOfWork:
    """``with uow: ...; uow.commit()``. Leaving the block without commit rolls back, so a
    failed request never leaves half its writes behind."""

    db: DbSession

    def __init__(self, session_factory: sessionmaker[Any]) -> None:
        self._factory = session_factory

    def __enter__(self) -> UnitOfWork:
        self.db = self._factory()
        self.schedule = ScheduleRepository(self.db)
        self.accounts = AccountRepository(self.db)
        self.patients = PatientRepository(self.db)
        self.bookings = BookingRepository(self.db)
        self.events = EventRepository(self.db)
        self.rounds = RoundRepository(self.db)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Detach first: objects handed out stay readable after the block, and a rollback
        # cannot expire them into needing a session that is gone.
        self.db.expunge_all()
        self.db.rollback()
        self.db.close()

    def commit(self) -> None:
        self.db.commit()

    def flush(self) -> None:
        self.db.flush()

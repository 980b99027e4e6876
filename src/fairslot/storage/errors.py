"""Database errors turned into the platform's own: a unique index that refuses a row is a
conflict a user can understand, a deadlock is "busy, try again". Services never see
SQLAlchemy's exceptions."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

import sqlalchemy as sa

from fairslot.domain.errors import Conflict, FairslotError, InvalidInput

__all__ = ["USE_CASE", "Busy", "DatabaseUnavailable", "install_translation", "is_unavailable",
           "translate", "translated"]

USE_CASE = "fairslot_use_case"
"""Execution option set on a unit of work's connections: their errors are translated."""

log = logging.getLogger("fairslot.storage")


class Busy(FairslotError):
    code = "busy_try_again"
    status = 503
    title = "Busy"


class DatabaseUnavailable(FairslotError):
    """The database went away (restarted, failed over, unreachable): the request's
    transaction did not commit; retrying later is safe."""

    code = "database_unavailable"
    status = 503
    title = "Temporarily unavailable"


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the server or the connection went away (not that
    the statement was wrong): connection exceptions (SQLSTATE 08), an administrator's or
    crash shutdown (57P01-57P03), or a connection SQLAlchemy found dead."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):
        return True
    # psycopg reports a refused or dropped connection without a SQLSTATE
    return (isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) and not sqlstate
            and type(exc.orig).__module__.startswith("psycopg"))


# The unique constraints a request can run into, by name (PostgreSQL) and by their columns
# (SQLite names the columns, not the index): code and words for the user.
_UNIQUE: dict[str, tuple[str, str]] = {
    "uq_bookings_active_patient_session": (
        "already_booked", "this patient already has a booking in this session"),
    "bookings.patient_id, bookings.session_id": (
        "already_booked", "this patient already has a booking in this session"),
    "uq_bookings_active_slot": ("slot_unavailable", "no free slot left in this session"),
    "bookings.slot_id": ("slot_unavailable", "no free slot left in this session"),
    "uq_accounts_username": ("username_taken", "that username is taken"),
    "accounts.username": ("username_taken", "that username is taken"),
    "uq_entries_round_id_patient_id": (
        "entry_conflict", "this entry was just made by another request; reload"),
    "entries.round_id, entries.patient_id": (
        "entry_conflict", "this entry was just made by another request; reload"),
    "uq_entries_account_id_idempotency_key": (
        "entry_conflict", "this entry was just made by another request; reload"),
    "entries.account_id, entries.idempotency_key": (
        "entry_conflict", "this entry was just made by another request; reload"),
    "uq_sessions_doctor_id_date_period": (
        "schedule_conflict", "the schedule changed meanwhile; try again"),
    "sessions.doctor_id, sessions.date, sessions.period": (
        "schedule_conflict", "the schedule changed meanwhile; try again"),
    "uq_departments_hospital_id_code": ("department_exists", "a department with that code exists"),
    "departments.hospital_id, departments.code": (
        "department_exists", "a department with that code exists"),
    "uq_patients_id_number_index": (
        "identity_conflict", "this identity was just added by another request; try again"),
    "patients.id_number_index": (
        "identity_conflict", "this identity was just added by another request; try again"),
    "pk_account_patients": ("already_linked", "this patient is already on this account"),
    "account_patients.account_id, account_patients.patient_id": (
        "already_linked", "this patient is already on this account"),
}
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")


def _constraint(exc: sa.exc.IntegrityError) -> str:
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    found = _SQLITE_UNIQUE.search(str(exc.orig))
    return found.group(1).strip() if found else ""


def translate(exc: BaseException) -> FairslotError | None:
    """The platform error for a database error a request can cause, or None."""
    if isinstance(exc, sa.exc.IntegrityError):
        code, words = _UNIQUE.get(_constraint(exc), ("conflict",
                                                    "the data changed meanwhile; try again"))
        if code == "conflict":
            log.warning("unexpected integrity error on %s", _constraint(exc) or "?")
        return Conflict(words, code=code)
    if isinstance(exc, sa.exc.OperationalError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        if sqlstate in ("40P01", "40001") or "database is locked" in str(exc.orig):
            return Busy("the system is busy; please try again")
    if (isinstance(exc, sa.exc.DataError)
            and (getattr(exc.orig, "sqlstate", None) or "") == "22003"):
        # A number beyond its column's range (an id of 2**31 typed into a form): the
        # request's own input, refused like any other bad value.
        return InvalidInput("a number is out of range", code="number_out_of_range")
    if is_unavailable(exc):
        return DatabaseUnavailable("the database is unavailable for a moment; nothing was "
                                   "changed, please try again")
    return None


def _translate(context: sa.engine.ExceptionContext) -> BaseException | None:
    connection = context.connection
    if (connection is None or context.sqlalchemy_exception is None
            or not connection.get_execution_options().get(USE_CASE)):
        return None
    return translate(context.sqlalchemy_exception)


def install_translation(engine: sa.Engine) -> None:
    """Statements run by a unit of work (``USE_CASE`` execution option) raise the
    platform's errors instead of SQLAlchemy's; other code (migrations, tests poking at the
    database) keeps SQLAlchemy's."""
    if not sa.event.contains(engine, "handle_error", _translate):
        sa.event.listen(engine, "handle_error", _translate)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Run database work; a refused row becomes a ``Conflict`` with a stable code, a lost
    deadlock or a serialization failure a ``Busy`` (the transaction is to be retried)."""
    try:
        yield
    except (sa.exc.IntegrityError, sa.exc.OperationalError, sa.exc.DataError) as exc:
        found = translate(exc)
        if found is None:
            raise
        raise found from None

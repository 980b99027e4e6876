"""Engines and sessions for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import pathlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from fairslot.storage.errors import USE_CASE, install_translation
from fairslot.storage.orm import map_domain

__all__ = ["make_engine", "make_session_factory", "ping"]


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_SQLITE_POOL = 40


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    map_domain()
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        pool: dict[str, Any] = {}
        if parsed.database and parsed.database != ":memory:":
            pathlib.Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
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
    return sa.create_engine(parsed, pool_size=pool_size, max_overflow=pool_size,
                            pool_pre_ping=True)


def ping(engine: Engine) -> None:
    """Raises ``sqlalchemy.exc.SQLAlchemyError`` when the database does not answer."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def make_session_factory(engine: Engine) -> sessionmaker[Any]:
    """Sessions for units of work: their statements' errors become the platform's own."""
    install_translation(engine)
    return sessionmaker(bind=engine.execution_options(**{USE_CASE: True}),
                        expire_on_commit=False)

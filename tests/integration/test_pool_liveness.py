"""The pool pings a PostgreSQL connection only after it has been idle a while: a busy
server makes no liveness round trip per request, and a connection the database dropped
while idle is replaced before any statement meets it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from fairslot.storage import database
from fairslot.storage.database import make_engine
from tests.conftest import PG_ADMIN_URL


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(pg_url, pool_size=1)
    yield engine
    engine.dispose()


def _backend(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()


def _statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *args: seen.append(statement))
    return seen


def test_a_connection_returned_just_now_is_handed_out_without_a_ping(
        engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend(engine)
    pings: list[object] = []
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or True)
    assert _backend(engine) == first
    assert pings == []
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend(engine) == first
    assert len(pings) == 1


def test_a_connection_dropped_while_idle_is_replaced_before_it_is_used(
        engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend(engine)
    _terminate(first)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle "long"
    seen = _statements(engine)
    assert _backend(engine) != first
    assert seen == ["SELECT pg_backend_pid()"]


def test_without_the_ping_the_dropped_connection_fails_once_then_the_pool_recovers(
        engine: sa.Engine) -> None:
    first = _backend(engine)
    _terminate(first)
    with pytest.raises(sa.exc.OperationalError):
        _backend(engine)  # returned a moment ago: not pinged, and dead
    assert _backend(engine) != first

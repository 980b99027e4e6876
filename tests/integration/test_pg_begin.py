"""PostgreSQL transactions start with their first statement, in its round trip
(``storage.pg_begin``), and keep the semantics of psycopg's own: one transaction until
commit or rollback, a failed statement failing the transaction, autocommit when asked."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from fairslot.storage.database import make_engine
from fairslot.storage.pg_begin import LazyBeginConnection

PROBE = "pg_begin_probe"


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(pg_url, pool_size=2)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {PROBE} (n int PRIMARY KEY)"))
        conn.execute(sa.text(f"TRUNCATE {PROBE}"))
    yield engine
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {PROBE}"))
    engine.dispose()


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {PROBE}")).scalar_one())


def _status(conn: sa.Connection) -> pq_status:
    return conn.connection.dbapi_connection.pgconn.transaction_status  # type: ignore[union-attr]


pq_status = psycopg.pq.TransactionStatus


def test_begin_shares_the_first_statements_round_trip(engine: sa.Engine,
                                                      tmp_path: pathlib.Path) -> None:
    trace = tmp_path / "libpq.trace"
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, LazyBeginConnection)
        assert raw.autocommit is False
        with trace.open("w") as out:
            raw.pgconn.trace(out.fileno())
            raw.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            conn.execute(sa.text(f"INSERT INTO {PROBE} VALUES (:n)"), {"n": 1})
            conn.execute(sa.text(f"INSERT INTO {PROBE} VALUES (:n)"), {"n": 2})
            conn.commit()
            raw.pgconn.untrace()
    lines = trace.read_text().splitlines()
    answers = [line for line in lines if "\tReadyForQuery" in line]
    # Two statements and the commit: three round trips, BEGIN riding with the first.
    assert len(answers) == 3, lines
    assert any('"BEGIN"' in line for line in lines if line.startswith("F"))
    assert _count(engine) == 2


def test_one_transaction_until_commit_or_rollback(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        first = conn.execute(sa.text("SELECT pg_current_xact_id()")).scalar_one()
        conn.execute(sa.text(f"INSERT INTO {PROBE} VALUES (1), (2)"))
        assert conn.execute(sa.text("SELECT pg_current_xact_id()")).scalar_one() == first
        assert _status(conn) == pq_status.INTRANS
        assert _count(engine) == 0  # another connection does not see it yet
        conn.rollback()
        assert _status(conn) == pq_status.IDLE
    assert _count(engine) == 0


def test_a_failed_statement_fails_the_transaction(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError):
            conn.execute(sa.text("SELECT 1 / 0"))  # the transaction's first statement
        assert _status(conn) == pq_status.INERROR
        conn.rollback()
        conn.execute(sa.text(f"INSERT INTO {PROBE} VALUES (1)"))
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text(f"INSERT INTO {PROBE} VALUES (1)"))
        assert _status(conn) == pq_status.INERROR
        conn.rollback()
    assert _count(engine) == 0  # the first insert went with the failed transaction


def test_row_locks_hold_until_the_transaction_ends(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO {PROBE} VALUES (1)"))
    with engine.connect() as holder, engine.connect() as other:
        holder.execute(sa.text(f"SELECT n FROM {PROBE} WHERE n = 1 FOR UPDATE"))
        with pytest.raises(sa.exc.OperationalError):  # lock_not_available
            other.execute(sa.text(f"SELECT n FROM {PROBE} WHERE n = 1 FOR UPDATE NOWAIT"))
        other.rollback()
        holder.commit()
        assert other.execute(sa.text(
            f"SELECT n FROM {PROBE} WHERE n = 1 FOR UPDATE NOWAIT")).scalar_one() == 1


def test_executemany_copy_and_server_cursors_run_in_the_transaction(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text(f"INSERT INTO {PROBE} VALUES (:n)"), [{"n": 1}, {"n": 2}])
        assert _status(conn) == pq_status.INTRANS
        conn.rollback()
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(f"COPY {PROBE} (n) FROM STDIN") as copy:
            copy.write_row((3,))
        assert _status(conn) == pq_status.INTRANS
        conn.rollback()
        streamed = conn.execution_options(stream_results=True).execute(
            sa.text("SELECT generate_series(1, 5)"))
        assert [row[0] for row in streamed] == [1, 2, 3, 4, 5]
        conn.rollback()
    assert _count(engine) == 0


def test_autocommit_and_isolation_levels_when_asked(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        auto.execute(sa.text(f"INSERT INTO {PROBE} VALUES (1)"))
        assert _status(auto) == pq_status.IDLE
        assert _count(engine) == 1
    with engine.connect() as conn:
        serial = conn.execution_options(isolation_level="SERIALIZABLE")
        level = serial.execute(sa.text("SHOW transaction_isolation")).scalar_one()
        assert level == "serializable"
        conn.rollback()
    with engine.connect() as conn:  # back to the default once returned to the pool
        assert conn.execute(sa.text("SHOW transaction_isolation")).scalar_one() == "read committed"
        assert _status(conn) == pq_status.INTRANS

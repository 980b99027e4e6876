"""An operator sizes each server process's PostgreSQL connections to the database's cores
(``FAIRSLOT_DATABASE_POOL_SIZE`` and ``_OVERFLOW``, docs/configuration.md): the platform's
engine keeps that many and opens no more than the overflow allows; a request beyond them
waits for one given back, up to ``FAIRSLOT_DATABASE_POOL_TIMEOUT``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform, bootstrap
from fairslot.scheduler import JOBS, run_due_jobs
from fairslot.web.app import create_app
from tests.conftest import make_settings


def _backend(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_the_pool_keeps_the_configured_connections_and_opens_no_more(pg_url: str) -> None:
    platform = bootstrap(make_settings(database_url=pg_url, database_pool_size=2,
                                       database_pool_overflow=0, database_pool_timeout=0.2))
    engine = platform.engine
    try:
        first, second = engine.connect(), engine.connect()
        held = {_backend(first), _backend(second)}
        assert len(held) == 2
        # A third request finds both in use: it waits its time-out, and no third
        # connection is opened.
        with pytest.raises(sa.exc.TimeoutError):
            engine.connect()
        second.close()  # given back: the next request takes it
        with engine.connect() as third:
            assert _backend(third) in held
        first.close()
    finally:
        engine.dispose()


def test_the_defaults_keep_the_earlier_shape(pg_url: str) -> None:
    platform = bootstrap(make_settings(database_url=pg_url))
    try:
        pool = platform.engine.pool
        assert isinstance(pool, sa.pool.QueuePool)
        assert pool.size() == 10
        # Ten more at a busy moment: twenty checked out at once, none waiting.
        conns = [platform.engine.connect() for _ in range(20)]
        assert pool.checkedout() == 20
        for conn in conns:
            conn.close()
    finally:
        platform.engine.dispose()


@pytest.mark.parametrize("field", ["database_pool_size", "database_pool_overflow",
                                   "database_pool_timeout"])
def test_a_negative_size_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make_settings(**{field: -1})



def test_a_server_reads_the_shared_list_at_its_start_not_on_a_second_connection(
        pg_url: str) -> None:
    # One connection a process, no overflow: a request holding it must find the shared
    # list in memory (read then, on a second connection, it would wait out the time-out).
    # Fails if the server does not read it at its start (the consortium loop no longer
    # reads it in the background).
    platform = bootstrap(make_settings(database_url=pg_url, consortium_enabled=True,
                                       database_pool_size=1, database_pool_overflow=0,
                                       database_pool_timeout=1))
    assert platform.consortium is not None
    try:
        with TestClient(create_app(platform)), platform.uow() as uow:
            uow.db.connection()  # the request's one connection, held
            assert platform.consortium.check(identity="110101199003077777") == []
    finally:
        platform.engine.dispose()


def _small_platform(pg_url: str, **overrides: object) -> Platform:
    return bootstrap(make_settings(database_url=pg_url, database_pool_size=1,
                                   database_pool_overflow=0, database_pool_timeout=1,
                                   **overrides))


def test_the_scheduler_runs_its_jobs_with_one_connection_a_process(pg_url: str) -> None:
    # Its lock is held on a connection of its own: held on the pooled one, the jobs under
    # it waited for that very connection.
    platform = _small_platform(pg_url)
    try:
        done = run_due_jobs(platform)
        assert done is not None and set(done) == {name for name, _ in JOBS}
        assert platform.engine.pool.checkedout() == 0
    finally:
        platform.engine.dispose()


def test_a_list_not_read_at_the_start_is_read_by_the_next_refresh(pg_url: str) -> None:
    # A server whose read at its start failed serves on; the consortium loop's refresh
    # reads the list, after which a request's look-up needs no connection.
    platform = _small_platform(pg_url, consortium_enabled=True)
    consortium = platform.consortium
    assert consortium is not None
    try:
        consortium.refresh()
        with platform.uow() as uow:
            uow.db.connection()  # the request's one connection, held
            assert consortium.check(identity="110101199003077777") == []
    finally:
        platform.engine.dispose()


def test_outside_a_server_the_first_look_up_reads_the_list_beside_the_pool(
        pg_url: str) -> None:
    # The simulator, scripts and tests use the platform without a server's start: the
    # list is read at the first look-up, inside a use case that holds the process's one
    # connection. Read from the pool, it waited out the time-out (TimeoutError).
    platform = _small_platform(pg_url, consortium_enabled=True)
    consortium = platform.consortium
    assert consortium is not None
    try:
        with platform.uow() as uow:
            uow.db.connection()  # the use case's one connection, held
            assert consortium.check(identity="110101199003077777") == []
            assert platform.engine.pool.checkedout() == 1
        assert consortium.index_size == 0
    finally:
        platform.engine.dispose()

"""An operator sizes each server process's PostgreSQL connections to the database's cores
(``FAIRSLOT_DATABASE_POOL_SIZE`` and ``_OVERFLOW``, docs/configuration.md): the platform's
engine keeps that many and opens no more than the overflow allows; a request beyond them
waits for one given back, up to ``FAIRSLOT_DATABASE_POOL_TIMEOUT``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform, bootstrap
from fairslot.crypto import Keyring
from fairslot.domain.accounts import Role
from fairslot.scheduler import JOBS, run_due_jobs
from fairslot.storage.database import lock_engine, make_engine, side_engine
from fairslot.storage.keys import bind_keyring, keyring_of
from fairslot.web.app import create_app
from tests.conftest import build_world, make_settings


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


def test_with_one_connection_a_process_every_route_beside_the_unit_of_work_answers(
        pg_url: str) -> None:
    # Each of these routes holds its request's connection (authentication) and then works
    # through a store outside the unit of work (the monitor's, the shared list's), or, for
    # the console's live stream, through units of work of its own. From the one pool, each
    # waited out the time-out (found by running the suite with one connection a process).
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        tables = conn.execute(sa.text(
            "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'")).scalar_one()
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    platform = _small_platform(pg_url, consortium_enabled=True, monitor_mode="embedded")
    try:
        world = build_world(platform)
        _, _, patient = world.patient_account("one.connection")
        client = TestClient(create_app(platform))
        with client:
            for role, path in ((Role.INVESTIGATOR, "/api/v1/monitor/alerts"),
                               (Role.INVESTIGATOR, "/api/v1/monitor/decisions"),
                               (Role.REGISTRATION, "/api/v1/staff/consortium/reviews"),
                               (Role.PATIENT, "/api/v1/me/shared-list")):
                token = patient if role is Role.PATIENT else world.token(role)
                r = client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200 and r.json() == [], (path, r.text)
            client.cookies.set("fs_session", world.token(Role.OPERATOR))
            with client.stream("GET", "/operator/console/stream?ticks=2") as stream:
                events = "".join(stream.iter_text()).count("event: figures")
            assert events == 2
            client.cookies.set("fs_session", patient)
            assert client.get("/me").status_code == 200
        assert platform.engine.pool.checkedout() == 0
    finally:
        platform.engine.dispose()


def test_the_side_engine_uses_the_keyring_bound_at_any_time(pg_url: str) -> None:
    # The consortium's store keeps its side engine for good, and its tables hold encrypted
    # columns: a keyring bound (or bound again) after the side engine was made must reach it.
    engine = make_engine(pg_url)
    try:
        side = side_engine(engine)
        assert side is not engine and side_engine(side) is side
        # Made once: asked again, the same engine, its pool's hooks not added again.
        hooks = len(side.pool.dispatch.checkout)
        assert side_engine(engine) is side and len(side.pool.dispatch.checkout) == hooks == 1
        first, second = Keyring(b"a" * 40), Keyring(b"b" * 40)
        bind_keyring(engine, first)
        assert keyring_of(side.dialect) is first
        bind_keyring(engine, second)
        assert keyring_of(side.dialect) is second
        # The side pool waits as long as the requests' pool does.
        assert side.pool.timeout() == engine.pool.timeout()  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_a_lock_hold_ends_with_its_connection_even_if_the_unlock_failed(pg_url: str) -> None:
    # Held on a pooled connection, a lock whose unlock failed went back to the pool with it
    # and kept every other worker out; the loops' holds are on connections of their own.
    engine = make_engine(pg_url)
    try:
        holder = lock_engine(engine).connect()
        assert holder.scalar(sa.text("SELECT pg_try_advisory_lock(4242)"))
        holder.close()  # no pg_advisory_unlock: what an unlock that raised leaves
        with engine.connect() as other:
            assert other.scalar(sa.text("SELECT pg_try_advisory_lock(4242)")) is True
            other.execute(sa.text("SELECT pg_advisory_unlock(4242)"))
    finally:
        engine.dispose()

"""Fixtures for the monitor's tests: events built by hand, a store of each kind (memory,
SQLite, the machine's PostgreSQL), and a Redis key prefix of each test's own. Redis and
PostgreSQL are real; when they are unreachable the tests that need them fail."""

from __future__ import annotations

import datetime as dt
import itertools
import pathlib
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from fairslot.config import Settings
from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.sql_store import SqlMonitorStore
from fairslot.monitoring.store import MemoryStore, MonitorStore
from fairslot.storage.database import make_engine
from tests.conftest import make_settings

T0 = dt.datetime(2026, 3, 2, 7, 30, tzinfo=dt.UTC).timestamp()
_ids = itertools.count(1)


def ev(kind: str, ts: float, **fields: Any) -> MonitorEvent:
    """An event at ``T0 + ts`` seconds, with a fresh id unless one is given."""
    event_id = fields.pop("id", None) or f"e{next(_ids)}"
    return MonitorEvent(event_id, kind, T0 + ts, **fields)


def settings(**overrides: Any) -> Settings:
    return make_settings(**overrides)


MONITOR_TABLES = "monitor_decisions, monitor_alert_history, monitor_alerts"


def pg_monitor_engine(url: str) -> sa.Engine:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {MONITOR_TABLES} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path,
          sqlite_template: pathlib.Path) -> Iterator[MonitorStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        path = tmp_path / "monitor.db"
        shutil.copyfile(sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = pg_monitor_engine(request.getfixturevalue("pg_url"))
    yield SqlMonitorStore(engine)
    engine.dispose()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis[Any]]:
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis[Any]) -> Iterator[str]:
    """A key prefix of this test's own, removed afterwards (never FLUSHALL)."""
    name = f"fairslot-test:{uuid.uuid4().hex}:"
    yield name
    for key in redis_client.scan_iter(match=name + "*", count=1000):
        redis_client.delete(key)

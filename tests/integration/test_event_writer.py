"""The batched writer of the access log and the guard's decisions (COPY on PostgreSQL,
one INSERT per row on SQLite) stores each row as a use case's event would be stored."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import sqlalchemy as sa

from fairslot.guard.events import GuardEvent
from fairslot.monitoring.request_log import access_row, guard_row
from fairslot.storage import tables as t
from fairslot.storage.repositories import EventLogWriter

AT = dt.datetime(2026, 3, 2, 17, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))


def test_a_batch_is_stored_with_its_times_in_utc_and_its_detail_as_json(
        engine: sa.Engine) -> None:
    rows = [access_row(AT, account_id="42", ip="203.0.113.7", device_id="dev-1",
                       method="POST", path="/api/v1/bookings", status=201,
                       user_agent='Mozilla "5.0"\t\\ 中文'),
            guard_row(GuardEvent(at=AT, decision="deny", reason="rate", group="booking",
                                 level="normal", key="account", key_hash="abc",
                                 limit="5/60s", risk=3, degraded=False, count=2,
                                 client_ip="203.0.113.7", device_id=None,
                                 account_id="42"))]
    EventLogWriter(engine).write(rows)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(t.events).order_by(t.events.c.id)).all()
    assert [(r.kind, r.account_id, r.ip) for r in stored] == [
        ("access", 42, "203.0.113.7"), ("guard.deny", 42, "203.0.113.7")]
    assert all(r.at == AT and r.at.utcoffset() == dt.timedelta(0) for r in stored)
    assert stored[0].detail == {"method": "POST", "path": "/api/v1/bookings", "status": 201,
                                "user_agent": 'Mozilla "5.0"\t\\ 中文'}
    assert stored[1].detail["limit"] == "5/60s" and stored[1].device_id is None


def test_a_naive_time_is_refused(engine: sa.Engine) -> None:
    row = access_row(AT.replace(tzinfo=None), account_id=None, ip=None, device_id=None,
                     method="GET", path="/", status=200)
    with pytest.raises((ValueError, sa.exc.StatementError)):
        EventLogWriter(engine).write([row])

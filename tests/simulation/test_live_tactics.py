"""The monitor catching the ring tactics on a running server: ``fairslot serve`` (one
worker here; the measured run in docs/monitoring.md has four) on PostgreSQL and Redis, one
``fairslot monitor run`` on the stream, and the live tactic agents over HTTP with an
operator reading the alerts through the API."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from fairslot.simulation.live_tactics import TACTICS, run_tactics, serve_stack
from tests.conftest import PG_ADMIN_URL, REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def database() -> Iterator[str]:
    name = f"fairslot_live_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_each_tactic_is_alerted_within_5_s_and_a_hold_stops_the_rings_booking(
        database: str) -> None:
    with serve_stack(database, REDIS_URL, workers=1,
                     secret="live-test-" + secrets.token_hex(24)) as (base, operator, pw):
        report = run_tactics(base, operator=operator, password=pw)
    summary = report.render()
    for tactic, scenarios in TACTICS.items():
        assert tactic in report.first_event, summary
        assert tactic in report.first_alert, summary
        assert report.first_alert[tactic][1] in scenarios
        delay = report.delay(tactic)
        assert delay is not None and delay < 5.0, summary
    # The genuine patient entered its draw round over HTTP, and no alert named it.
    assert report.status("genuine", "enter") == [(201, "")], summary
    assert report.genuine_alerts == [], summary
    # The launder alert's decision met the ring's next booking: held for review, which
    # cannot be paid (proof of work comes only if another scenario asked for it).
    assert report.hold[1:] == ["booking 201 with review 'pending'", "pay 409 under_review"], \
        summary

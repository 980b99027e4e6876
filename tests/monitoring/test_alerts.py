"""Alerts through the whole monitor, on every store (memory, SQLite, PostgreSQL): one alert
per scenario and entity while live, updated rather than duplicated, unchanged by events
seen twice, and a status history that says who and why."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

import pytest

from fairslot.clock import FixedClock
from fairslot.domain.errors import Conflict, InvalidInput, NotFound
from fairslot.monitoring.alerts import Alert, coalesce
from fairslot.monitoring.assemble import make_monitor
from fairslot.monitoring.decisions import MemoryDecisionBook
from fairslot.monitoring.engine import Engine
from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.runner import Monitor
from fairslot.monitoring.scenarios import Entity, build_scenarios
from fairslot.monitoring.sql_store import SqlMonitorStore
from fairslot.monitoring.store import MonitorStore
from fairslot.monitoring.windows import MemoryWindows
from tests.monitoring.conftest import T0, ev, pg_monitor_engine, settings

NOW = dt.datetime.fromtimestamp(T0, dt.UTC)


def monitor_on(store: MonitorStore, **overrides: Any) -> Monitor:
    return make_monitor(settings(**overrides), clock=FixedClock(NOW),
                        sink=MemoryDecisionBook(), store=store, notify=False)


def hub_payments(payer: str, patients: range, start: float = 0.0) -> list[MonitorEvent]:
    return [ev("booking.paid", start + n * 60, payer=payer, patient=f"p{n}",
               account="a1", id=f"{payer}-{n}") for n in patients]


def comparable(alert: Alert) -> dict[str, Any]:
    data = dataclasses.asdict(alert)
    data.pop("updated_at")
    return data


def test_an_alert_is_updated_not_duplicated_while_it_is_open(store: MonitorStore) -> None:
    monitor = monitor_on(store, monitor_alert_update_seconds=0)
    first = monitor.process(hub_payments("hub", range(10)))
    assert [c.opened for c in first.changes] == [True]
    later = monitor.process(hub_payments("hub", range(10, 14), start=3600))
    assert [c.opened for c in later.changes] == [False]
    (alert,) = store.alerts()
    assert alert.entity == Entity("payer", "hub")
    assert alert.figures["patients"] == 14
    assert alert.first_seen == dt.datetime.fromtimestamp(T0 + 9 * 60, dt.UTC)
    assert alert.last_seen == dt.datetime.fromtimestamp(T0 + 3600 + 13 * 60, dt.UTC)
    assert len(alert.samples) <= 10


def test_events_seen_twice_change_no_alert(store: MonitorStore) -> None:
    events = [
        *hub_payments("hub", range(12)),
        ev("booking.cancelled", 900, session="s1", account="holder", patient="fake",
           id="c1"),
        ev("booking.created", 903, session="s1", account="seller", patient="buyer",
           id="b1")]
    events.sort(key=lambda e: e.ts)
    first = monitor_on(store, monitor_alert_update_seconds=0)
    first.process(events)
    before = [comparable(a) for a in store.alerts()]
    # The stream delivers the whole batch again (a monitor died before acknowledging it),
    # to the same monitor and to a fresh one sharing nothing but the store.
    again = first.process(events)
    fresh = monitor_on(store, monitor_alert_update_seconds=0).process(events[-6:])
    assert again.changes == [] and fresh.changes == []
    assert [comparable(a) for a in store.alerts()] == before
    assert {a.scenario for a in store.alerts()} == {"payer_fanout", "launder"}


def test_a_rising_severity_is_reported_as_an_escalation(store: MonitorStore) -> None:
    monitor = monitor_on(store, monitor_alert_update_seconds=3600)
    monitor.process(hub_payments("hub", range(10)))
    # Within the throttle interval, only a higher severity gets through (30 = 3 x 10).
    quiet = monitor.process(hub_payments("hub", range(10, 20), start=700))
    assert quiet.changes == []
    rise = monitor.process(hub_payments("hub", range(20, 30), start=1400))
    assert [(c.escalated, c.alert.severity) for c in rise.changes] == [(True, "high")]


def test_a_resolved_alert_lets_the_next_finding_open_a_new_one(store: MonitorStore) -> None:
    monitor = monitor_on(store, monitor_alert_update_seconds=0)
    monitor.process(hub_payments("hub", range(10)))
    (alert,) = store.alerts()
    monitor.set_status(alert.id, "acknowledged", "duty-operator", None)
    monitor.set_status(alert.id, "resolved", "duty-operator", "payer blocked by the bank")
    monitor.process(hub_payments("hub", range(10, 11), start=7200))
    alerts = store.alerts(statuses=None)
    assert [a.status for a in alerts] == ["open", "resolved"]
    history = store.history(alert.id)
    assert [(h.status, h.actor, h.reason) for h in history] == [
        ("acknowledged", "duty-operator", None),
        ("resolved", "duty-operator", "payer blocked by the bank")]


@pytest.mark.parametrize(("status", "actor", "reason", "error", "code"), [
    ("resolved", "op", None, InvalidInput, "reason_required"),
    ("false_positive", "op", " ", InvalidInput, "reason_required"),
    ("acknowledged", " ", None, InvalidInput, "actor_required"),
    ("closed", "op", "x", InvalidInput, "invalid_status"),
    ("open", "op", None, Conflict, "status_unchanged"),
])
def test_a_status_change_names_who_and_why_or_changes_nothing(
        store: MonitorStore, status: str, actor: str, reason: str | None,
        error: type[Exception], code: str) -> None:
    monitor = monitor_on(store)
    monitor.process(hub_payments("hub", range(10)))
    (alert,) = store.alerts()
    with pytest.raises(error) as raised:
        monitor.set_status(alert.id, status, actor, reason)
    assert getattr(raised.value, "code", None) == code
    assert store.alert(alert.id) == alert
    assert store.history(alert.id) == []


def test_an_unknown_alert_is_not_found(store: MonitorStore) -> None:
    with pytest.raises(NotFound):
        monitor_on(store).set_status(999, "acknowledged", "op", None)


def test_a_false_positive_keeps_the_same_scenario_and_entity_quiet(store: MonitorStore
                                                                   ) -> None:
    monitor = monitor_on(store, monitor_alert_update_seconds=0,
                         monitor_false_positive_quiet_hours=24)
    monitor.process(hub_payments("hub", range(10)))
    (alert,) = store.alerts()
    closed = monitor.set_status(alert.id, "false_positive", "investigator",
                                "a care home's shared payment account").alert
    assert closed.quiet_until == NOW + dt.timedelta(hours=24)
    monitor.process(hub_payments("hub", range(10, 15), start=600))
    monitor.process(hub_payments("other", range(10), start=600))
    live = store.alerts(statuses=["open", "acknowledged"])
    assert [a.entity for a in live] == [Entity("payer", "other")]


def test_reopening_an_alert_while_another_is_live_for_the_pair_is_refused(
        store: MonitorStore) -> None:
    monitor = monitor_on(store, monitor_alert_update_seconds=0)
    monitor.process(hub_payments("hub", range(10)))
    (first,) = store.alerts()
    monitor.set_status(first.id, "resolved", "op", "handled")
    monitor.process(hub_payments("hub", range(10, 11), start=3600))
    with pytest.raises(Conflict) as raised:
        monitor.set_status(first.id, "open", "op", "was not handled after all")
    assert raised.value.code == "alert_live_elsewhere"


def test_two_monitors_racing_to_open_the_same_alert_make_one(pg_url: str) -> None:
    engine = pg_monitor_engine(pg_url)
    try:
        events = hub_payments("hub", range(10))
        findings = Engine(build_scenarios(settings()), MemoryWindows()).run(events)
        sightings = coalesce(findings)
        barrier = threading.Barrier(4)
        opened: list[int] = []

        def record() -> None:
            store = SqlMonitorStore(engine)
            barrier.wait()
            opened.extend(c.alert.id for c in store.record(sightings, NOW) if c.opened)

        threads = [threading.Thread(target=record) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        alerts = SqlMonitorStore(engine).alerts(statuses=None)
        assert len(alerts) == 1
        assert opened == [alerts[0].id]
    finally:
        engine.dispose()

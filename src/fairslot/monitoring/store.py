"""Where alerts and decisions are kept: the interface, the rules every store follows, and an
in-memory store (replays, tests). The database store is ``sql_store.SqlMonitorStore``.

Rules shared by every store:

- ``record`` opens an alert for a scenario and entity with no live alert, merges into the
  live one otherwise, and drops sightings of a pair an operator marked a false positive
  while its quiet period lasts;
- a status change names who made it; resolving or marking a false positive also says why;
  every change is kept in the alert's history;
- a decision is made once per alert, action and entity; lifting one names who and why.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Protocol

from fairslot.domain.errors import Conflict, InvalidInput, NotFound
from fairslot.monitoring.alerts import (
    LIVE_STATUSES,
    STATUSES,
    Alert,
    AlertChange,
    Sighting,
    StatusChange,
    merge,
    new_alert,
)
from fairslot.monitoring.decisions import Decision
from fairslot.monitoring.scenarios.base import Entity, severity_rank

__all__ = ["MemoryStore", "MonitorStore", "check_status_change"]


class MonitorStore(Protocol):
    def record(self, sightings: Sequence[Sighting], now: dt.datetime) -> list[AlertChange]:
        ...

    def alert(self, alert_id: int) -> Alert | None: ...

    def alerts(self, *, statuses: Sequence[str] | None = None, scenario: str | None = None,
               entity: Entity | None = None, limit: int = 100) -> list[Alert]:
        """Newest activity first."""
        ...

    def set_status(self, alert_id: int, status: str, actor: str, reason: str | None,
                   now: dt.datetime, quiet: dt.timedelta) -> Alert: ...

    def history(self, alert_id: int) -> list[StatusChange]: ...

    def add_decisions(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Store the decisions not made before; return those, with their ids."""
        ...

    def decision(self, decision_id: int) -> Decision | None: ...

    def decisions(self, *, active_at: dt.datetime | None = None,
                  entity: Entity | None = None, alert_id: int | None = None,
                  limit: int = 100) -> list[Decision]:
        """Newest first; with ``active_at``, only those in force then."""
        ...

    def lift(self, decision_id: int, actor: str, reason: str, now: dt.datetime) -> Decision:
        ...


def check_status_change(alert: Alert, status: str, actor: str, reason: str | None) -> None:
    """The rules of a status change; raises a typed error a user can read."""
    if status not in STATUSES:
        raise InvalidInput(f"unknown alert status {status!r}; known: {', '.join(STATUSES)}",
                           code="invalid_status")
    if not actor.strip():
        raise InvalidInput("a status change names who made it", code="actor_required")
    if status in ("resolved", "false_positive") and not (reason and reason.strip()):
        raise InvalidInput(f"marking an alert {status.replace('_', ' ')} needs a reason",
                           code="reason_required")
    if status == alert.status:
        raise Conflict(f"alert {alert.id} is already {status}", code="status_unchanged")


def check_lift(decision: Decision, actor: str, reason: str) -> None:
    if not actor.strip():
        raise InvalidInput("lifting a decision names who lifted it", code="actor_required")
    if not reason.strip():
        raise InvalidInput("lifting a decision needs a reason", code="reason_required")
    if decision.lifted_at is not None:
        raise Conflict(f"decision {decision.id} was already lifted", code="already_lifted")


class MemoryStore:
    """Alerts and decisions in memory."""

    def __init__(self) -> None:
        self._alerts: dict[int, Alert] = {}
        self._live: dict[tuple[str, Entity], int] = {}
        self._quiet: dict[tuple[str, Entity], dt.datetime] = {}
        self._history: list[StatusChange] = []
        self._decisions: dict[int, Decision] = {}
        self._decided: set[tuple[int | None, str, Entity]] = set()
        self._alert_ids = itertools.count(1)
        self._decision_ids = itertools.count(1)

    def record(self, sightings: Sequence[Sighting], now: dt.datetime) -> list[AlertChange]:
        changes: list[AlertChange] = []
        for s in sightings:
            quiet = self._quiet.get(s.key)
            if quiet is not None and quiet > now:
                continue
            known = self._live.get(s.key)
            if known is None:
                alert = new_alert(next(self._alert_ids), s, now)
                self._alerts[alert.id] = alert
                self._live[s.key] = alert.id
                changes.append(AlertChange(alert, opened=True))
                continue
            old = self._alerts[known]
            merged = merge(old, s, now)
            if merged is None:
                continue
            self._alerts[known] = merged
            changes.append(AlertChange(merged, escalated=severity_rank(merged.severity)
                                       > severity_rank(old.severity)))
        return changes

    def alert(self, alert_id: int) -> Alert | None:
        return self._alerts.get(alert_id)

    def alerts(self, *, statuses: Sequence[str] | None = None, scenario: str | None = None,
               entity: Entity | None = None, limit: int = 100) -> list[Alert]:
        found = [a for a in self._alerts.values()
                 if (statuses is None or a.status in statuses)
                 and (scenario is None or a.scenario == scenario)
                 and (entity is None or a.entity == entity)]
        found.sort(key=lambda a: (a.last_seen, a.id), reverse=True)
        return found[:limit]

    def set_status(self, alert_id: int, status: str, actor: str, reason: str | None,
                   now: dt.datetime, quiet: dt.timedelta) -> Alert:
        alert = self._alerts.get(alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id}", code="alert_not_found")
        check_status_change(alert, status, actor, reason)
        key = (alert.scenario, alert.entity)
        if status in LIVE_STATUSES and not alert.live:
            if key in self._live:
                raise Conflict(f"alert {self._live[key]} is live for the same scenario and "
                               "entity; work on that one", code="alert_live_elsewhere")
            self._live[key] = alert_id
        if status not in LIVE_STATUSES and alert.live:
            self._live.pop(key, None)
        quiet_until = now + quiet if status == "false_positive" else None
        if quiet_until is not None:
            self._quiet[key] = quiet_until
        changed = dataclasses.replace(alert, status=status, status_by=actor,
                                      status_reason=reason, status_at=now,
                                      quiet_until=quiet_until, updated_at=now)
        self._alerts[alert_id] = changed
        self._history.append(StatusChange(alert_id, now, status, actor, reason))
        return changed

    def history(self, alert_id: int) -> list[StatusChange]:
        return [h for h in self._history if h.alert_id == alert_id]

    def add_decisions(self, decisions: Sequence[Decision]) -> list[Decision]:
        made = []
        for decision in decisions:
            key = (decision.alert_id, decision.action, decision.entity)
            if decision.alert_id is not None and key in self._decided:
                continue
            self._decided.add(key)
            stored = dataclasses.replace(decision, id=next(self._decision_ids))
            self._decisions[stored.id or 0] = stored
            made.append(stored)
        return made

    def decision(self, decision_id: int) -> Decision | None:
        return self._decisions.get(decision_id)

    def decisions(self, *, active_at: dt.datetime | None = None,
                  entity: Entity | None = None, alert_id: int | None = None,
                  limit: int = 100) -> list[Decision]:
        found = [d for d in self._decisions.values()
                 if (active_at is None or d.active(active_at))
                 and (entity is None or d.entity == entity)
                 and (alert_id is None or d.alert_id == alert_id)]
        found.sort(key=lambda d: (d.created_at, d.id or 0), reverse=True)
        return found[:limit]

    def lift(self, decision_id: int, actor: str, reason: str, now: dt.datetime) -> Decision:
        decision = self._decisions.get(decision_id)
        if decision is None:
            raise NotFound(f"no decision {decision_id}", code="decision_not_found")
        check_lift(decision, actor, reason)
        lifted = dataclasses.replace(decision, lifted_at=now, lifted_by=actor,
                                     lifted_reason=reason)
        self._decisions[decision_id] = lifted
        return lifted

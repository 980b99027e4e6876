"""Alerts and decisions in the platform's database (SQLite or PostgreSQL), with SQLAlchemy
Core. The monitor owns these three tables and writes them in transactions of its own, apart
from the services' units of work.

Two monitors may see the same entity cross the same threshold at the same moment: the live
alert's partial unique index makes one insert win, and the other merges into it. Decisions
have a unique key (alert, action, entity) for the same reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from fairslot.domain.errors import Conflict, NotFound
from fairslot.monitoring.alerts import (
    LIVE_STATUSES,
    Alert,
    AlertChange,
    Sighting,
    StatusChange,
    merge,
    new_alert,
)
from fairslot.monitoring.decisions import Decision
from fairslot.monitoring.scenarios.base import Entity, severity_rank
from fairslot.monitoring.store import check_lift, check_status_change
from fairslot.storage import tables as t

__all__ = ["SqlMonitorStore"]

_A = t.monitor_alerts
_H = t.monitor_alert_history
_D = t.monitor_decisions
_LIVE = sorted(LIVE_STATUSES)
# SQLite matches an upsert's conflict target to a partial index only when the WHERE text is
# the index's own, so it is taken from the index.
_LIVE_WHERE = next(i for i in _A.indexes
                   if i.name == "uq_monitor_alerts_live").dialect_options["sqlite"]["where"]


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (postgresql.insert(table) if conn.dialect.name == "postgresql"
            else sqlite.insert(table))


def _alert_values(alert: Alert) -> dict[str, Any]:
    return {
        "scenario": alert.scenario, "entity_type": alert.entity.type,
        "entity_id": alert.entity.id, "severity": alert.severity, "status": alert.status,
        "summary": alert.summary[:500],
        "evidence": {"figures": alert.figures, "members": alert.members,
                     "samples": alert.samples},
        "related": [str(e) for e in alert.related],
        "first_seen": alert.first_seen, "last_seen": alert.last_seen,
        "created_at": alert.created_at, "updated_at": alert.updated_at,
        "status_by": alert.status_by, "status_reason": alert.status_reason,
        "status_at": alert.status_at, "quiet_until": alert.quiet_until,
    }


def _alert(row: Any) -> Alert:
    evidence = row.evidence or {}
    return Alert(
        id=row.id, scenario=row.scenario, severity=row.severity,
        entity=Entity(row.entity_type, row.entity_id), summary=row.summary,
        figures=dict(evidence.get("figures") or {}),
        related=[Entity.parse(text) for text in row.related or []],
        members=list(evidence.get("members") or []),
        samples=list(evidence.get("samples") or []),
        first_seen=row.first_seen, last_seen=row.last_seen, status=row.status,
        created_at=row.created_at, updated_at=row.updated_at, status_by=row.status_by,
        status_reason=row.status_reason, status_at=row.status_at,
        quiet_until=row.quiet_until)


def _decision(row: Any) -> Decision:
    return Decision(
        id=row.id, action=row.action, entity=Entity(row.entity_type, row.entity_id),
        reason=row.reason, created_at=row.created_at, expires_at=row.expires_at,
        created_by=row.created_by, param=row.param, scenario=row.scenario,
        alert_id=row.alert_id, lifted_at=row.lifted_at, lifted_by=row.lifted_by,
        lifted_reason=row.lifted_reason)


class SqlMonitorStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- alerts -------------------------------------------------------------------------
    def _live_row(self, conn: Connection, scenario: str, entity: Entity) -> Any:
        query = sa.select(_A).where(
            _A.c.scenario == scenario, _A.c.entity_type == entity.type,
            _A.c.entity_id == entity.id, _A.c.status.in_(_LIVE))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return conn.execute(query).first()

    def _quiet(self, conn: Connection, sightings: Sequence[Sighting],
               now: dt.datetime) -> set[tuple[str, Entity]]:
        scenarios = {s.scenario for s in sightings}
        rows = conn.execute(sa.select(_A.c.scenario, _A.c.entity_type, _A.c.entity_id).where(
            _A.c.status == "false_positive", _A.c.quiet_until > now,
            _A.c.scenario.in_(scenarios)))
        return {(r.scenario, Entity(r.entity_type, r.entity_id)) for r in rows}

    def record(self, sightings: Sequence[Sighting], now: dt.datetime) -> list[AlertChange]:
        if not sightings:
            return []
        changes: list[AlertChange] = []
        with self.engine.begin() as conn:
            quiet = self._quiet(conn, sightings, now)
            for s in sightings:
                if s.key in quiet:
                    continue
                row = self._live_row(conn, s.scenario, s.entity)
                if row is None:
                    values = _alert_values(new_alert(0, s, now))
                    stmt = _insert(conn, _A).values(**values).on_conflict_do_nothing(
                        index_elements=["scenario", "entity_type", "entity_id"],
                        index_where=_LIVE_WHERE).returning(_A.c.id)
                    new_id = conn.execute(stmt).scalar()
                    if new_id is not None:
                        changes.append(AlertChange(new_alert(int(new_id), s, now),
                                                   opened=True))
                        continue
                    # Another monitor opened it a moment ago: merge into theirs.
                    row = self._live_row(conn, s.scenario, s.entity)
                    if row is None:
                        continue
                old = _alert(row)
                merged = merge(old, s, now)
                if merged is None:
                    continue
                values = _alert_values(merged)
                conn.execute(sa.update(_A).where(_A.c.id == old.id).values(
                    severity=values["severity"], summary=values["summary"],
                    evidence=values["evidence"], related=values["related"],
                    first_seen=values["first_seen"], last_seen=values["last_seen"],
                    updated_at=now))
                changes.append(AlertChange(merged, escalated=severity_rank(merged.severity)
                                           > severity_rank(old.severity)))
        return changes

    def alert(self, alert_id: int) -> Alert | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_A).where(_A.c.id == alert_id)).first()
        return None if row is None else _alert(row)

    def alerts(self, *, statuses: Sequence[str] | None = None, scenario: str | None = None,
               entity: Entity | None = None, limit: int = 100) -> list[Alert]:
        query = sa.select(_A)
        if statuses is not None:
            query = query.where(_A.c.status.in_(list(statuses)))
        if scenario is not None:
            query = query.where(_A.c.scenario == scenario)
        if entity is not None:
            query = query.where(_A.c.entity_type == entity.type, _A.c.entity_id == entity.id)
        query = query.order_by(_A.c.last_seen.desc(), _A.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_alert(row) for row in conn.execute(query)]

    def set_status(self, alert_id: int, status: str, actor: str, reason: str | None,
                   now: dt.datetime, quiet: dt.timedelta) -> Alert:
        with self.engine.begin() as conn:
            query = sa.select(_A).where(_A.c.id == alert_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise NotFound(f"no alert {alert_id}", code="alert_not_found")
            alert = _alert(row)
            check_status_change(alert, status, actor, reason)
            if status in LIVE_STATUSES and not alert.live:
                other = self._live_row(conn, alert.scenario, alert.entity)
                if other is not None:
                    raise Conflict(f"alert {other.id} is live for the same scenario and "
                                   "entity; work on that one", code="alert_live_elsewhere")
            quiet_until = now + quiet if status == "false_positive" else None
            conn.execute(sa.update(_A).where(_A.c.id == alert_id).values(
                status=status, status_by=actor[:80], status_reason=(reason or None),
                status_at=now, quiet_until=quiet_until, updated_at=now))
            conn.execute(sa.insert(_H).values(alert_id=alert_id, at=now, status=status,
                                              actor=actor[:80], reason=reason))
            row = conn.execute(sa.select(_A).where(_A.c.id == alert_id)).one()
        return _alert(row)

    def history(self, alert_id: int) -> list[StatusChange]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_H).where(_H.c.alert_id == alert_id)
                                .order_by(_H.c.at, _H.c.id))
            return [StatusChange(r.alert_id, r.at, r.status, r.actor, r.reason) for r in rows]

    # --- decisions ----------------------------------------------------------------------
    def add_decisions(self, decisions: Sequence[Decision]) -> list[Decision]:
        made: list[Decision] = []
        if not decisions:
            return made
        with self.engine.begin() as conn:
            for d in decisions:
                values = {
                    "alert_id": d.alert_id, "scenario": d.scenario, "action": d.action,
                    "param": d.param, "entity_type": d.entity.type, "entity_id": d.entity.id,
                    "reason": d.reason[:500], "created_at": d.created_at,
                    "expires_at": d.expires_at, "created_by": d.created_by[:80],
                }
                stmt = _insert(conn, _D).values(**values)
                if d.alert_id is not None:
                    stmt = stmt.on_conflict_do_nothing(
                        index_elements=["alert_id", "action", "entity_type", "entity_id"])
                new_id = conn.execute(stmt.returning(_D.c.id)).scalar()
                if new_id is not None:
                    made.append(Decision(
                        int(new_id), d.action, d.entity, d.reason[:500], d.created_at,
                        d.expires_at, d.created_by[:80], d.param, d.scenario, d.alert_id))
        return made

    def decision(self, decision_id: int) -> Decision | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_D).where(_D.c.id == decision_id)).first()
        return None if row is None else _decision(row)

    def decisions(self, *, active_at: dt.datetime | None = None,
                  entity: Entity | None = None, alert_id: int | None = None,
                  limit: int = 100) -> list[Decision]:
        query = sa.select(_D)
        if active_at is not None:
            query = query.where(_D.c.lifted_at.is_(None), _D.c.created_at <= active_at,
                                _D.c.expires_at > active_at)
        if entity is not None:
            query = query.where(_D.c.entity_type == entity.type, _D.c.entity_id == entity.id)
        if alert_id is not None:
            query = query.where(_D.c.alert_id == alert_id)
        query = query.order_by(_D.c.created_at.desc(), _D.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_decision(row) for row in conn.execute(query)]

    def lift(self, decision_id: int, actor: str, reason: str, now: dt.datetime) -> Decision:
        with self.engine.begin() as conn:
            query = sa.select(_D).where(_D.c.id == decision_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise NotFound(f"no decision {decision_id}", code="decision_not_found")
            check_lift(_decision(row), actor, reason)
            conn.execute(sa.update(_D).where(_D.c.id == decision_id).values(
                lifted_at=now, lifted_by=actor[:80], lifted_reason=reason[:500]))
            row = conn.execute(sa.select(_D).where(_D.c.id == decision_id)).one()
        return _decision(row)

"""Alerts: what an operator sees. One alert per scenario and entity while it is live (open or
acknowledged); every further finding updates it (figures, evidence, last seen) instead of
adding another. Merging is idempotent: the same finding merged twice changes nothing, which
is what makes an event delivered twice harmless all the way to the database.

Findings of one batch are first coalesced per scenario and entity (a bot over its limit
trips the scenario on every request), then throttled: a live alert is written again only
when its severity rises or ``update_seconds`` of event time have passed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fairslot.monitoring.scenarios.base import Entity, Finding, severity_rank

__all__ = [
    "LIVE_STATUSES",
    "STATUSES",
    "Alert",
    "AlertChange",
    "Sighting",
    "StatusChange",
    "Throttle",
    "coalesce",
    "merge",
    "new_alert",
]

STATUSES = ("open", "acknowledged", "resolved", "false_positive")
LIVE_STATUSES = frozenset({"open", "acknowledged"})
SAMPLES_EACH_END = 5
MAX_MEMBERS = 50


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


@dataclasses.dataclass(slots=True)
class Sighting:
    """The findings of one scenario on one entity within one batch, folded together."""

    scenario: str
    entity: Entity
    severity: str
    summary: str
    figures: dict[str, Any]
    related: list[Entity]
    members: list[str]
    samples: list[dict[str, Any]]
    first_ts: float
    last_ts: float

    @property
    def key(self) -> tuple[str, Entity]:
        return (self.scenario, self.entity)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fold_figures(into: dict[str, Any], figures: dict[str, Any], newer: bool) -> None:
    """Numbers keep their maximum; other values follow the newest finding."""
    for name, value in figures.items():
        old = into.get(name)
        if old is None:
            into[name] = value
        elif _numeric(value) and _numeric(old):
            if value > old:
                into[name] = value
        elif newer:
            into[name] = value


def _add_unique(into: list[Any], values: Iterable[Any], cap: int) -> None:
    """Append the ``values`` not in ``into`` yet, up to ``cap`` in all (values are hashable:
    entities and member ids; a set answers "already there?" where the list took a scan)."""
    if len(into) >= cap:
        return
    have = set(into)
    for value in values:
        if value not in have:
            into.append(value)
            if len(into) >= cap:
                return
            have.add(value)


def _keep_samples(samples: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Distinct events, oldest first: the first few and the latest few."""
    by_id: dict[str, dict[str, Any]] = {}
    for sample in samples:
        by_id.setdefault(str(sample["id"]), sample)
    ordered = sorted(by_id.values(), key=lambda s: (s["at"], s["id"]))
    if len(ordered) <= 2 * SAMPLES_EACH_END:
        return ordered
    return ordered[:SAMPLES_EACH_END] + ordered[-SAMPLES_EACH_END:]


def _plain(value: Any) -> Any:
    """As the database will give it back (JSON), so that merging what was stored with the
    same evidence again finds nothing new. Dicts with text keys, lists, tuples, text, finite
    numbers, booleans and None are rebuilt directly (tuples become lists, as JSON has it);
    anything else takes the JSON round trip."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else _json_round_trip(value)
    if kind is dict:
        if all(type(key) is str for key in value):
            return {key: _plain(item) for key, item in value.items()}
    elif kind is list or kind is tuple:
        return [_plain(item) for item in value]
    return _json_round_trip(value)


def _json_round_trip(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def coalesce(findings: Sequence[Finding],
             admit: Callable[[tuple[str, Entity], str, float], bool] | None = None,
             ) -> list[Sighting]:
    """Fold a batch's findings per scenario and entity. ``admit(key, severity, last_ts)``
    (the throttle) is asked first, so that the evidence of a pair that will not be written
    is never built: a flood trips a scenario on every request."""
    groups: dict[tuple[str, Entity], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.scenario, f.entity), []).append(f)
    sightings: list[Sighting] = []
    for key, group in groups.items():
        severity = max((f.severity for f in group), key=severity_rank)
        last_ts = max(f.event.ts for f in group)
        if admit is not None and not admit(key, severity, last_ts):
            continue
        group.sort(key=lambda f: (f.event.ts, f.event.id))
        figures: dict[str, Any] = {}
        related: list[Entity] = []
        members: list[str] = []
        events: dict[str, Finding] = {}
        for f in group:
            _fold_figures(figures, f.figures, True)
            _add_unique(related, f.related, MAX_MEMBERS)
            _add_unique(members, f.members, MAX_MEMBERS)
            events.setdefault(f.event.id, f)
        distinct = list(events.values())
        if len(distinct) > 2 * SAMPLES_EACH_END:
            distinct = distinct[:SAMPLES_EACH_END] + distinct[-SAMPLES_EACH_END:]
        sightings.append(Sighting(
            key[0], key[1], severity, group[-1].summary, _plain(figures), related, members,
            _keep_samples(_plain(f.event.summary()) for f in distinct),
            group[0].event.ts, last_ts))
    return sightings


@dataclasses.dataclass(slots=True)
class Alert:
    id: int
    scenario: str
    severity: str
    entity: Entity
    summary: str
    figures: dict[str, Any]
    related: list[Entity]
    members: list[str]
    samples: list[dict[str, Any]]
    first_seen: dt.datetime
    last_seen: dt.datetime
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    status_by: str | None = None
    status_reason: str | None = None
    status_at: dt.datetime | None = None
    quiet_until: dt.datetime | None = None

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view for the API, the CLI and notifications."""
        def iso(value: dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat(timespec="seconds")

        return {
            "id": self.id, "scenario": self.scenario, "severity": self.severity,
            "entity": str(self.entity), "summary": self.summary, "figures": self.figures,
            "related": [str(e) for e in self.related], "members": self.members,
            "samples": self.samples, "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen), "status": self.status,
            "status_by": self.status_by, "status_reason": self.status_reason,
            "status_at": iso(self.status_at), "quiet_until": iso(self.quiet_until),
            "created_at": iso(self.created_at), "updated_at": iso(self.updated_at),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class AlertChange:
    """What recording a sighting did: opened a new alert, raised a live one's severity, or
    only updated its evidence."""

    alert: Alert
    opened: bool = False
    escalated: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class StatusChange:
    alert_id: int
    at: dt.datetime
    status: str
    actor: str
    reason: str | None


def new_alert(alert_id: int, s: Sighting, now: dt.datetime) -> Alert:
    return Alert(alert_id, s.scenario, s.severity, s.entity, s.summary, dict(s.figures),
                 list(s.related), list(s.members), _keep_samples(s.samples),
                 _utc(s.first_ts), _utc(s.last_ts), "open", now, now)


def merge(alert: Alert, s: Sighting, now: dt.datetime) -> Alert | None:
    """The live ``alert`` with ``s`` folded in, or None when ``s`` adds nothing (an event
    seen before)."""
    newer = _utc(s.last_ts) >= alert.last_seen
    severity = alert.severity
    if severity_rank(s.severity) > severity_rank(severity):
        severity = s.severity
    figures = dict(alert.figures)
    _fold_figures(figures, s.figures, newer)
    related = list(alert.related)
    _add_unique(related, s.related, MAX_MEMBERS)
    members = list(alert.members)
    _add_unique(members, s.members, MAX_MEMBERS)
    samples = _keep_samples([*alert.samples, *s.samples])
    summary = s.summary if newer else alert.summary
    first_seen = min(alert.first_seen, _utc(s.first_ts))
    last_seen = max(alert.last_seen, _utc(s.last_ts))
    if (severity, figures, related, members, samples, summary, first_seen, last_seen) == (
            alert.severity, alert.figures, alert.related, alert.members, alert.samples,
            alert.summary, alert.first_seen, alert.last_seen):
        return None
    return dataclasses.replace(
        alert, severity=severity, figures=figures, related=related, members=members,
        samples=samples, summary=summary, first_seen=first_seen, last_seen=last_seen,
        updated_at=now)


class Throttle:
    """Keeps a flood of findings from becoming a flood of writes: a sighting of an alert this
    process wrote recently passes only if its severity is higher or ``seconds`` of event time
    have gone by."""

    MAX_KEYS = 200_000

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: dict[tuple[str, Entity], tuple[float, int]] = {}

    def allows(self, key: tuple[str, Entity], severity: str, last_ts: float) -> bool:
        if self.seconds <= 0:
            return True
        last = self._last.get(key)
        return (last is None or severity_rank(severity) > last[1]
                or last_ts - last[0] >= self.seconds)

    def written(self, sightings: Sequence[Sighting]) -> None:
        if len(self._last) > self.MAX_KEYS:
            self._last.clear()
        for s in sightings:
            last = self._last.get(s.key)
            rank = severity_rank(s.severity)
            if last is None or s.last_ts >= last[0] or rank > last[1]:
                self._last[s.key] = (max(s.last_ts, last[0] if last else s.last_ts),
                                     max(rank, last[1] if last else rank))

    def forget(self, key: tuple[str, Entity]) -> None:
        """After an alert is closed, its next sighting must reach the store at once."""
        self._last.pop(key, None)

"""Decisions: what the platform does about an alert, for how long.

Each scenario has a list of responses (settings override the defaults below). When one of
its alerts opens, or rises to a severity the responses apply to, each response becomes a
decision on the alert's entity (and, for responses marked ``+related``, on the related
accounts too): raise the guard level for it, require proof of work, hold its new bookings
for review, or block it. Every decision has a lifetime, is recorded with who made it and
why (the monitor, or an operator by hand), and can be lifted by hand.

The monitor records decisions in its store and hands them to a ``DecisionSink``: the guard's
decision book implements it and enforces them on every worker. Decisions are made once per
alert, action and entity (a unique key in the store), so two monitors, or one event seen
twice, never make the same decision twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fairslot.domain.errors import InvalidInput
from fairslot.monitoring.alerts import AlertChange
from fairslot.monitoring.scenarios.base import ENTITY_TYPES, Entity, severity_rank

__all__ = [
    "ACTIONS",
    "DEFAULT_RESPONSES",
    "LEVELS",
    "Decision",
    "DecisionSink",
    "MemoryDecisionBook",
    "NullDecisionSink",
    "Response",
    "check_entity",
    "lifetime",
    "parse_response",
    "plan_decisions",
    "responses_from_settings",
]

ACTIONS = ("raise_level", "require_pow", "hold_bookings", "block")
LEVELS = ("elevated", "under_attack")

_log = logging.getLogger("fairslot.monitoring.decisions")


@dataclasses.dataclass(slots=True)
class Decision:
    id: int | None
    action: str
    entity: Entity
    reason: str
    created_at: dt.datetime
    expires_at: dt.datetime
    created_by: str
    """``monitor`` for automatic decisions, otherwise the operator who made it."""
    param: str | None = None
    """For ``raise_level``: the level (elevated, under_attack)."""
    scenario: str | None = None
    alert_id: int | None = None
    lifted_at: dt.datetime | None = None
    lifted_by: str | None = None
    lifted_reason: str | None = None

    def active(self, now: dt.datetime) -> bool:
        return self.lifted_at is None and self.created_at <= now < self.expires_at

    def as_dict(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat(timespec="seconds")

        return {"id": self.id, "action": self.action, "param": self.param,
                "entity": str(self.entity), "reason": self.reason,
                "scenario": self.scenario, "alert_id": self.alert_id,
                "created_at": iso(self.created_at), "expires_at": iso(self.expires_at),
                "created_by": self.created_by, "lifted_at": iso(self.lifted_at),
                "lifted_by": self.lifted_by, "lifted_reason": self.lifted_reason}


class DecisionSink(Protocol):
    """Where decisions are enforced (the guard's decision book). Both calls must be cheap
    and must not fail the monitor: an implementation logs its own failures."""

    def apply(self, decision: Decision) -> None: ...

    def lift(self, decision: Decision) -> None: ...


class NullDecisionSink:
    """Records nothing anywhere: decisions stay in the monitor's store only, unenforced."""

    def apply(self, decision: Decision) -> None:
        return None

    def lift(self, decision: Decision) -> None:
        return None


class MemoryDecisionBook:
    """Decisions held in memory, as the guard's book will hold them: for tests and embedded
    mode until the guard's own book is wired in."""

    def __init__(self) -> None:
        self._decisions: dict[int, Decision] = {}

    def apply(self, decision: Decision) -> None:
        if decision.id is None:
            raise ValueError("a decision reaches the book after the store gave it an id")
        self._decisions[decision.id] = decision

    def lift(self, decision: Decision) -> None:
        if decision.id is not None:
            self._decisions.pop(decision.id, None)

    def active(self, entity: Entity, now: dt.datetime) -> list[Decision]:
        return [d for d in self._decisions.values() if d.entity == entity and d.active(now)]

    def holds(self, entity: Entity, action: str, now: dt.datetime) -> bool:
        return any(d.action == action for d in self.active(entity, now))

    def __len__(self) -> int:
        return len(self._decisions)


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    action: str
    lifetime: dt.timedelta
    param: str | None = None
    related: bool = False
    """Also decide on the alert's related accounts (a laundering pair, a lockstep crew)."""

    def __str__(self) -> str:
        text = self.action + (f"={self.param}" if self.param else "")
        text += f" {_format_lifetime(self.lifetime)}"
        return text + (" +related" if self.related else "")


_LIFETIME = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def lifetime(text: str) -> dt.timedelta:
    """``30m``, ``6h``, ``7d``: a decision's lifetime; InvalidInput otherwise."""
    match = _LIFETIME.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidInput(f"a lifetime is a positive number and s, m, h or d, not {text!r}",
                           code="invalid_lifetime")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _format_lifetime(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_response(text: str) -> Response:
    """``ACTION[=PARAM] LIFETIME [+related]``, e.g. ``raise_level=elevated 30m``,
    ``hold_bookings 7d +related``."""
    parts = text.split()
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "+related"):
        raise InvalidInput(f"a response is 'ACTION[=PARAM] LIFETIME [+related]', not {text!r}",
                           code="invalid_response")
    action, _, param = parts[0].partition("=")
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; known: {', '.join(ACTIONS)}",
                           code="invalid_response")
    if action == "raise_level":
        if param not in LEVELS:
            raise InvalidInput(f"raise_level needs a level: {', '.join(LEVELS)}",
                               code="invalid_response")
    elif param:
        raise InvalidInput(f"{action} takes no parameter", code="invalid_response")
    return Response(action, lifetime(parts[1]), param or None, len(parts) == 3)


# Defaults chosen so that the answer is proportionate: rates and speed cost the requester
# proof of work or a stricter guard, which a person barely notices; the ring scenarios hold
# new bookings for an investigator to review, which stops a ring without refusing anyone
# outright. Nothing blocks by default: blocking is an operator's call.
DEFAULT_RESPONSES: Mapping[str, Sequence[str]] = {
    "rate_ip_prefix": ("raise_level=elevated 30m",),
    "rate_account": ("require_pow 1h",),
    "rate_device": ("require_pow 1h",),
    "guard_refusals": (),
    "fanout_ip": ("require_pow 6h",),
    "fanout_device": ("require_pow 24h",),
    "fanout_account": ("hold_bookings 72h",),
    "fanout_phone": ("hold_bookings 72h",),
    "payer_fanout": ("hold_bookings 7d",),
    "fast_action": ("require_pow 24h",),
    "release_snipe": ("require_pow 24h",),
    "early_tokens": ("require_pow 1h",),
    "waitlist_fast_accept": ("require_pow 24h",),
    "launder": ("hold_bookings 7d +related",),
    "identity_spread": ("hold_bookings 7d",),
    "lockstep": ("hold_bookings 72h +related",),
    "bad_identities": ("hold_bookings 7d",),
    "surge_registrations": ("raise_level=elevated 1h",),
    "surge_links": ("raise_level=elevated 1h",),
    "blacklisted": ("hold_bookings 30d",),
}


def responses_from_settings(overrides: Mapping[str, Sequence[str]],
                            ) -> dict[str, list[Response]]:
    """The defaults with the operator's overrides (``FAIRSLOT_MONITOR_RESPONSES``); an
    unknown scenario or a malformed response raises InvalidInput naming it."""
    unknown = set(overrides) - set(DEFAULT_RESPONSES)
    if unknown:
        raise InvalidInput("FAIRSLOT_MONITOR_RESPONSES names unknown scenario(s): "
                           + ", ".join(sorted(unknown)), code="invalid_response")
    merged = {**DEFAULT_RESPONSES, **overrides}
    return {name: [parse_response(text) for text in texts] for name, texts in merged.items()}


def plan_decisions(changes: Sequence[AlertChange], responses: Mapping[str, Sequence[Response]],
                   min_severity: str, now: dt.datetime) -> list[Decision]:
    """The decisions the monitor makes for alerts that opened or escalated, at or above
    ``min_severity``. The store keeps only those it has not made before."""
    decisions: list[Decision] = []
    floor = severity_rank(min_severity)
    for change in changes:
        alert = change.alert
        if not (change.opened or change.escalated) or not alert.live:
            continue
        if severity_rank(alert.severity) < floor:
            continue
        for response in responses.get(alert.scenario, ()):
            targets = [alert.entity]
            if response.related:
                targets += [e for e in alert.related if e.type == "account"
                            and e != alert.entity]
            for entity in targets:
                decisions.append(Decision(
                    None, response.action, entity,
                    f"alert {alert.id} ({alert.scenario}, {alert.severity}): {alert.summary}",
                    now, now + response.lifetime, "monitor", response.param, alert.scenario,
                    alert.id))
    return decisions


def check_entity(entity: Entity) -> Entity:
    if entity.type not in ENTITY_TYPES:
        raise InvalidInput(f"unknown entity type {entity.type!r}", code="invalid_entity")
    return entity

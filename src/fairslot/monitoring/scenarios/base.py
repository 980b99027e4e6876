"""What every scenario shares: the entities alerts name, severities, findings, the platform's
own channels and networks, and the two-step interface the engine drives.

A scenario looks at the kinds of events it cares about. For a batch of events it first lists
the window operations it needs (``plan``), and after the store has run every scenario's
operations it reads its results and says what it found (``judge``). It holds no state of its
own: all of it is in the windows, which is what lets several monitors share the work.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.windows import Op, Window

__all__ = [
    "ENTITY_TYPES",
    "SEVERITIES",
    "Entity",
    "Finding",
    "Platform",
    "Scenario",
    "counted",
    "graded",
    "severity_rank",
    "span",
]

SEVERITIES = ("low", "medium", "high", "critical")
_RANK = {name: n for n, name in enumerate(SEVERITIES)}

ENTITY_TYPES = ("account", "patient", "payer", "phone", "device", "ip", "ip_prefix",
                "session", "route_group", "platform", "guard_key")
"""What an alert or a decision can name. ``route_group`` is one of the guard's groups
(registration, booking, ...); ``platform`` a platform-wide figure (a surge);
``guard_key`` a pseudonymous guard key the monitor cannot map back."""


def severity_rank(severity: str) -> int:
    return _RANK[severity]


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Entity:
    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Entity:
        kind, sep, value = text.partition(":")
        if not sep or kind not in ENTITY_TYPES or not value:
            raise ValueError(f"not an entity: {text!r} (expected TYPE:ID, TYPE one of "
                             f"{', '.join(ENTITY_TYPES)})")
        return cls(kind, value)


@dataclasses.dataclass(slots=True)
class Finding:
    """One scenario's verdict on one event: this entity crossed this threshold."""

    scenario: str
    severity: str
    entity: Entity
    summary: str
    figures: dict[str, Any]
    event: MonitorEvent
    related: tuple[Entity, ...] = ()
    members: tuple[str, ...] = ()
    """Evidence: the members of the window that crossed (patients behind a payer, ...)."""


class Platform:
    """Recognises the platform's own activity: its channels (desk, kiosk, call centre, the
    draw and the waitlist) and the hospital's own networks (kiosks, desks)."""

    def __init__(self, channels: Iterable[str], networks: Iterable[str]) -> None:
        self.channels = frozenset(channels)
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self.own_ip = functools.lru_cache(maxsize=65_536)(self._own_ip)

    def _own_ip(self, ip: str) -> bool:
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def owns(self, event: MonitorEvent) -> bool:
        """Whether the platform itself did this (so no ring scenario should count it)."""
        return event.channel in self.channels or (
            event.ip is not None and bool(self.networks) and self.own_ip(event.ip))


class Scenario:
    """Base of every scenario. Subclasses set ``name``, ``tactics`` (the attack catalogue's
    numbers it answers), ``kinds`` and ``title``, and implement ``plan`` and ``judge``."""

    name: str = ""
    names: tuple[str, ...] = ()
    """The scenario names its findings carry, when not just ``name``."""
    tactics: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()
    title: str = ""
    quiet_below: int = 0
    """When every result of an event's operations is a count below this, the scenario has
    nothing to say and ``judge`` is not called (0: always called). Only for scenarios whose
    operations all return plain counts."""

    def scenario_names(self) -> tuple[str, ...]:
        return self.names or (self.name,)

    def windows(self) -> Sequence[Window]:
        return ()

    def thresholds(self) -> dict[str, Any]:
        """The figures this scenario fires on, for the docs, the console and the evidence."""
        return {}

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        """Append this event's window operations to ``ops``; False when the event does not
        concern this scenario (then ``judge`` is not called for it)."""
        raise NotImplementedError

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        """Read this event's results (from ``start``, in the order planned) and append
        findings to ``out``."""
        raise NotImplementedError


def graded(count: int, threshold: int, *, high: float = 2.0, critical: float | None = None,
           ) -> str:
    """medium at the threshold, high at ``high`` times it, critical at ``critical`` times."""
    if critical is not None and count >= threshold * critical:
        return "critical"
    return "high" if count >= threshold * high else "medium"


def counted(result: Any) -> tuple[int, tuple[str, ...]]:
    """An ADD result as (count, sampled members)."""
    if isinstance(result, tuple):
        return int(result[0]), tuple(result[1])
    return int(result), ()


def span(seconds: float) -> str:
    """A window's length as an operator reads it: 45 s, 10 min, 6 h, 30 days."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86_400:.0f} days"

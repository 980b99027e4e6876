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
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.windows import ADD, Op, Window

__all__ = [
    "ENTITY_TYPES",
    "SEVERITIES",
    "Burst",
    "DayBaseline",
    "Entity",
    "Finding",
    "Platform",
    "Scenario",
    "counted",
    "graded",
    "keyed_plan",
    "keyed_results",
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
    """When every result of an event's operations is a plain count below this, the scenario
    has nothing to say and ``judge`` is not called (0: always called). A sampled result
    (``(count, members)``) always reaches ``judge``; other results (lists, pairs) must not
    occur in a scenario that sets this."""

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


def keyed_plan(event: MonitorEvent, keys: Sequence[str], window: Window, member: str,
               limit: int, ops: list[Op]) -> bool:
    """One ADD of ``member`` per key of ``keys`` the event carries (``account:ID``,
    ``device:ID``, ...), each sampling up to ``limit`` members; False when it carries none.
    ``keyed_results`` walks the results in the same order."""
    planned = False
    for name in keys:
        key = getattr(event, name)
        if key is not None:
            ops.append((ADD, window, f"{name}:{key}", member, event.ts, limit))
            planned = True
    return planned


def keyed_results(event: MonitorEvent, keys: Sequence[str], results: Sequence[Any],
                  start: int) -> Iterator[tuple[str, str, Any]]:
    """(key name, key, result) for each operation ``keyed_plan`` appended for this event."""
    index = start
    for name in keys:
        key = getattr(event, name)
        if key is None:
            continue
        yield name, key, results[index]
        index += 1


@dataclasses.dataclass(frozen=True, slots=True)
class Burst:
    """A short window's count that crossed its day baseline."""

    recent: int
    expected: float
    """What the last day's active hours predict for a window as long as the short one."""
    needed: int
    """The count the window had to reach: the minimum, or more when the day was busy."""
    hours: int
    """Hours of the last day with any activity (this one included)."""


class DayBaseline:
    """A count over a short window compared with the rate of the last day's active hours:
    what the surges and the bad-identity burst fire on. Three windows, under ``name``: the
    short one, the day (same key, same members) and the day's active hours.

    ``judge`` answers a ``Burst`` when the short window holds at least ``minimum`` and at
    least ``factor`` times what the day predicts for it; a quiet night does not make a busy
    morning look like a burst, since only hours with activity count. With fewer than
    ``history_hours`` active hours the day is mostly the window itself: then twice
    ``minimum`` is needed, whatever the rate."""

    def __init__(self, name: str, seconds: int, *, history_hours: int,
                 short_cap: int = 1_000_000) -> None:
        self.short = Window(f"{name}_short", seconds, cap=short_cap)
        self.day = Window(f"{name}_day", 86_400, cap=1_000_000)
        self.hours = Window(f"{name}_hours", 86_400)
        self.history_hours = history_hours

    @property
    def seconds(self) -> float:
        return self.short.seconds

    def windows(self) -> tuple[Window, Window, Window]:
        return (self.short, self.day, self.hours)

    def plan(self, key: str, member: str, ts: float, ops: list[Op]) -> int:
        """Append the three operations; answers how many (``judge`` reads that many)."""
        ops.append((ADD, self.short, key, member, ts, 0))
        ops.append((ADD, self.day, key, member, ts, 0))
        ops.append((ADD, self.hours, key, str(int(ts // 3600)), ts, 0))
        return 3

    def judge(self, results: Sequence[Any], start: int, minimum: int,
              factor: float) -> Burst | None:
        recent, day = int(results[start]), int(results[start + 1])
        hours = int(results[start + 2])
        if recent < minimum:
            return None
        if hours < self.history_hours:
            if recent < 2 * minimum:
                return None
            return Burst(recent, 0.0, 2 * minimum, hours)
        expected = max(day - recent, 0) * self.short.seconds / ((hours - 1) * 3600)
        if recent < factor * expected:
            return None
        return Burst(recent, expected, max(minimum, math.ceil(factor * expected)), hours)

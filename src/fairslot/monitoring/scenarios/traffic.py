"""Traffic scenarios: request rates per IP prefix, account and device; a requester the guard
keeps refusing; and surges of new accounts or identity links (a farm getting ready before a
release)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from fairslot.monitoring.events import MonitorEvent, ip_prefix
from fairslot.monitoring.scenarios.base import (
    DayBaseline,
    Entity,
    Finding,
    Platform,
    Scenario,
    counted,
    graded,
    keyed_results,
    span,
)
from fairslot.monitoring.windows import ADD, Op, Window

__all__ = ["GuardRefusals", "IpRotation", "RequestRates", "Surge"]

_MINUTE = 60.0


class RequestRates(Scenario):
    """Requests per minute of one IP prefix, account or device, from the access log. One
    object serves the three scenarios ``rate_ip_prefix``, ``rate_account`` and
    ``rate_device`` (access events are most of the stream, so they are read once)."""

    name = "rate"
    tactics = ("T1", "T2", "T7")
    kinds = frozenset({"access"})
    title = "requests per minute from one IP prefix, account or device"

    def __init__(self, per_minute: dict[str, int], platform: Platform) -> None:
        unknown = set(per_minute) - {"ip_prefix", "account", "device"}
        if unknown:
            raise ValueError(f"no request rate per {', '.join(sorted(unknown))}")
        self.per_minute = dict(per_minute)
        self.quiet_below = min(per_minute.values(), default=0)
        self.names = tuple(f"rate_{kind}" for kind in per_minute)
        self.platform = platform
        self._windows = {kind: Window(f"rate_{kind}", _MINUTE, cap=max(10_000, 4 * limit))
                         for kind, limit in per_minute.items()}
        self._prefix = self._windows.get("ip_prefix")
        self._account = self._windows.get("account")
        self._device = self._windows.get("device")

    def windows(self) -> Sequence[Window]:
        return tuple(self._windows.values())

    def thresholds(self) -> dict[str, Any]:
        return {f"rate_{kind}": {"requests_per_minute": limit}
                for kind, limit in self.per_minute.items()}

    def _keys(self, event: MonitorEvent) -> list[tuple[str, str]]:
        keys = []
        if self._prefix is not None and event.ip is not None:
            prefix = ip_prefix(event.ip)
            if prefix is not None:
                keys.append(("ip_prefix", prefix))
        if self._account is not None and event.account is not None:
            keys.append(("account", event.account))
        if self._device is not None and event.device is not None:
            keys.append(("device", event.device))
        return keys

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if event.channel in self.platform.channels:
            return False
        ip = event.ip
        if ip is not None and self.platform.networks and self.platform.own_ip(ip):
            return False
        planned = False
        event_id, ts = event.id, event.ts
        if ip is not None and self._prefix is not None:
            prefix = ip_prefix(ip)
            if prefix is not None:
                ops.append((ADD, self._prefix, prefix, event_id, ts, 0))
                planned = True
        if event.account is not None and self._account is not None:
            ops.append((ADD, self._account, event.account, event_id, ts, 0))
            planned = True
        if event.device is not None and self._device is not None:
            ops.append((ADD, self._device, event.device, event_id, ts, 0))
            planned = True
        return planned

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        for index, (kind, key) in enumerate(self._keys(event), start=start):
            count = int(results[index])
            limit = self.per_minute[kind]
            if count < limit:
                continue
            out.append(Finding(
                f"rate_{kind}", graded(count, limit), Entity(kind, key),
                f"{count} requests in one minute from {kind.replace('_', ' ')} {key} "
                f"(threshold {limit})",
                {"requests": count, "window_s": 60, "threshold": limit}, event))


def _guard_entity(event: MonitorEvent) -> Entity | None:
    key = event.detail.get("key")
    if key == "ip" and event.ip:
        return Entity("ip", event.ip)
    if key == "prefix" and event.ip:
        prefix = ip_prefix(event.ip)
        return None if prefix is None else Entity("ip_prefix", prefix)
    if key == "account" and event.account:
        return Entity("account", event.account)
    if key == "device" and event.device:
        return Entity("device", event.device)
    key_hash = event.detail.get("key_hash")
    if key_hash:
        return Entity("guard_key", f"{key}:{key_hash}")
    return None


class GuardRefusals(Scenario):
    """A requester the guard keeps refusing: a person stops after a refusal or two; a bot
    retries. Load shedding (``overloaded``) is the server's state, not the requester's."""

    name = "guard_refusals"
    tactics = ("T1", "T7")
    kinds = frozenset({"guard.deny"})
    title = "a requester the guard keeps refusing"

    def __init__(self, refusals: int, seconds: int) -> None:
        self.refusals = refusals
        self.quiet_below = refusals
        self.window = Window(self.name, seconds, cap=max(10_000, 2 * refusals))

    def windows(self) -> Sequence[Window]:
        return (self.window,)

    def thresholds(self) -> dict[str, Any]:
        return {"refusals": self.refusals, "window_s": self.window.seconds}

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if event.detail.get("reason") == "overloaded":
            return False
        entity = _guard_entity(event)
        if entity is None:
            return False
        ops.append((ADD, self.window, str(entity), event.id, event.ts, 0))
        return True

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        count = int(results[start])
        if count < self.refusals:
            return
        entity = _guard_entity(event)
        assert entity is not None
        out.append(Finding(
            self.name, graded(count, self.refusals, high=5.0), entity,
            f"{entity} refused {count} times by the guard in {self.window.seconds:.0f} s "
            f"(last: {event.detail.get('reason')})",
            {"refusals": count, "window_s": self.window.seconds, "threshold": self.refusals,
             "reason": str(event.detail.get("reason", "")),
             "group": str(event.detail.get("group", ""))}, event))


class Surge(Scenario):
    """New accounts or identity links arriving far faster than over the last day: a farm
    registering its accounts or linking its identities before a release. Counted
    platform-wide; an alert names the guard's route group to raise."""

    tactics = ("T3",)

    def __init__(self, kind: str, seconds: int, minimum: int, factor: float,
                 platform: Platform) -> None:
        what = {"account.registered": "registrations", "patient.linked": "links"}
        if kind not in what:
            raise ValueError(f"no surge scenario for {kind}")
        self.what = what[kind]
        self.name = f"surge_{self.what}"
        self.kinds = frozenset({kind})
        noun = "accounts" if kind == "account.registered" else "identity links"
        self.title = f"a surge of new {noun}"
        self.minimum = minimum
        self.factor = factor
        self.platform = platform
        self.baseline = DayBaseline(self.name, seconds, history_hours=2)
        self.group = "registration" if kind == "account.registered" else "entering"

    def windows(self) -> Sequence[Window]:
        return self.baseline.windows()

    def thresholds(self) -> dict[str, Any]:
        return {"window_s": self.baseline.seconds, "at_least": self.minimum,
                "times_day_rate": self.factor}

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if self.platform.owns(event):
            return False
        self.baseline.plan(self.what, event.id, event.ts, ops)
        return True

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        burst = self.baseline.judge(results, start, self.minimum, self.factor)
        if burst is None:
            return
        seconds = self.baseline.seconds
        out.append(Finding(
            self.name, "high" if burst.recent >= 2 * self.minimum else "medium",
            Entity("route_group", self.group),
            f"{burst.recent} new {self.what} in {seconds / 60:.0f} min against "
            f"{burst.expected:.1f} expected from the last day's active hours",
            {self.what: burst.recent, "window_s": seconds, "expected": round(burst.expected, 2),
             "threshold": self.minimum, "factor": self.factor, "active_hours": burst.hours},
            event))


@functools.lru_cache(maxsize=65_536)
def _prefix_entity(prefix: str) -> Entity:
    # Entities are immutable: a rotating account's alert names the same prefixes again and
    # again, one object each will do.
    return Entity("ip_prefix", prefix)


class IpRotation(Scenario):
    """One account or device whose requests come from many networks: a rotating residential
    proxy pool (T7) changes the address request by request, so no address or prefix fans
    out, but the account, its device and its software stay the same. Counted as distinct
    IPv4 /24s (IPv6 /48s) per account and per device over two spans:

    - ``seconds`` (minutes): a busy script crosses ``prefixes`` within one visit; a phone
      moving between home Wi-Fi and its carrier uses two or three, a carrier's NAT a few more;
    - ``slow_seconds`` (a week): an account that makes a handful of requests per release
      never crosses the first, but each request comes from another network, and over a week
      they add up to ``slow_prefixes``. A person's week is home, work and a carrier or two.

    The alert names the account or device, with the other one and the prefixes seen as
    related entities."""

    name = "ip_rotation"
    tactics = ("T7",)
    kinds = frozenset({"access"})
    title = "one account or device coming from many networks"
    keys = ("account", "device")

    def __init__(self, prefixes: int, seconds: int, platform: Platform, *,
                 slow_prefixes: int = 0, slow_seconds: int = 7 * 86_400) -> None:
        self.prefixes = prefixes
        self.platform = platform
        self.window = Window(self.name, seconds)
        self.tiers = [(self.window, prefixes)]
        if slow_prefixes:
            self.tiers.append((Window(f"{self.name}_slow", slow_seconds), slow_prefixes))
        # Each tier samples at its own threshold, so a count under the lowest one is quiet.
        self.quiet_below = min(limit for _, limit in self.tiers)

    def windows(self) -> Sequence[Window]:
        return tuple(window for window, _ in self.tiers)

    def thresholds(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"prefixes": self.prefixes, "window_s": self.window.seconds}
        if len(self.tiers) > 1:
            window, limit = self.tiers[1]
            figures.update(slow_prefixes=limit, slow_window_s=window.seconds)
        return figures

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        ip = event.ip
        if ip is None or self.platform.owns(event):
            return False
        prefix = ip_prefix(ip)
        if prefix is None:
            return False
        # keyed_plan's keys, built once for every tier.
        keys = [f"{name}:{key}" for name in self.keys
                if (key := getattr(event, name)) is not None]
        ts = event.ts
        for window, limit in self.tiers:
            for key in keys:
                ops.append((ADD, window, key, prefix, ts, limit))
        return bool(keys)

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        keyed = sum(getattr(event, name) is not None for name in self.keys)
        fired: set[str] = set()
        for tier, (window, limit) in enumerate(self.tiers):
            for name, key, result in keyed_results(event, self.keys, results,
                                                   start + tier * keyed):
                count, members = counted(result)
                if count < limit or name in fired:
                    continue
                fired.add(name)
                related = tuple(Entity(other, getattr(event, other)) for other in self.keys
                                if other != name and getattr(event, other) is not None)
                related += tuple(map(_prefix_entity, members))
                out.append(Finding(
                    self.name, graded(count, limit, high=3.0), Entity(name, key),
                    f"{name} {key} came from {count} networks in {span(window.seconds)} "
                    f"(threshold {limit})",
                    {"prefixes": count, "window_s": window.seconds, "threshold": limit},
                    event, related=related, members=members))

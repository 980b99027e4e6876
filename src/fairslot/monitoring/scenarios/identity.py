"""Identity scenarios: nonsense identities and invalid ID numbers tried by one account or
device (a virtual-number farm making up patients, T3), and any activity of an entity on the
blacklist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from fairslot.monitoring.events import MonitorEvent, ip_prefix
from fairslot.monitoring.scenarios.base import (
    DayBaseline,
    Entity,
    Finding,
    Platform,
    Scenario,
    counted,
    graded,
    keyed_plan,
    keyed_results,
    span,
)
from fairslot.monitoring.windows import RECENT, Op, Window

__all__ = ["BadIdentities", "BadIdentityBurst", "Blacklist", "Blacklisted", "StaticBlacklist"]


def _bad(event: MonitorEvent) -> str | None:
    """What was wrong with the identity an event carries, or None."""
    if event.kind == "identity.rejected":
        return str(event.detail.get("reason") or "rejected")
    if event.detail.get("id_valid") is False:
        return "invalid_id_number"
    if event.detail.get("name_plausible") is False:
        return "invalid_name"
    return None


class BadIdentities(Scenario):
    """Distinct bad identities (an ID number that fails its checks, a name that is no name,
    an identity the real-name check refused) tried by one account or device within
    ``seconds``. A person mistypes their own number once or twice; a farm makes up dozens."""

    name = "bad_identities"
    tactics = ("T3",)
    kinds = frozenset({"identity.rejected", "patient.linked"})
    title = "nonsense identities and invalid ID numbers tried"
    keys = ("account", "device")

    def __init__(self, identities: int, seconds: int, platform: Platform) -> None:
        self.identities = identities
        self.quiet_below = identities
        self.platform = platform
        self.window = Window(self.name, seconds)

    def windows(self) -> Sequence[Window]:
        return (self.window,)

    def thresholds(self) -> dict[str, Any]:
        return {"identities": self.identities, "window_s": self.window.seconds}

    @staticmethod
    def _member(event: MonitorEvent) -> str:
        # One person typing a relative's number wrong three times tries one name; a farm
        # makes up a name per identity. So the name tried (a blind index) is the identity
        # when the platform sends it, else the number tried, else the patient.
        detail = event.detail
        return str(detail.get("name_tried") or detail.get("tried") or event.patient
                   or event.id)

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if _bad(event) is None or self.platform.owns(event):
            return False
        return keyed_plan(event, self.keys, self.window, self._member(event),
                          self.identities, ops)

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        for name, key, result in keyed_results(event, self.keys, results, start):
            count, _ = counted(result)
            if count < self.identities:
                continue
            out.append(Finding(
                self.name, graded(count, self.identities), Entity(name, key),
                f"{name} {key} tried {count} bad identities in {span(self.window.seconds)} "
                f"(last: {_bad(event)})",
                {"identities": count, "window_s": self.window.seconds,
                 "threshold": self.identities, "last_reason": _bad(event)}, event,
                members=tuple(result[1]) if isinstance(result, tuple) else ()))


class Blacklist(Protocol):
    """What the shared blacklist answers: whether an entity is listed, and why. A lookup is
    made for each identifier of every event, so implementations answer from memory."""

    def reason(self, entity: Entity) -> str | None: ...


class StaticBlacklist:
    """A blacklist held in memory: for tests, and until the shared blacklist is wired in."""

    def __init__(self, entries: dict[Entity, str] | None = None) -> None:
        self._entries = dict(entries or {})

    def add(self, entity: Entity, reason: str) -> None:
        self._entries[entity] = reason

    def reason(self, entity: Entity) -> str | None:
        return self._entries.get(entity)

    def __len__(self) -> int:
        return len(self._entries)


_FIELDS = ("account", "patient", "payer", "phone", "device", "ip")


class Blacklisted(Scenario):
    """Any event naming a blacklisted account, patient, payer, phone, device, IP or IP
    prefix. Each listed entity gets one alert, kept up to date while it is open."""

    name = "blacklisted"
    tactics = ("T1", "T3", "T4", "T5", "T6", "T7", "T8", "T9")
    title = "activity of a blacklisted entity"

    def __init__(self, blacklist: Blacklist, kinds: frozenset[str]) -> None:
        self.blacklist = blacklist
        self.kinds = kinds

    def _hits(self, event: MonitorEvent) -> list[tuple[Entity, str]]:
        hits = []
        for name in _FIELDS:
            value = getattr(event, name)
            if value is None:
                continue
            entity = Entity(name, value)
            reason = self.blacklist.reason(entity)
            if reason is not None:
                hits.append((entity, reason))
        if event.ip is not None:
            prefix = ip_prefix(event.ip)
            if prefix is not None:
                entity = Entity("ip_prefix", prefix)
                reason = self.blacklist.reason(entity)
                if reason is not None:
                    hits.append((entity, reason))
        return hits

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        return bool(self._hits(event))

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        for entity, reason in self._hits(event):
            out.append(Finding(
                self.name, "high", entity,
                f"blacklisted {entity} active: {event.kind} ({reason})",
                {"listed_for": reason, "kind": event.kind}, event))


class BadIdentityBurst(Scenario):
    """Many accounts trying bad identities at once, platform-wide: a farm's script makes up
    one patient per account, from a fresh number, device and address each, so no one of
    them repeats (``bad_identities`` misses it); but it registers them by the dozen within
    minutes. A person mistypes a relative's number now and then, spread over the day.

    Counted per account within ``seconds`` and compared with the last day's rate (as the
    surges are): at ``minimum`` accounts and ``factor`` times the day's rate (under three
    active hours of history, twice ``minimum``) every account of the burst is named, each
    with its own alert (the account, its device and address as related entities)."""

    name = "bad_identity_burst"
    tactics = ("T3",)
    kinds = frozenset({"identity.rejected", "patient.linked"})
    title = "a burst of accounts trying bad identities"

    def __init__(self, minimum: int, seconds: int, factor: float,
                 platform: Platform) -> None:
        self.minimum = minimum
        self.factor = factor
        self.platform = platform
        self.baseline = DayBaseline(self.name, seconds, history_hours=3, short_cap=100_000)

    def windows(self) -> Sequence[Window]:
        return self.baseline.windows()

    def thresholds(self) -> dict[str, Any]:
        return {"accounts": self.minimum, "window_s": self.baseline.seconds,
                "times_day_rate": self.factor}

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if event.account is None or _bad(event) is None or self.platform.owns(event):
            return False
        self.baseline.plan("bad", event.account, event.ts, ops)
        # Everyone of the burst so far, to name them all when it crosses.
        ops.append((RECENT, self.baseline.short, "bad", "", event.ts, 0))
        return True

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        burst = self.baseline.judge(results, start, self.minimum, self.factor)
        if burst is None:
            return
        recent, baseline, needed = burst.recent, burst.expected, burst.needed
        seconds = self.baseline.seconds
        figures = {"accounts": recent, "window_s": seconds, "expected": round(baseline, 2),
                   "threshold": self.minimum, "factor": self.factor}
        summary = (f"{recent} accounts tried bad identities in {span(seconds)} against "
                   f"{baseline:.1f} expected from the last day (last: {_bad(event)})")
        assert event.account is not None
        accounts: list[str] = [event.account] if recent > needed else [
            str(member) for member, _ in results[start + 3]]
        severity = "high" if recent >= 4 * self.minimum else "medium"
        for account in accounts:
            if account == event.account:
                related = tuple(Entity(kind, value) for kind, value in (
                    ("device", event.device), ("ip", event.ip)) if value is not None)
            else:
                related = ()
            out.append(Finding(self.name, severity, Entity("account", account), summary,
                               figures, event, related=related))

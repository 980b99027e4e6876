"""Replaying recorded activity through the monitor, and measuring what it caught.

The harness is generic: events in (any iterable of ``MonitorEvent`` in time order), alerts
out, through the same engine, alert store logic and decision planning as a live monitor,
with windows and alerts in memory and "now" taken from the events. ``events_from_records``
turns a records folder (the exchange format: bookings, payments, access) into the events
the platform would have published, so that a year of labelled synthetic records
(``fairslot records synth``) can score the scenarios:

- per attack tactic, the share of the ring entities that did it which an alert of a
  scenario answering that tactic names (as its entity or a related one), and the share of
  rings doing it with at least one such entity named;
- alerts whose entity is genuine, per 10,000 genuine patients (the false-alarm rate).

What records cannot show is not invented: there is no registration, identity check, booking
screen or waitlist in an export, so a booking's screen time is the time since the account's
previous page view (none within ten minutes: no screen at all), and an identity is "linked"
when an account first books it.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import polars as pl

from fairslot.clock import FixedClock
from fairslot.config import Settings
from fairslot.domain.errors import InvalidInput
from fairslot.domain.identity import is_valid_id_number, normalize_name
from fairslot.investigation.records import Records
from fairslot.monitoring.alerts import Alert
from fairslot.monitoring.assemble import make_monitor
from fairslot.monitoring.decisions import Decision, MemoryDecisionBook
from fairslot.monitoring.events import Channel, MonitorEvent, ip_prefix
from fairslot.monitoring.scenarios import Blacklist, Entity, build_scenarios
from fairslot.monitoring.store import MemoryStore

__all__ = [
    "RING_TACTICS",
    "Evaluation",
    "Pseudonyms",
    "ReplayResult",
    "TacticRecall",
    "evaluate",
    "events_from_records",
    "replay",
]

# Every ``channel`` value of the records contract (docs/records.md, "Channels"): staff
# channels and the platform's own (draw, waitlist) are the platform's, not a person's.
_CHANNELS = {"app": Channel.APP, "web": Channel.WEB, "wechat": Channel.APP,
             "window": Channel.DESK, "desk": Channel.DESK, "staff": Channel.DESK,
             "referral": Channel.DESK, "phone": Channel.CALL_CENTRE,
             "call_centre": Channel.CALL_CENTRE, "kiosk": Channel.KIOSK,
             "draw": Channel.DRAW, "waitlist": Channel.WAITLIST, "other": Channel.WEB}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SCREEN_SECONDS = 600.0
"""A page view older than this before a booking is not the booking's screen."""


class Pseudonyms:
    """Keyed hashes for the identifiers the monitor must not see in clear (ID numbers,
    payment accounts), with a key of this run's own: the labels go through the same hash."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or os.urandom(32)
        self._memo: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, value: str) -> str:
        memo = (kind, value)
        known = self._memo.get(memo)
        if known is None:
            mac = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256)
            known = self._memo[memo] = "h:" + mac.hexdigest()[:20]
        return known

    def patient(self, id_number: str) -> str:
        return self("patient", id_number.strip().replace(" ", "").upper())

    def payer(self, payer: str) -> str:
        return self("payer", payer.strip().lower())


def _plausible_name(name: str | None) -> bool | None:
    if name is None:
        return None
    try:
        normalize_name(name)
    except InvalidInput:
        return False
    return True


def _ts(value: Any) -> float | None:
    return None if value is None else float(value.timestamp())


def events_from_records(records: Records, pseudonyms: Pseudonyms) -> list[MonitorEvent]:
    """The events a platform would have published for these records, in time order."""
    events: list[MonitorEvent] = []
    views: dict[str, list[float]] = {}
    accounts_seen: set[str] = set()
    if records.access is not None:
        for n, (ts, ip, account, device, method, path, status) in enumerate(
                records.access.select("ts", "ip", "account_id", "device_id", "method", "path",
                                      "status").iter_rows()):
            stamp = float(ts.timestamp())
            events.append(MonitorEvent(
                f"x{n}", "access", stamp, account=account, ip=ip, device=device,
                detail={"method": method, "path": path, "status": status}))
            if account is not None:
                accounts_seen.add(account)
                if method == "GET":
                    views.setdefault(account, []).append(stamp)
        for stamps in views.values():
            stamps.sort()

    def screen_age(account: str, at: float) -> dict[str, Any]:
        if records.access is None or account not in accounts_seen:
            return {}
        stamps = views.get(account, [])
        i = bisect.bisect_left(stamps, at) - 1
        if i >= 0 and at - stamps[i] <= SCREEN_SECONDS:
            return {"screen_age_s": round(at - stamps[i], 3)}
        return {"screen_age_s": 0.0, "no_screen": True}

    booked: dict[str, tuple[Any, ...]] = {}
    linked: set[tuple[str, str]] = set()
    validity: dict[str, tuple[bool, bool | None]] = {}
    columns = ("booking_id", "created_at", "account_id", "patient_id_number", "patient_name",
               "department", "doctor_id", "session_start", "released_at", "channel", "ip",
               "device_id", "cancelled_at", "slot_freed_at")
    frame = records.bookings.select(
        *[c if c in records.bookings.columns else pl.lit(None).alias(c) for c in columns])
    for (booking, created, account, id_number, name, department, doctor, start, released,
         channel, ip, device, cancelled, freed) in frame.iter_rows():
        patient = pseudonyms.patient(id_number)
        session = f"{doctor}@{start.isoformat()}"
        chan = _CHANNELS.get((channel or "").strip().lower(), Channel.WEB).value
        at = float(created.timestamp())
        if (account, patient) not in linked:
            linked.add((account, patient))
            if patient not in validity:
                validity[patient] = (is_valid_id_number(id_number), _plausible_name(name))
            valid, plausible = validity[patient]
            detail: dict[str, Any] = {"id_valid": valid}
            if plausible is not None:
                detail["name_plausible"] = plausible
            events.append(MonitorEvent(
                f"l:{account}:{patient}", "patient.linked", at - 0.001, account=account,
                patient=patient, ip=ip, device=device, channel=chan, detail=detail))
        fields = (account, patient, session, doctor, department, ip, device, chan)
        booked[booking] = fields
        timing = screen_age(account, at)
        if freed is not None:
            # The optional ``slot_freed_at``: the slot had re-opened (docs/records.md).
            timing["freed_ts"] = float(freed.timestamp())
        events.append(MonitorEvent(
            f"b:{booking}", "booking.created", at, account=account, patient=patient,
            session=session, doctor=doctor, department=department, booking=booking, ip=ip,
            device=device, channel=chan, release_ts=_ts(released), detail=timing))
        if cancelled is not None:
            events.append(MonitorEvent(
                f"c:{booking}", "booking.cancelled", float(cancelled.timestamp()),
                account=account, patient=patient, session=session, doctor=doctor,
                department=department, booking=booking, ip=ip, device=device, channel=chan))
    for payment, booking, paid, payer in records.payments.select(
            "payment_id", "booking_id", "paid_at", "payer_account").iter_rows():
        known = booked.get(booking)
        account, patient, session, doctor, department, ip, device, chan = known or (
            None, None, None, None, None, None, None, Channel.WEB.value)
        events.append(MonitorEvent(
            f"p:{payment}", "booking.paid", float(paid.timestamp()), account=account,
            patient=patient, session=session, doctor=doctor, department=department,
            booking=booking, ip=ip, device=device, payer=pseudonyms.payer(payer),
            channel=chan))
    events.sort(key=lambda e: e.ts)
    return events


@dataclasses.dataclass(slots=True)
class ReplayResult:
    alerts: list[Alert]
    decisions: list[Decision]
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _batches(events: Iterable[MonitorEvent], size: int) -> Iterator[list[MonitorEvent]]:
    batch: list[MonitorEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def replay(events: Iterable[MonitorEvent], settings: Settings, *, batch: int = 2000,
           blacklist: Blacklist | None = None,
           monotonic: Callable[[], float] = time.perf_counter) -> ReplayResult:
    """Run events (in time order) through a monitor with memory windows and an in-memory
    store; each batch's "now" is its last event's time."""
    store = MemoryStore()
    book = MemoryDecisionBook()
    monitor = make_monitor(settings, clock=FixedClock(_EPOCH), sink=book, store=store,
                           blacklist=blacklist, notify=False)
    count = 0
    started = monotonic()
    for chunk in _batches(events, batch):
        monitor.process(chunk, now=chunk[-1].at)
        count += len(chunk)
    elapsed = monotonic() - started
    return ReplayResult(store.alerts(limit=10**9), store.decisions(limit=10**9), count,
                        elapsed)


# --- evaluation against labels --------------------------------------------------------


RING_TACTICS: dict[str, tuple[tuple[str, str, frozenset[str]], ...]] = {
    # tactic: (ring kind, entity type, roles) that did it in the synthetic generator's rings
    "T1": (("bot_farm", "account", frozenset({"holder"})),),
    "T2": (("broker", "account", frozenset({"booker"})),
           ("credential_broker", "device", frozenset({"ring_device"}))),
    "T3": (("bot_farm", "account", frozenset({"holder"})),),
    "T4": (("bot_farm", "account", frozenset({"holder"})),),
    "T5": (("bot_farm", "patient", frozenset({"fake_identity"})),),
    "T6": (("bot_farm", "payer", frozenset({"payment_hub"})),
           ("broker", "payer", frozenset({"payment_hub"})),
           ("crowd", "payer", frozenset({"payment_hub"}))),
    "T7": (),
    "T8": (("crowd", "account", frozenset({"booker"})),),
    "T9": (("credential_broker", "device", frozenset({"ring_device"})),
           ("broker", "account", frozenset({"booker"}))),
}
"""Which labelled entities did each tactic, by the synthetic generator's ring kinds: bot
farms (fast API bots holding slots under fake identities and laundering them to buyers paid
through hub payers), brokers (auto-clickers booking buyers' identities), family crowds
(grabbing together by hand) and credential brokers (customers' own accounts driven from the
reseller's devices). No ring of the records does IP fan-out (T7): they rotate proxies."""

DRIVEN_BY_RINGS = frozenset({"lent_account"})
"""Genuine look-alikes a ring drives: a customer's account whose login a credential broker
uses. The investigation does not name the customer a suspect, but a live monitor that
challenges the account while the broker's device books with it is right to, so an alert
on it is not a false alarm."""

_KINDS_BY_INDEX = ("bot_farm", "broker", "crowd", "credential_broker")


def ring_kinds(labels: pl.DataFrame) -> dict[str, str]:
    """Each ring's kind, from its members' roles (and, for brokers and crowds, which share
    roles, from the generator's order R1 bot farm, R2 broker, R3 crowd, R4 credential
    broker, repeating)."""
    kinds: dict[str, str] = {}
    rings = labels.filter(pl.col("ring_id").is_not_null())
    for ring, roles in rings.group_by("ring_id").agg(pl.col("role")).iter_rows():
        role_set = set(roles)
        if "holder" in role_set:
            kinds[ring] = "bot_farm"
        elif "buyer_device" in role_set:
            # Only a credential broker's labels name its customers' own devices (their
            # accounts, lent to the broker, are labelled genuine).
            kinds[ring] = "credential_broker"
        else:
            digits = "".join(ch for ch in ring if ch.isdigit())
            guess = _KINDS_BY_INDEX[(int(digits) - 1) % 4] if digits else "unknown"
            kinds[ring] = guess if guess in ("broker", "crowd") else "unknown"
    return kinds


@dataclasses.dataclass(frozen=True, slots=True)
class TacticRecall:
    tactic: str
    scenarios: tuple[str, ...]
    targets: int
    named: int
    rings: int
    rings_named: int

    @property
    def recall(self) -> float | None:
        return self.named / self.targets if self.targets else None

    @property
    def ring_recall(self) -> float | None:
        return self.rings_named / self.rings if self.rings else None


@dataclasses.dataclass(slots=True)
class Evaluation:
    tactics: list[TacticRecall]
    alerts: int
    ring_alerts: int
    genuine_alerts: int
    platform_alerts: int
    genuine_patients: int
    hard_case_alerts: dict[str, int]
    by_scenario: dict[str, tuple[int, int]]
    """scenario -> (alerts on ring entities, alerts on genuine ones)"""
    genuine_examples: list[str]

    @property
    def genuine_per_10k(self) -> float:
        return 10_000 * self.genuine_alerts / self.genuine_patients \
            if self.genuine_patients else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tactics": [{"tactic": t.tactic, "scenarios": list(t.scenarios),
                         "targets": t.targets, "named": t.named, "recall": t.recall,
                         "rings": t.rings, "rings_named": t.rings_named,
                         "ring_recall": t.ring_recall} for t in self.tactics],
            "alerts": self.alerts, "ring_alerts": self.ring_alerts,
            "genuine_alerts": self.genuine_alerts, "platform_alerts": self.platform_alerts,
            "genuine_patients": self.genuine_patients,
            "genuine_alerts_per_10k_patients": round(self.genuine_per_10k, 3),
            "hard_case_alerts": self.hard_case_alerts,
            "by_scenario": {k: {"ring": v[0], "genuine": v[1]}
                            for k, v in sorted(self.by_scenario.items())},
            "genuine_examples": self.genuine_examples,
        }


def _label_entity(entity_type: str, entity_id: str, pseudonyms: Pseudonyms) -> Entity:
    if entity_type == "patient":
        return Entity("patient", pseudonyms.patient(entity_id))
    if entity_type == "payer":
        return Entity("payer", pseudonyms.payer(entity_id))
    return Entity(entity_type, entity_id)


def evaluate(alerts: Sequence[Alert], labels: pl.DataFrame, events: Sequence[MonitorEvent],
             pseudonyms: Pseudonyms, settings: Settings) -> Evaluation:
    """Score ``alerts`` against ``labels`` (entity_type, entity_id, ring_id, role)."""
    kinds = ring_kinds(labels)
    ring_of: dict[Entity, str] = {}
    role_of: dict[Entity, str] = {}
    hard: dict[Entity, str] = {}
    for etype, eid, ring, role in labels.select(
            "entity_type", "entity_id", "ring_id", "role").iter_rows():
        entity = _label_entity(etype, eid, pseudonyms)
        if ring is not None:
            ring_of[entity] = ring
            role_of[entity] = role
        elif role.startswith("hard_case:"):
            hard[entity] = role.removeprefix("hard_case:")
    ring_prefixes = {ip_prefix(e.id) for e in ring_of if e.type == "ip"}
    present: set[Entity] = set()
    patients: set[str] = set()
    for event in events:
        for name in ("account", "patient", "payer", "device", "ip"):
            value = getattr(event, name)
            if value is not None:
                present.add(Entity(name, value))
        if event.kind == "booking.created" and event.patient is not None:
            patients.add(event.patient)
    genuine_patients = sum(1 for p in patients if Entity("patient", p) not in ring_of)

    scenario_tactics = {name: sc.tactics for sc in build_scenarios(settings, _Empty())
                        for name in sc.scenario_names()}
    named_by_tactic: dict[str, set[Entity]] = {}
    ring_alerts = genuine_alerts = platform_alerts = 0
    by_scenario: dict[str, list[int]] = {}
    hard_case_alerts: dict[str, int] = {}
    examples: list[str] = []
    for alert in alerts:
        entity = alert.entity
        counts = by_scenario.setdefault(alert.scenario, [0, 0])
        if entity.type in ("route_group", "platform"):
            platform_alerts += 1
        elif entity in ring_of or (entity.type == "ip_prefix" and entity.id in ring_prefixes) \
                or hard.get(entity) in DRIVEN_BY_RINGS:
            ring_alerts += 1
            counts[0] += 1
        else:
            genuine_alerts += 1
            counts[1] += 1
            if entity in hard:
                hard_case_alerts[hard[entity]] = hard_case_alerts.get(hard[entity], 0) + 1
            if len(examples) < 20:
                examples.append(f"{alert.scenario} {alert.entity}: {alert.summary}")
        for tactic in scenario_tactics.get(alert.scenario, ()):
            named_by_tactic.setdefault(tactic, set()).update([entity, *alert.related])

    tactics: list[TacticRecall] = []
    for tactic, doers in RING_TACTICS.items():
        targets: set[Entity] = set()
        for kind, etype, roles in doers:
            targets |= {e for e, ring in ring_of.items()
                        if kinds.get(ring) == kind and e.type == etype
                        and role_of[e] in roles and e in present}
        named = targets & named_by_tactic.get(tactic, set())
        rings = {ring_of[e] for e in targets}
        tactics.append(TacticRecall(
            tactic, tuple(sorted(n for n, ts in scenario_tactics.items() if tactic in ts)),
            len(targets), len(named), len(rings), len({ring_of[e] for e in named})))
    return Evaluation(tactics, len(alerts), ring_alerts, genuine_alerts, platform_alerts,
                      genuine_patients, hard_case_alerts,
                      {k: (v[0], v[1]) for k, v in by_scenario.items()}, examples)


class _Empty:
    """A blacklist with nobody on it: only to list every scenario's tactics."""

    def reason(self, entity: Entity) -> str | None:
        return None

"""The simulator's traffic through the monitor: recall per tactic and false alerts.

``replay_simulation`` runs a scenario (``seeds`` by default) with the platform's commit
hook publishing every committed event, exactly as a server does, then replays those events
through the monitor's scenarios (memory windows, in-memory alerts) and scores the alerts
against what the simulation knows about each entity:

- for each tactic, the entities that used it *and made its move* (read from the events:
  asked to book, enter or pay for T1, T2, T4, T5, T6, T8 and T9; tried an identity for T3;
  requests from two or more of the pool's addresses for T7), and the share of them that an
  alert of a scenario answering that tactic names (as its entity or a related one);
- alerts on genuine entities (genuine patients' and families' accounts, patients,
  addresses, devices and payers, the registration desk) per 10,000 genuine patients.

Who used which tactic, in the simulator's populations: T1 the API-bot half of the ring,
the identity farm's accounts and the speed agents (early-token bots, pollers, re-holders);
T2 the auto-clicker half; T3 the farm's accounts (made-up identities); T4 the launderer's
accounts; T5 the ring's identities (every department's hot doctor); T6 the hub payers; T7
the accounts behind the rotating proxies (a request comes from any of the pool, as the
front door logs it: ``fairslot.simulation.front_door``); T8 the family crowd's accounts;
T9 the broker's accounts (real clients' identities). With ``[history]`` they act in the
days before the release too (``fairslot.simulation.history``).

The events are what a server publishes: the services' committed events and the front
door's requests, guard decisions and booking screens.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from fairslot.bootstrap import Platform
from fairslot.config import Settings
from fairslot.domain.accounts import Account
from fairslot.monitoring.alerts import Alert
from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.publish import PlatformPublisher
from fairslot.monitoring.replay import replay
from fairslot.monitoring.scenarios import Entity, build_scenarios
from fairslot.monitoring.stream import InProcessStream
from fairslot.simulation.engine import Simulation
from fairslot.simulation.scenario import Scenario

__all__ = ["SimulationReplay", "TacticScore", "replay_simulation"]

TACTICS = ("T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9")


class _LabelledSimulation(Simulation):
    """The simulation, remembering which population each account was made for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefix_of: dict[str, str] = {}

    def _accounts(self, platform: Platform, prefix: str, count: int,
                  phones: Callable[[int], str],
                  created: Sequence[dt.datetime] | None = None) -> list[Account]:
        made = super()._accounts(platform, prefix, count, phones, created)
        for account in made:
            self.prefix_of[str(account.id)] = prefix
        return made


@dataclasses.dataclass(slots=True)
class TacticScore:
    tactic: str
    scenarios: list[str]
    acted: int
    named: int

    @property
    def recall(self) -> float | None:
        return self.named / self.acted if self.acted else None


@dataclasses.dataclass(slots=True)
class SimulationReplay:
    policy: str
    events: int
    alerts: list[Alert]
    tactics: dict[str, TacticScore]
    genuine_patients: int
    genuine_alerts: list[Alert]
    events_per_second: float
    genuine_patterns: dict[str, int] = dataclasses.field(default_factory=dict)
    """Patients served through each of the platform's patterns that look least like one
    person at home: ``desk`` (anything done for them at the window: an entry, a booking, a
    check-in), ``kiosk`` (booked or entered on a lobby kiosk's device), ``family`` (booked
    or entered by a family's account, for one of its members). All genuine in a run
    without attackers; with them, the desk's count has the patients of theirs it served."""

    @property
    def genuine_per_10k(self) -> float:
        return 10_000 * len(self.genuine_alerts) / max(1, self.genuine_patients)

    def table(self) -> str:
        lines = ["tactic | scenarios | entities that acted | named | recall", "---|---|---|---|---"]
        for score in self.tactics.values():
            recall = "—" if score.recall is None else f"{score.recall:.0%}"
            lines.append(f"{score.tactic} | {', '.join(score.scenarios)} | {score.acted} | "
                         f"{score.named} | {recall}")
        lines.append(f"\n{len(self.alerts)} alerts from {self.events} events; "
                     f"{len(self.genuine_alerts)} on genuine entities for "
                     f"{self.genuine_patients} genuine patients "
                     f"({self.genuine_per_10k:.1f} per 10,000)")
        return "\n".join(lines)


def _labels(sim: _LabelledSimulation) -> tuple[dict[str, set[Entity]], set[Entity], int]:
    """Entities per tactic, the genuine entities, and the number of genuine patients."""
    def accounts(prefix: str) -> set[Entity]:
        return {Entity("account", a) for a, p in sim.prefix_of.items() if p == prefix}

    split = int(len(sim.ring) * float(sim.sc.knob("ring", "t1_share", 0.5)))
    ring_t1 = {Entity("account", str(p.agent.account.id)) for p in sim.ring[:split]}
    ring_t2 = {Entity("account", str(p.agent.account.id)) for p in sim.ring[split:]}
    keyring = sim.platform.keyring
    labels = {
        # Issue 18's speed agents (early-token bots, leftover pollers, free re-holders) run
        # on the ring's API software too.
        "T1": ring_t1 | accounts("farm") | accounts("early") | accounts("poll")
        | accounts("rehold"),
        "T2": ring_t2,
        "T3": accounts("farm"),
        "T4": accounts("lnd"),
        "T5": {Entity("patient", str(p.patient_id)) for p in sim.ring},
        # A payer is known by the provider's id of who pays (what the platform indexes and
        # publishes), not by the credential the hub typed.
        "T6": {Entity("payer", keyring.blind_index("payer", sim.platform.payments.payer_of(h)))
               for h in sim.hubs},
        # T7: the accounts behind the rotating proxies (``_acted`` keeps those whose
        # requests did rotate); an alert naming them or their devices answers it.
        "T7": {Entity("account", str(p.agent.account.id)) for p in sim.people.values()
               if p.agent.rotate},
        "T8": accounts("crowd"),
        "T9": accounts("brk"),
    }
    genuine: set[Entity] = accounts("pt") | accounts("desk") | accounts("fam")
    families = [p for family in sim.attackers.history.families for p in family.people]
    for person in [*sim.genuine, *families]:
        genuine.add(Entity("patient", str(person.patient_id)))
        genuine.update(Entity("ip", ip) for ip in person.agent.ips)
        if person.agent.device:
            genuine.add(Entity("device", person.agent.device))
    # Their payment accounts: each patient's own, and each family's one.
    payers = [f"wechat:wx{p.patient_id}" for p in sim.genuine] + [
        f"wechat:family{i}" for i in range(len(sim.attackers.history.families))]
    genuine.update(Entity("payer", keyring.blind_index(
        "payer", sim.platform.payments.payer_of(credential))) for credential in payers)
    patients = len(sim.genuine) + len(sim.elderly) + len(families)
    return labels, genuine, patients


_ACTIONS = frozenset({"booking.created", "entry.created", "booking.paid",
                      "booking.cancelled"})
_ACTION_PATHS = ("/api/v1/bookings", "/api/v1/rounds/")
_IDENTITY_TRIES = frozenset({"patient.linked", "identity.rejected"})


def _acted(events: Sequence[MonitorEvent], rotating: set[str],
           ) -> dict[str, set[Entity]]:
    """The entities that made each tactic's move, read from the events alone:

    - ``act``: accounts and patients that asked to book, enter or pay (an access to one of
      those routes, refused or not, or the action's own event), and the payers that paid:
      what T1, T2, T4, T5, T6, T8 and T9 do. An account that only registered did not;
    - ``identity``: accounts that tried an identity (linked or refused): T3's move;
    - ``rotation``: accounts of ``rotating`` agents whose requests came from two or more
      addresses of the pool: T7's move is the rotation, the addresses are its tool."""
    act: set[Entity] = set()
    tried: set[Entity] = set()
    addresses: dict[str, set[str]] = collections.defaultdict(set)
    for e in events:
        kind = e.kind
        if kind == "access":
            if e.account is not None and e.account in rotating and e.ip is not None:
                addresses[e.account].add(e.ip)
            path = str(e.detail.get("path", ""))
            if e.account is not None and e.detail.get("method") == "POST" \
                    and path.startswith(_ACTION_PATHS):
                act.add(Entity("account", e.account))
        elif kind in _ACTIONS:
            if e.account is not None:
                act.add(Entity("account", e.account))
            if e.patient is not None and kind != "booking.cancelled":
                act.add(Entity("patient", e.patient))
            if e.payer is not None and kind == "booking.paid":
                act.add(Entity("payer", e.payer))
        elif kind in _IDENTITY_TRIES and e.account is not None:
            tried.add(Entity("account", e.account))
    rotated = {Entity("account", a) for a, ips in addresses.items() if len(ips) >= 2}
    return {"act": act, "identity": tried, "rotation": rotated}


_MOVE = {"T1": "act", "T2": "act", "T3": "identity", "T4": "act", "T5": "act", "T6": "act",
         "T7": "rotation", "T8": "act", "T9": "act"}
"""Which of ``_acted``'s sets is each tactic's move."""


def replay_simulation(scenario: Scenario, policy: str, seed: int,
                      settings: Settings) -> SimulationReplay:
    """Run the scenario with the monitor's publisher on the platform's commits, then replay
    what was published through the scenarios of ``settings`` and score it."""
    stream = InProcessStream(capacity=5_000_000)
    sim = _LabelledSimulation(scenario, policy, seed)
    sim.commit_hooks.append(PlatformPublisher(stream))
    sim.run()
    events = sorted(stream.read(5_000_000, 0.01).events, key=lambda e: e.ts)
    result = replay(events, settings)
    labels, genuine, patients = _labels(sim)
    rotating = {str(p.agent.account.id) for p in sim.people.values() if p.agent.rotate}
    acted = _acted(events, rotating)
    answering: dict[str, list[str]] = collections.defaultdict(list)
    for s in build_scenarios(settings):
        for tactic in s.tactics:
            answering[tactic].extend(s.names or (s.name,))
    named: dict[str, set[Entity]] = collections.defaultdict(set)
    for alert in result.alerts:
        for tactic in TACTICS:
            if alert.scenario in answering[tactic]:
                named[tactic].update([alert.entity, *alert.related])
    tactics = {}
    for tactic in TACTICS:
        did = labels[tactic] & acted[_MOVE[tactic]]
        tactics[tactic] = TacticScore(tactic, sorted(answering[tactic]), len(did),
                                      len(did & named[tactic]))
    genuine_alerts = [a for a in result.alerts if a.entity in genuine]
    return SimulationReplay(policy, len(events), result.alerts, tactics, patients,
                            genuine_alerts, result.events_per_second,
                            _patterns(sim, events))


def _patterns(sim: _LabelledSimulation, events: Sequence[MonitorEvent]) -> dict[str, int]:
    """Patients served at the desk, booked at a kiosk, booked by a family."""
    families = {a for a, p in sim.prefix_of.items() if p == "fam"}
    desk = str(sim.staff.id)
    seen: dict[str, set[str]] = {"desk": set(), "kiosk": set(), "family": set()}
    for e in events:
        if e.patient is None:
            continue
        if e.account == desk:  # the registration desk's account: entries, bookings,
            seen["desk"].add(e.patient)  # check-ins at the window
            continue
        if e.kind not in ("booking.created", "entry.created"):
            continue
        if e.device is not None and e.device.startswith("kiosk-"):
            seen["kiosk"].add(e.patient)
        elif e.account in families:
            seen["family"].add(e.patient)
    return {name: len(patients) for name, patients in seen.items()}

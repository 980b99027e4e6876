"""Reading a run's outcome from the database: the metrics, the timeline and the gains."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import random
import statistics
from typing import Any

import sqlalchemy as sa

from fairslot.domain import draw
from fairslot.services import release
from fairslot.simulation.metrics import (
    BUYER,
    CLIENT,
    GENUINE,
    SCALPER,
    Metrics,
    SlotOutcome,
    compute_metrics,
)
from fairslot.simulation.world import ACTIVE, Process, World
from fairslot.storage import tables as t

__all__ = ["Outcome", "RunResult"]

# Draws replayed per round to measure each entrant's chance (broker_advantage).
_CHANCE_REPLICATES = 400


@dataclasses.dataclass
class RunResult:
    policy: str
    metrics: Metrics
    timeline: list[tuple[float, dict[str, int]]]
    wall_s: float
    defences: dict[str, bool] = dataclasses.field(default_factory=dict)
    gains: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    """What the speed agents got (issue 18): early-token bots, leftover pollers, free
    re-holders, and who holds the late-scheduled clinic's slots."""

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "defences": self.defences,
                "metrics": self.metrics.as_dict(), "gains": self.gains,
                "timeline": [{"hours": round(h, 4), **c} for h, c in self.timeline],
                "wall_s": round(self.wall_s, 2)}



class Outcome(World):
    """Who holds the hot slots, sampled over time and at the end, what the speed agents
    gained, and each entrant's chance in the draw."""

    def _gains(self, end: dt.datetime) -> dict[str, dict[str, float]]:
        holders = collections.Counter(p for _, p, _ in self._bookings())
        groups = {"early_token": self.early, "poller": self.pollers,
                  "reholder": self.reholders}
        out: dict[str, dict[str, float]] = {}
        with self.platform.uow() as uow:
            for name, people in groups.items():
                if not people:
                    continue
                ids = [p.patient_id for p in people]
                rows = uow.db.execute(
                    sa.select(t.bookings.c.created_at, t.bookings.c.closed_at,
                              t.bookings.c.status, t.bookings.c.channel)
                    .where(t.bookings.c.patient_id.in_(ids),
                           t.bookings.c.session_id.in_(self.hot_sessions))).all()
                out[name] = {
                    "identities": len(people),
                    "final_slots": sum(holders[i] for i in ids),
                    "holds": len(rows),
                    "raced_in_first_second": sum(
                        1 for r in rows if (r.created_at - self.release_at).total_seconds()
                        < 1.0 and str(getattr(r.channel, "value", r.channel)) not in (
                            "draw", "waitlist")),
                    "lapsed": sum(1 for r in rows if str(getattr(
                        r.status, "value", r.status)) == "expired"),
                    "hold_hours": round(sum(((r.closed_at or end) - r.created_at)
                                            .total_seconds() for r in rows) / 3600, 2),
                    "suspended_or_quota": len(set(ids) & self.blocked)}
        if self.late_session is not None:
            late: collections.Counter[str] = collections.Counter()
            for sid, patient_id, _ in self._bookings():
                if sid == self.late_session:
                    late[self._category(patient_id)] += 1
            capacity = float(self.sc.knob("late", "capacity", 0))
            out["late_clinic"] = {"slots": capacity, **{k: float(v) for k, v in late.items()}}
        out.update(self.attackers.gains(holders))
        return out


    def sampler(self, times: list[float]) -> Process:
        for at in times:
            yield max(0.0, at - self.now_s)
            self.timeline.append((self.now_s / 3600, self._holders()))


    # -- reading the outcome -------------------------------------------------------------

    def _bookings(self) -> list[tuple[int, int, str]]:
        """(session, patient, status) of every active hot booking. A booking a squatter
        made under its victim's identity is the ring's, not the victim's: its patient is
        given as the negated id (``attackers.Attackers.squatted``)."""
        with self.platform.uow() as uow:
            rows = uow.db.execute(
                sa.select(t.bookings.c.session_id, t.bookings.c.patient_id,
                          t.bookings.c.status, t.bookings.c.account_id)
                .where(t.bookings.c.session_id.in_(self.hot_sessions),
                       t.bookings.c.status.in_(ACTIVE))).all()
        return [(int(s), -int(p) if self.attackers.squatted(a) else int(p),
                 str(getattr(st, "value", st))) for s, p, st, a in rows]

    def _category(self, patient_id: int) -> str:
        person = self.people.get(patient_id)
        return person.category if person is not None else SCALPER

    def _holders(self) -> dict[str, int]:
        counts = {GENUINE: 0, CLIENT: 0, BUYER: 0, SCALPER: 0}
        for _, patient_id, _ in self._bookings():
            counts[self._category(patient_id)] += 1
        return counts

    def _outcome(self) -> Metrics:
        slots: list[SlotOutcome] = []
        filled = 0
        for _, patient_id, status in self._bookings():
            slots.append(SlotOutcome(self._category(patient_id), patient_id, status))
            filled += 1
        slots += [SlotOutcome(None)] * (self.sc.hot_slots + self.extra_slots - filled)
        holders = {p for _, p, _ in self._bookings()}
        genuine = [p for p in self.people.values() if p.category == GENUINE]
        efforts = [p.agent.effort_s for p in genuine if p.agent.kind == GENUINE]
        n_genuine = len(self.genuine) + len(self.elderly)
        served = sum(1 for p in genuine if p.patient_id in holders)
        clients = [p for p in self.people.values() if p.category == CLIENT]
        agents = {id(p.agent): p.agent for p in genuine if p.agent.kind == GENUINE}
        chances = None
        if self.draw and self.round_of:
            chance = self.draw_chances = self._draw_chances(_CHANCE_REPLICATES)
            wanting = [p.patient_id for p in genuine] + [None] * (n_genuine - len(genuine))
            chances = (
                statistics.fmean(chance.get(p.patient_id, 0.0) for p in clients)
                if clients else 0.0,
                statistics.fmean(chance.get(p, 0.0) if p is not None else 0.0
                                 for p in wanting) if wanting else 0.0,
            )
        return compute_metrics(
            slots, genuine_patients=n_genuine, genuine_served=served,
            clients=len(self.clients), clients_served=sum(
                1 for p in clients if p.patient_id in holders),
            genuine_requests=sum(a.requests for a in agents.values()),
            genuine_refused=sum(a.refused for a in agents.values()),
            genuine_efforts=efforts, attackers=dataclasses.replace(
                self.costs, identities_burned=self.costs.identities_burned + len(self.blocked)),
            draw_chances=chances)

    def _draw_chances(self, replicates: int) -> dict[int, float]:
        """Each entrant's chance of winning a hot slot in the draw: every round's frozen
        entry list drawn again by the real draw function with ``replicates`` fresh seeds
        (from the run's seed), and the share of draws the patient won in. This measures the
        chance itself rather than one draw's luck, which over a few dozen T9 clients swings
        the realized ratio between 0.4 and 2 (docs/simulation.md)."""
        with self.platform.uow() as uow:
            frozen = []
            for round_id in sorted(set(self.round_of.values())):
                rows, entries, capacities = release.frozen_entries(uow, round_id)
                frozen.append((entries, capacities, {e.ref: int(e.patient_id) for e in rows}))
        hot = {str(s) for s in self.hot_sessions}
        seeds = random.Random(self.rng.random())
        wins: collections.Counter[int] = collections.Counter()
        for _ in range(replicates):
            won: set[int] = set()
            for entries, capacities, patient_of in frozen:
                result = draw.run_draw(seeds.randbytes(draw.SEED_BYTES), entries, capacities)
                won.update(patient_of[a.ref] for a in result.awards if a.session in hot)
            wins.update(won)
        return {patient: n / replicates for patient, n in wins.items()}

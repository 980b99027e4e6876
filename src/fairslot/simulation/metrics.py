"""The simulator's metrics, computed from what happened: the final holder of every hot slot,
the patients who wanted one, and the requests each side made. Pure arithmetic over plain
records, so the tests can check it on hand-made outcomes (definitions: docs/simulation.md)."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Mapping

__all__ = ["Costs", "Metrics", "SlotOutcome", "compute_metrics", "summary_rows"]

GENUINE = "genuine"
CLIENT = "t9_client"
BUYER = "buyer"
SCALPER = "scalper"


@dataclasses.dataclass(frozen=True)
class SlotOutcome:
    """One hot slot at the end: who held it (``None``: nobody), how they got it, and
    whether they came."""

    holder: str | None
    """``genuine``, ``t9_client`` (booked or entered by a broker), ``buyer`` (laundered to
    a scalper's customer) or ``scalper`` (a ring, farm or crowd identity)."""
    patient: int | None = None
    status: str | None = None
    """Final booking status: ``checked_in``, ``no_show``, ``paid`` or ``held``."""


@dataclasses.dataclass
class Costs:
    requests: int = 0
    pow_hashes: int = 0
    pow_cpu_s: float = 0.0
    identities_burned: int = 0


@dataclasses.dataclass(frozen=True)
class Metrics:
    hot_slots: int
    genuine_share: float
    scalper_share: float
    laundered: int
    broker_advantage: float | None
    """Under a draw: the ratio of the two groups' mean chance of winning a hot slot in the
    draw, from the frozen entry lists re-drawn with many seeds (``draw_chances``); without
    a draw (fcfs), the realized ratio."""
    broker_advantage_realized: float | None
    """The ratio of the realized rates: T9 clients holding a slot at the end over genuine
    patients holding one. With a few dozen clients this swings widely from seed to seed."""
    genuine_refused: float
    genuine_success_rate: float
    median_genuine_effort_s: float
    no_show_rate: float
    wasted_slots: int
    attacker_requests: int
    attacker_pow_cpu_s: float
    identities_burned: int
    genuine_requests: int
    held_by: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def compute_metrics(slots: Iterable[SlotOutcome], *, genuine_patients: int,
                    genuine_served: int, clients: int, clients_served: int,
                    genuine_requests: int, genuine_refused: int,
                    genuine_efforts: Iterable[float], attackers: Costs,
                    draw_chances: tuple[float, float] | None = None) -> Metrics:
    """``genuine_served`` / ``clients_served``: how many of the genuine patients (T9 clients)
    who wanted a hot slot hold one at the end; ``genuine_refused``: genuine requests the
    guard refused, out of ``genuine_requests``; ``draw_chances``: the mean chance of a T9
    client and of a genuine patient to win in the draw, when slots were drawn."""
    outcomes = list(slots)
    total = len(outcomes)
    held: dict[str, int] = {GENUINE: 0, CLIENT: 0, BUYER: 0, SCALPER: 0, "empty": 0}
    for slot in outcomes:
        held[slot.holder or "empty"] = held.get(slot.holder or "empty", 0) + 1
    attended = sum(1 for s in outcomes if s.status == "checked_in")
    no_shows = sum(1 for s in outcomes if s.status == "no_show")
    genuine_rate = _ratio(genuine_served, genuine_patients)
    client_rate = _ratio(clients_served, clients)
    realized = (client_rate / genuine_rate) if clients and genuine_rate else None
    advantage = realized
    if draw_chances is not None:
        client_chance, genuine_chance = draw_chances
        advantage = client_chance / genuine_chance if clients and genuine_chance else None
    efforts = list(genuine_efforts)
    return Metrics(
        hot_slots=total,
        genuine_share=_ratio(held[GENUINE], total - held[CLIENT]),
        scalper_share=_ratio(held[CLIENT] + held[BUYER] + held[SCALPER], total),
        laundered=held[BUYER],
        broker_advantage=advantage,
        broker_advantage_realized=realized,
        genuine_refused=_ratio(genuine_refused, genuine_requests),
        genuine_success_rate=genuine_rate,
        median_genuine_effort_s=statistics.median(efforts) if efforts else 0.0,
        no_show_rate=_ratio(no_shows, attended + no_shows),
        wasted_slots=total - attended,
        attacker_requests=attackers.requests,
        attacker_pow_cpu_s=attackers.pow_cpu_s,
        identities_burned=attackers.identities_burned,
        genuine_requests=genuine_requests,
        held_by=held,
    )


def summary_rows(results: Mapping[str, Metrics]) -> list[tuple[str, list[str]]]:
    """Rows for the terminal table: metric name, one formatted value per policy."""
    names = [f.name for f in dataclasses.fields(Metrics) if f.name != "held_by"]
    rows: list[tuple[str, list[str]]] = []
    for name in names:
        values = []
        for metrics in results.values():
            value = getattr(metrics, name)
            if value is None:
                values.append("n/a")
            elif isinstance(value, float):
                values.append(f"{value:.3f}")
            else:
                values.append(str(value))
        rows.append((name, values))
    return rows

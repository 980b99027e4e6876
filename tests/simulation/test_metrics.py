"""The metrics' arithmetic on hand-made outcomes, with exact expected values."""

from __future__ import annotations

import pytest

from fairslot.simulation.metrics import Costs, SlotOutcome, compute_metrics


def _slots() -> list[SlotOutcome]:
    return [
        SlotOutcome("genuine", 1, "checked_in"),
        SlotOutcome("genuine", 2, "checked_in"),
        SlotOutcome("genuine", 3, "no_show"),
        SlotOutcome("t9_client", 4, "checked_in"),
        SlotOutcome("buyer", 5, "checked_in"),
        SlotOutcome("scalper", 6, "no_show"),
        SlotOutcome(None),
        SlotOutcome(None),
    ]


def test_shares_exclude_broker_slots_from_the_genuine_denominator() -> None:
    m = compute_metrics(_slots(), genuine_patients=30, genuine_served=3, clients=2,
                        clients_served=1, genuine_requests=200, genuine_refused=1,
                        genuine_efforts=[10.0, 30.0, 20.0], attackers=Costs(50, 10, 0.5, 7))
    assert m.hot_slots == 8
    assert m.genuine_share == pytest.approx(3 / 7)
    assert m.scalper_share == pytest.approx(3 / 8)
    assert m.laundered == 1
    assert m.genuine_success_rate == pytest.approx(0.1)
    assert m.broker_advantage == pytest.approx(0.5 / 0.1)
    assert m.broker_advantage_realized == m.broker_advantage
    assert m.genuine_refused == pytest.approx(0.005)
    assert m.median_genuine_effort_s == 20.0
    assert m.no_show_rate == pytest.approx(2 / 6)
    assert m.wasted_slots == 4
    assert (m.attacker_requests, m.attacker_pow_cpu_s, m.identities_burned) == (50, 0.5, 7)
    assert m.held_by == {"genuine": 3, "t9_client": 1, "buyer": 1, "scalper": 1, "empty": 2}


def test_broker_advantage_is_undefined_without_clients_or_genuine_wins() -> None:
    m = compute_metrics([SlotOutcome(None)], genuine_patients=5, genuine_served=0, clients=3,
                        clients_served=1, genuine_requests=0, genuine_refused=0,
                        genuine_efforts=[], attackers=Costs())
    assert m.broker_advantage is None
    assert m.genuine_refused == 0.0
    assert m.genuine_share == 0.0


def test_under_a_draw_broker_advantage_is_the_ratio_of_the_chances() -> None:
    m = compute_metrics(_slots(), genuine_patients=30, genuine_served=3, clients=2,
                        clients_served=1, genuine_requests=200, genuine_refused=1,
                        genuine_efforts=[], attackers=Costs(), draw_chances=(0.2, 0.25))
    assert m.broker_advantage == pytest.approx(0.8)
    assert m.broker_advantage_realized == pytest.approx(0.5 / 0.1)

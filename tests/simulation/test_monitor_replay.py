"""The simulator's seeds traffic, published on commit as a server publishes it, replayed
through the monitor: recall per tactic and false alerts on genuine patients. The figures
are docs/monitoring.md's; this test fails if the monitor stops catching what it catches
now, or starts alerting on genuine patients."""

from __future__ import annotations

from fairslot.simulation.monitoring import replay_simulation
from fairslot.simulation.scenario import apply_overrides, load_scenario, parse_overrides
from tests.conftest import make_settings

# The figures were measured before issue 18's identity and desk attackers joined seeds; the
# phone farm registers one account per proxy address, which no per-address scenario names
# (docs/simulation.md), so they are left out here.
_WITHOUT_NEW_ATTACKERS = ["phonefarm.accounts=0", "variants.identities=0", "squat.victims=0",
                          "clerk.gang=0"]


def test_seeds_traffic_through_the_monitor() -> None:
    scenario = apply_overrides(load_scenario("seeds"), parse_overrides(_WITHOUT_NEW_ATTACKERS))
    result = replay_simulation(scenario, "fcfs", 1, make_settings())
    print(result.table())
    recall = {t: s.recall for t, s in result.tactics.items()}
    # Laundering (T4), the proxy address fan-out (T7) and the broker's accounts (T9): every
    # entity that acted is named by an alert of a scenario answering its tactic.
    assert recall["T4"] == 1.0 and recall["T7"] == 1.0 and recall["T9"] == 1.0
    # A payment hub (T6) that paid for the ring's holds is named.
    assert result.tactics["T6"].named >= 1
    # Some of the API bots' snipes (T1) are seen.
    assert result.tactics["T1"].named >= 1
    # No alert names a genuine patient, their account, address or device, or the desk:
    # at most 1 per 10,000 genuine patients is the target.
    assert result.genuine_alerts == []
    assert result.genuine_per_10k <= 1.0

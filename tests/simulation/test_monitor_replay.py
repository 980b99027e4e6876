"""The simulator's seeds traffic, published as a server publishes it (the services' commits
and the front door's requests, guard decisions and booking screens), replayed through the
monitor: recall per tactic and false alerts on genuine patients.

The target (issue 13) is that, for each tactic T1-T8, an alert of a scenario answering it
names every entity that used it, and at most 1 alert per 10,000 genuine patients names a
genuine one. The tactics that do not reach it yet are expected failures carrying the
figure measured (docs/monitoring.md says why for each): if one starts to pass, the strict
mark fails and the figure and the docs are due an update."""

from __future__ import annotations

import functools

import pytest

from fairslot.simulation.monitoring import SimulationReplay, replay_simulation
from fairslot.simulation.scenario import apply_overrides, load_scenario, parse_overrides
from tests.conftest import make_settings

# The nine tactics share one replay of about 70 s of CPU: one worker runs it once.
pytestmark = pytest.mark.xdist_group("monitor-replay")

# The figures were measured before issue 18's identity and desk attackers joined seeds; the
# phone farm registers one account per proxy address, which no per-address scenario names
# (docs/simulation.md), so they are left out here.
_WITHOUT_NEW_ATTACKERS = ["phonefarm.accounts=0", "variants.identities=0", "squat.victims=0",
                          "clerk.gang=0"]


@functools.cache
def _seeds() -> SimulationReplay:
    scenario = apply_overrides(load_scenario("seeds"), parse_overrides(_WITHOUT_NEW_ATTACKERS))
    result = replay_simulation(scenario, "fcfs", 1, make_settings())
    print(result.table())
    return result


def _short(tactic: str, measured: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"{tactic}: measured {measured}")


@pytest.mark.parametrize("tactic", [
    "T1",
    "T2",
    "T3",
    "T4",
    pytest.param("T5", marks=_short("T5", "47 of 50 ring identities (3 in two departments)")),
    "T6",
    "T7",
    pytest.param("T8", marks=_short("T8", "19 of 20 crowd accounts (one there once)")),
    "T9",
])
def test_every_entity_using_a_tactic_is_named_by_an_alert_answering_it(tactic: str) -> None:
    score = _seeds().tactics[tactic]
    assert score.acted > 0
    assert score.named == score.acted, f"{score.named} of {score.acted} named"


def test_genuine_patients_raise_at_most_one_alert_per_ten_thousand() -> None:
    result = _seeds()
    # No alert names a genuine patient, their account, address or device, or the desk.
    assert result.genuine_alerts == []
    assert result.genuine_per_10k <= 1.0

"""Genuine traffic only, at a scale where issue 13's false-alarm target can be read: at
most 1 alert per 10,000 genuine patients needs at least 10,000 of them.

The ``seeds`` scenario with every attacker at zero and its genuine population raised:
7,000 patients (a tenth of them elderly, at the registration desk and the window), 5 % of
the online ones booking at the lobby's two kiosks, and 1,000 families (one account for
2-5 patients, one payment account), with two weeks of past releases in which returning
patients and families booked. About 10,500 genuine patients and 96,000 events; about 60 s
of CPU, so it has a test worker of its own."""

from __future__ import annotations

import pytest

from fairslot.simulation.monitoring import replay_simulation
from fairslot.simulation.scenario import apply_overrides, load_scenario, parse_overrides
from fairslot.simulation.world import KIOSK_NETWORK
from tests.conftest import make_settings

# About 60 s of CPU on its own: slow, so that it is handed out first.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("monitor-genuine")]

GENUINE_ONLY = [
    # No attacker of any kind (issue 18's four included).
    "ring.identities=0", "t3.accounts=0", "t4.buyers=0", "t8.crowds=0", "t9.clients=0",
    "early.identities=0", "poller.identities=0", "reholder.identities=0", "late.capacity=0",
    "phonefarm.accounts=0", "variants.identities=0", "squat.victims=0", "clerk.gang=0",
    # Genuine people enough for the target, with the kiosks in use.
    "genuine.patients=7000", "history.families=1000", "genuine.kiosk_share=0.05",
]


def test_ten_thousand_genuine_patients_raise_no_alert() -> None:
    scenario = apply_overrides(load_scenario("seeds"), parse_overrides(GENUINE_ONLY))
    # The hospital declares its kiosks' network, as it must on a server.
    settings = make_settings(monitor_platform_networks=[KIOSK_NETWORK])
    result = replay_simulation(scenario, "fcfs", 1, settings)
    print(result.table(), result.genuine_patterns)
    assert result.genuine_patients >= 10_000
    assert all(score.acted == 0 for score in result.tactics.values())
    # The desk, the kiosks and the families were all there.
    assert all(count >= 50 for count in result.genuine_patterns.values()), \
        result.genuine_patterns
    # Not one alert, of any scenario (a platform-wide surge included): under 1 per 10,000.
    assert [(a.scenario, a.entity) for a in result.alerts] == []

"""The simulator over the real services: determinism, the policies' contrast and that a
defence switched off makes its metric worse (on the small ``tiny`` scenario, for time)."""

from __future__ import annotations

import pytest

from fairslot.domain.errors import InvalidInput
from fairslot.simulation.engine import RunResult, Simulation
from fairslot.simulation.scenario import apply_overrides, load_scenario, parse_overrides

_cache: dict[tuple[str, str, int], RunResult] = {}


def _run(policy: str, sets: tuple[str, ...] = (), seed: int = 3) -> RunResult:
    key = (policy, ",".join(sets), seed)
    if key not in _cache:
        sc = apply_overrides(load_scenario("tiny"), parse_overrides(list(sets)))
        _cache[key] = Simulation(sc, policy, seed).run()
    return _cache[key]


def test_same_seed_gives_the_same_result() -> None:
    sc = load_scenario("tiny")
    first = Simulation(sc, "fairslot", 3).run()
    again = _run("fairslot")
    assert first.metrics == again.metrics
    assert first.timeline == again.timeline


def test_fair_release_stops_laundering_and_gives_genuine_patients_more_slots() -> None:
    fcfs, fair = _run("fcfs"), _run("fairslot")
    assert fcfs.metrics.laundered > 0
    assert fair.metrics.laundered == 0
    assert fair.metrics.genuine_share > fcfs.metrics.genuine_share
    assert fair.metrics.genuine_refused <= 0.005


def test_switching_the_real_name_check_off_burns_no_farm_identities() -> None:
    off = _run("fairslot", ("realname=off",)).metrics
    assert off.identities_burned < _run("fairslot").metrics.identities_burned


def test_switching_credit_off_lets_past_no_showers_in_again() -> None:
    # tiny gives half the ring a recent no-show; the credit rule suspends them.
    off = _run("fairslot", ("credit=off",)).metrics
    assert off.identities_burned < _run("fairslot").metrics.identities_burned


def test_switching_the_guard_off_lets_bots_take_more_fcfs_slots() -> None:
    off = _run("fcfs", ("guard=off",)).metrics
    assert off.scalper_share > _run("fcfs").metrics.scalper_share


def test_unknown_overrides_and_scenarios_are_refused() -> None:
    with pytest.raises(InvalidInput):
        apply_overrides(load_scenario("tiny"), parse_overrides(["nonsense=1"]))
    with pytest.raises(InvalidInput):
        parse_overrides(["novalue"])
    with pytest.raises(InvalidInput):
        load_scenario("no-such-scenario.toml")

"""The simulator: the attack catalogue of problem.md as agents against the real allocation,
quota, credit and guard code, in virtual time, reporting who ends up with the slots."""

from __future__ import annotations

from fairslot.simulation.metrics import Costs, Metrics, SlotOutcome, compute_metrics
from fairslot.simulation.scenario import Scenario, apply_overrides, load_scenario

__all__ = ["Costs", "Metrics", "Scenario", "SlotOutcome", "apply_overrides",
           "compute_metrics", "load_scenario"]

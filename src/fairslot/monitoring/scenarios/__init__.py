"""The monitor's scenarios: each a named detector over sliding windows with thresholds from
settings (see docs/monitoring.md for what each means and what to do about it)."""

from fairslot.monitoring.scenarios.base import (
    ENTITY_TYPES,
    SEVERITIES,
    Entity,
    Finding,
    Platform,
    Scenario,
    severity_rank,
)
from fairslot.monitoring.scenarios.catalogue import SCENARIO_NAMES, build_scenarios
from fairslot.monitoring.scenarios.identity import Blacklist, StaticBlacklist

__all__ = [
    "ENTITY_TYPES",
    "SCENARIO_NAMES",
    "SEVERITIES",
    "Blacklist",
    "Entity",
    "Finding",
    "Platform",
    "Scenario",
    "StaticBlacklist",
    "build_scenarios",
    "severity_rank",
]

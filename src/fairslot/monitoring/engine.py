"""The detector engine: runs every scenario over a batch of events against one window store.

For a batch it asks each interested scenario for its window operations, runs them all in
one go (one loop in memory, one round trip to Redis), then lets each scenario judge its
results. Scenarios subscribe by event kind, so an access event costs only the scenarios that
read access events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.scenarios.base import Finding, Scenario
from fairslot.monitoring.windows import Op, Window, WindowStore

__all__ = ["Engine"]

Plan = Callable[[MonitorEvent, list[Op]], bool]
Judge = Callable[[MonitorEvent, Sequence[Any], int, list[Finding]], None]


class Engine:
    def __init__(self, scenarios: Sequence[Scenario], store: WindowStore) -> None:
        names = [name for sc in scenarios for name in sc.scenario_names()]
        if len(set(names)) != len(names):
            raise ValueError("two scenarios share a name")
        self.scenarios = list(scenarios)
        self.store = store
        # Bound methods, looked up once: the loop below runs for every event.
        self._by_kind: dict[str, list[tuple[Plan, Judge, int]]] = {}
        for scenario in self.scenarios:
            for kind in scenario.kinds:
                self._by_kind.setdefault(kind, []).append(
                    (scenario.plan, scenario.judge, scenario.quiet_below))
        self.events = 0

    @staticmethod
    def windows_of(scenarios: Sequence[Scenario]) -> list[Window]:
        """Every window the scenarios use, once each (for a store that must know them)."""
        seen: dict[str, Window] = {}
        for scenario in scenarios:
            for window in scenario.windows():
                known = seen.setdefault(window.name, window)
                if known != window:
                    raise ValueError(f"two different windows are named {window.name!r}")
        return list(seen.values())

    def run(self, events: Sequence[MonitorEvent]) -> list[Finding]:
        ops: list[Op] = []
        plans: list[tuple[Judge, MonitorEvent, int, int, int]] = []
        planned = plans.append
        by_kind = self._by_kind
        for event in events:
            interested = by_kind.get(event.kind)
            if not interested:
                continue
            for plan, judge, quiet_below in interested:
                start = len(ops)
                if plan(event, ops):
                    planned((judge, event, start, len(ops), quiet_below))
        results: list[Any] = self.store.run(ops) if ops else []
        findings: list[Finding] = []
        for judge, event, start, end, quiet_below in plans:
            # Most events leave every count under its threshold: skip the call then. A
            # sampled result (a tuple: its count reached the sampling point) is never quiet.
            if quiet_below and end > start:
                try:
                    if max(results[start:end]) < quiet_below:
                        continue
                except TypeError:
                    pass
            judge(event, results, start, findings)
        self.events += len(events)
        return findings

"""The monitor itself: events in, alerts, decisions and notifications out.

``Monitor.process`` handles one batch: the engine's findings are folded into sightings,
throttled, recorded as alerts, turned into decisions (stored, then handed to the decision
sink) and queued for notification. ``MonitorLoop`` reads batches from a source and
acknowledges each one only after ``process`` returned, so a batch that failed halfway (the
database was down) is read again, and a monitor killed mid-batch leaves its events to the
next one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from fairslot.clock import Clock
from fairslot.domain.errors import InvalidInput
from fairslot.monitoring.alerts import AlertChange, Throttle, coalesce
from fairslot.monitoring.decisions import (
    ACTIONS,
    LEVELS,
    Decision,
    DecisionSink,
    Response,
    check_entity,
    plan_decisions,
)
from fairslot.monitoring.engine import Engine
from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.notify import Notifications
from fairslot.monitoring.scenarios.base import Entity
from fairslot.monitoring.store import MonitorStore
from fairslot.monitoring.stream import EventSource, InProcessStream

__all__ = ["EmbeddedMonitor", "Monitor", "MonitorLoop", "Outcome", "tune_gc"]

_log = logging.getLogger("fairslot.monitoring")


def tune_gc() -> None:
    """For a process that runs a monitor with memory windows (``fairslot monitor``, replays,
    the bench): the windows hold hundreds of thousands of small long-lived objects, and with
    Python's default thresholds the cycle collector walks them every few thousand
    allocations, a third of the detector's time. Nothing in the monitor makes reference
    cycles that need prompt collection, so collections are made rarer. Not for a web
    server process, whose settings are its own."""
    gc.set_threshold(100_000, 20, 100)


@dataclasses.dataclass(slots=True)
class Outcome:
    findings: int
    changes: list[AlertChange]
    decisions: list[Decision]


class Monitor:
    def __init__(self, engine: Engine, store: MonitorStore, *, clock: Clock,
                 sink: DecisionSink, responses: Mapping[str, Sequence[Response]],
                 respond_min_severity: str = "medium",
                 notifications: Notifications | None = None,
                 update_seconds: float = 10.0,
                 false_positive_quiet: dt.timedelta = dt.timedelta(hours=72)) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self.sink = sink
        self.responses = responses
        self.respond_min_severity = respond_min_severity
        self.notifications = notifications
        self.throttle = Throttle(update_seconds)
        self.false_positive_quiet = false_positive_quiet
        self.observer: Callable[[Sequence[AlertChange], Sequence[Decision]], None] | None = \
            None
        """Told of every batch's alert changes and decisions (the server's metrics)."""

    def process(self, events: Sequence[MonitorEvent], *, now: dt.datetime | None = None,
                ) -> Outcome:
        """Detect, record, decide, notify. ``now`` (for replays) defaults to the clock."""
        findings = self.engine.run(events)
        if not findings:
            return Outcome(0, [], [])
        when = now or self.clock.now()
        sightings = coalesce(findings, self.throttle.allows)
        changes = self.store.record(sightings, when)
        self.throttle.written(sightings)
        decisions = self.store.add_decisions(
            plan_decisions(changes, self.responses, self.respond_min_severity, when))
        for decision in decisions:
            self.sink.apply(decision)
        if self.notifications is not None:
            self.notifications.notify(changes)
        if self.observer is not None:
            self.observer(changes, decisions)
        return Outcome(len(findings), changes, decisions)

    # --- by hand (the console and the CLI) ----------------------------------------------
    def set_status(self, alert_id: int, status: str, actor: str, reason: str | None,
                   ) -> AlertChange:
        alert = self.store.set_status(alert_id, status, actor, reason, self.clock.now(),
                                      self.false_positive_quiet)
        if not alert.live:
            self.throttle.forget((alert.scenario, alert.entity))
        return AlertChange(alert)

    def decide(self, action: str, entity: Entity, lifetime: dt.timedelta, actor: str,
               reason: str, param: str | None = None) -> Decision:
        """A decision made by hand (audited with who and why), enforced like the monitor's."""
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action!r}; known: {', '.join(ACTIONS)}",
                               code="invalid_action")
        if action == "raise_level" and param not in LEVELS:
            raise InvalidInput(f"raise_level needs a level: {', '.join(LEVELS)}",
                               code="invalid_action")
        if not actor.strip() or not reason.strip():
            raise InvalidInput("a decision by hand names who made it and why",
                               code="reason_required")
        check_entity(entity)
        now = self.clock.now()
        made = self.store.add_decisions([Decision(
            None, action, entity, reason, now, now + lifetime, actor,
            param if action == "raise_level" else None)])
        self.sink.apply(made[0])
        if self.observer is not None:
            self.observer([], made)
        return made[0]

    def lift(self, decision_id: int, actor: str, reason: str) -> Decision:
        decision = self.store.lift(decision_id, actor, reason, self.clock.now())
        self.sink.lift(decision)
        return decision


class MonitorLoop:
    """Reads batches from a source and processes them until stopped."""

    def __init__(self, source: EventSource, monitor: Monitor, *, batch: int = 500,
                 block_seconds: float = 1.0, retry_seconds: float = 2.0) -> None:
        self.source = source
        self.monitor = monitor
        self.batch = batch
        self.block_seconds = block_seconds
        self.retry_seconds = retry_seconds
        self.processed = 0
        self.failures = 0

    def run_once(self) -> int:
        """One batch; returns how many events it held. Raises what processing raised, with
        the batch left unacknowledged."""
        batch = self.source.read(self.batch, self.block_seconds)
        if batch.events:
            self.monitor.process(batch.events)
        self.source.ack(batch)
        self.processed += len(batch.events)
        return len(batch.ids) or len(batch.events)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as exc:
                # The database or Redis failed: the batch stays pending and is read again.
                self.failures += 1
                _log.warning("monitor batch failed (%s); retrying in %.0f s",
                             type(exc).__name__, self.retry_seconds)
                retry = getattr(self.source, "retry_own", None)
                if retry is not None:
                    retry()
                stop.wait(self.retry_seconds)


class EmbeddedMonitor:
    """The monitor on a thread of the server process, reading its in-process stream."""

    def __init__(self, stream: InProcessStream, monitor: Monitor, *, batch: int = 500) -> None:
        self.stream = stream
        self.loop = MonitorLoop(stream, monitor, batch=batch, block_seconds=0.2)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self.loop.run, args=(self._stop,),
                                            name="fairslot-monitor", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        # What was published before the stop is still processed.
        while self.stream.pending():
            self.loop.run_once()

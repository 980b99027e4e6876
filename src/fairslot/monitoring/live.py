"""Monitoring inside a server process: where its events go, and (in embedded mode) the
monitor thread that reads them.

``server_monitoring`` builds what ``fairslot serve`` runs, from ``FAIRSLOT_MONITOR_MODE``:

- ``stream`` (``auto`` with a Redis configured): the platform's committed events are
  published to the Redis stream; ``fairslot monitor`` processes read them;
- ``embedded`` (``auto`` without Redis): an in-process queue and a monitor thread with
  memory windows, alerts in the platform's database, decisions in the server's own guard;
- ``off``: nothing is published.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import redis
from sqlalchemy.engine import Engine as DbEngine

from fairslot.clock import Clock
from fairslot.config import Settings
from fairslot.guard.decisions import DecisionBook
from fairslot.monitoring.assemble import make_monitor
from fairslot.monitoring.decisions import Decision, DecisionSink, NullDecisionSink
from fairslot.monitoring.enforce import GuardDecisionSink, standalone_guard_sink
from fairslot.monitoring.publish import PlatformPublisher
from fairslot.monitoring.runner import EmbeddedMonitor, Monitor
from fairslot.monitoring.store import MonitorStore
from fairslot.monitoring.stream import (
    EventPublisher,
    InProcessStream,
    NullPublisher,
    RedisStreamPublisher,
)

__all__ = ["DecisionSync", "ServerMonitoring", "resolve_mode", "server_monitoring"]

_log = logging.getLogger("fairslot.monitoring")


def resolve_mode(settings: Settings) -> str:
    if settings.monitor_mode != "auto":
        return settings.monitor_mode
    return "stream" if (settings.monitor_redis_url or settings.redis_url) else "embedded"


class DecisionSync:
    """Embedded mode: decisions made or lifted outside the server (``fairslot monitor
    decide`` and ``lift`` in another process) reach the server's guard within a second.
    Each ``sync`` reads the decisions in force from the database, applies those the guard
    does not have yet and lifts those no longer in force."""

    def __init__(self, store: MonitorStore, sink: GuardDecisionSink, clock: Clock,
                 interval: float = 1.0) -> None:
        self.store = store
        self.sink = sink
        self.clock = clock
        self.interval = interval
        self._applied: dict[int, Decision] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> None:
        active = {d.id: d for d in self.store.decisions(active_at=self.clock.now(),
                                                         limit=100_000)
                  if d.id is not None}
        for decision_id, decision in active.items():
            if decision_id not in self._applied:
                self.sink.apply(decision)
        for decision_id, decision in self._applied.items():
            if decision_id not in active:
                self.sink.lift(decision)
        self._applied = active

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # the database is down: try again next second
                _log.warning("decisions could not be read (%s)", type(exc).__name__)

    def start(self) -> None:
        try:
            self.sync()
        except Exception as exc:  # the server starts anyway; the thread tries every second
            _log.warning("decisions could not be read at start (%s)", type(exc).__name__)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fairslot-decision-sync",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


@dataclasses.dataclass
class ServerMonitoring:
    mode: str
    publisher: PlatformPublisher
    transport: EventPublisher
    embedded: EmbeddedMonitor | None = None
    monitor: Monitor | None = None
    sink: DecisionSink | None = None
    sync: DecisionSync | None = None
    hand: Monitor | None = None
    """For the console and the API (alerts' statuses, decisions by hand): the embedded
    monitor itself, or one whose decisions go to the guard's shared book in Redis."""

    def start(self) -> None:
        if self.embedded is not None and self.monitor is not None:
            if self.sync is not None:
                # Decisions in force (made before this process started, or by hand in
                # another process) are the guard's, now and every second.
                self.sync.start()
            if self.monitor.notifications is not None:
                self.monitor.notifications.start()
            self.embedded.start()

    def stop(self) -> None:
        if self.sync is not None:
            self.sync.stop()
        if self.embedded is not None:
            self.embedded.stop()
        if self.monitor is not None and self.monitor.notifications is not None:
            self.monitor.notifications.drain(5)
            self.monitor.notifications.stop()
        if isinstance(self.transport, RedisStreamPublisher):
            self.transport.close()
        for sink in (self.sink, self.hand.sink if self.hand is not None else None):
            if isinstance(sink, GuardDecisionSink):
                sink.close()


def server_monitoring(settings: Settings, *, clock: Clock, db: DbEngine,
                      book: DecisionBook | None = None,
                      redis_client: redis.Redis[Any] | None = None) -> ServerMonitoring:
    """What one server process runs for monitoring (see the module's doc). ``book`` is the
    server's guard decision book (embedded mode enforces decisions there)."""
    mode = resolve_mode(settings)

    def by_hand() -> Monitor:
        sink = standalone_guard_sink(settings, clock)
        return make_monitor(settings, clock=clock, sink=sink or NullDecisionSink(), db=db,
                            notify=False)

    if mode == "off":
        transport: EventPublisher = NullPublisher()
        off = ServerMonitoring(mode, PlatformPublisher(transport), transport)
        off.hand = by_hand()
        return off
    if mode == "stream":
        url = settings.monitor_redis_url or settings.redis_url
        if redis_client is None:
            if not url:
                raise ValueError("FAIRSLOT_MONITOR_MODE=stream needs FAIRSLOT_REDIS_URL")
            redis_client = redis.Redis.from_url(url, socket_connect_timeout=2,
                                                socket_timeout=5)
        transport = RedisStreamPublisher(redis_client, settings.monitor_stream_key,
                                         maxlen=settings.monitor_stream_maxlen)
        return ServerMonitoring(mode, PlatformPublisher(transport), transport,
                                hand=by_hand())
    stream = InProcessStream()
    guard_sink = GuardDecisionSink(book, clock) if book is not None else None
    sink: DecisionSink = guard_sink or NullDecisionSink()
    monitor = make_monitor(settings, clock=clock, sink=sink, db=db)
    embedded = EmbeddedMonitor(stream, monitor, batch=settings.monitor_batch)
    sync = DecisionSync(monitor.store, guard_sink, clock) if guard_sink is not None else None
    return ServerMonitoring(mode, PlatformPublisher(stream), stream, embedded, monitor, sink,
                            sync, monitor)

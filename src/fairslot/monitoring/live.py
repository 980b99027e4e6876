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
from typing import Any

import redis
from sqlalchemy.engine import Engine as DbEngine

from fairslot.clock import Clock
from fairslot.config import Settings
from fairslot.guard.decisions import DecisionBook
from fairslot.monitoring.assemble import make_monitor
from fairslot.monitoring.decisions import DecisionSink, NullDecisionSink
from fairslot.monitoring.enforce import GuardDecisionSink
from fairslot.monitoring.publish import PlatformPublisher
from fairslot.monitoring.runner import EmbeddedMonitor, Monitor
from fairslot.monitoring.stream import (
    EventPublisher,
    InProcessStream,
    NullPublisher,
    RedisStreamPublisher,
)

__all__ = ["ServerMonitoring", "resolve_mode", "server_monitoring"]

_log = logging.getLogger("fairslot.monitoring")


def resolve_mode(settings: Settings) -> str:
    if settings.monitor_mode != "auto":
        return settings.monitor_mode
    return "stream" if (settings.monitor_redis_url or settings.redis_url) else "embedded"


@dataclasses.dataclass
class ServerMonitoring:
    mode: str
    publisher: PlatformPublisher
    transport: EventPublisher
    embedded: EmbeddedMonitor | None = None
    monitor: Monitor | None = None
    sink: DecisionSink | None = None

    def start(self) -> None:
        if self.embedded is not None and self.monitor is not None:
            if isinstance(self.sink, GuardDecisionSink):
                # Decisions made before this process started are the guard's again.
                now = self.monitor.clock.now()
                self.sink.reapply(self.monitor.store.decisions(active_at=now))
            if self.monitor.notifications is not None:
                self.monitor.notifications.start()
            self.embedded.start()

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
        if self.monitor is not None and self.monitor.notifications is not None:
            self.monitor.notifications.drain(5)
            self.monitor.notifications.stop()
        if isinstance(self.transport, RedisStreamPublisher):
            self.transport.close()
        if isinstance(self.sink, GuardDecisionSink):
            self.sink.close()


def server_monitoring(settings: Settings, *, clock: Clock, db: DbEngine,
                      book: DecisionBook | None = None,
                      redis_client: redis.Redis[Any] | None = None) -> ServerMonitoring:
    """What one server process runs for monitoring (see the module's doc). ``book`` is the
    server's guard decision book (embedded mode enforces decisions there)."""
    mode = resolve_mode(settings)
    if mode == "off":
        transport: EventPublisher = NullPublisher()
        return ServerMonitoring(mode, PlatformPublisher(transport), transport)
    if mode == "stream":
        url = settings.monitor_redis_url or settings.redis_url
        if redis_client is None:
            if not url:
                raise ValueError("FAIRSLOT_MONITOR_MODE=stream needs FAIRSLOT_REDIS_URL")
            redis_client = redis.Redis.from_url(url, socket_connect_timeout=2,
                                                socket_timeout=5)
        transport = RedisStreamPublisher(redis_client, settings.monitor_stream_key,
                                         maxlen=settings.monitor_stream_maxlen)
        return ServerMonitoring(mode, PlatformPublisher(transport), transport)
    stream = InProcessStream()
    sink: DecisionSink = GuardDecisionSink(book, clock) if book is not None \
        else NullDecisionSink()
    monitor = make_monitor(settings, clock=clock, sink=sink, db=db)
    embedded = EmbeddedMonitor(stream, monitor, batch=settings.monitor_batch)
    return ServerMonitoring(mode, PlatformPublisher(stream), stream, embedded, monitor, sink)

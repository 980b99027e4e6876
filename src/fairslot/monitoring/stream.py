"""The one event stream between the platform and its monitors.

Services publish events after their transaction commits (``EventPublisher.publish``); the
call only hands the events to a buffer and returns, so a request never waits for the
monitor, for Redis, or for a full queue. Two transports sit behind the same interfaces:

- **embedded** (``InProcessStream``): a bounded queue inside the server process, read by the
  monitor thread of that process;
- **production** (``RedisStreamPublisher`` and ``RedisStreamConsumer``): a Redis stream,
  ``XADD`` with ``MAXLEN ~`` so it stays bounded, read through a consumer group so several
  ``fairslot monitor`` processes share the work. Delivery is at-least-once: a monitor
  acknowledges (``XACK``) a batch only after its alerts and decisions are stored, and a
  monitor that dies leaves its unacknowledged events pending until another one takes them
  over with ``XAUTOCLAIM``. Processing an event twice changes nothing (see ``windows``).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis

from fairslot.monitoring.events import MonitorEvent, decode, encode

__all__ = [
    "Batch",
    "BufferedPublisher",
    "EventPublisher",
    "EventSource",
    "InProcessStream",
    "NullPublisher",
    "RedisStreamConsumer",
    "RedisStreamPublisher",
]

_log = logging.getLogger("fairslot.monitoring.stream")


class EventPublisher(Protocol):
    def publish(self, events: Sequence[MonitorEvent]) -> None:
        """Hand events to the stream without blocking; never raises for a transport error."""
        ...


@dataclasses.dataclass(slots=True)
class Batch:
    events: list[MonitorEvent]
    ids: list[str] = dataclasses.field(default_factory=list)
    """The transport's ids to acknowledge (stream entry ids in Redis)."""


class EventSource(Protocol):
    def read(self, count: int, block_seconds: float) -> Batch: ...

    def ack(self, batch: Batch) -> None: ...


class NullPublisher:
    """Publishes nowhere: monitoring switched off."""

    def publish(self, events: Sequence[MonitorEvent]) -> None:
        return None


class InProcessStream:
    """A bounded queue in this process: publisher and source in one. Full means the monitor
    has fallen far behind; new events are then dropped and counted rather than slowing the
    requests that publish them."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._queue: queue.Queue[MonitorEvent] = queue.Queue(maxsize=capacity)
        self.dropped = 0

    def publish(self, events: Sequence[MonitorEvent]) -> None:
        for event in events:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.dropped += 1

    def read(self, count: int, block_seconds: float) -> Batch:
        events: list[MonitorEvent] = []
        try:
            events.append(self._queue.get(timeout=block_seconds))
        except queue.Empty:
            return Batch(events)
        while len(events) < count:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return Batch(events)

    def ack(self, batch: Batch) -> None:
        return None

    def pending(self) -> int:
        return self._queue.qsize()


class BufferedPublisher:
    """Collects published events and writes them in batches from a background thread every
    ``interval`` seconds (or sooner when ``batch`` are waiting). When the writer fails
    (Redis down) the events wait, up to ``capacity``; beyond that the oldest are dropped and
    counted. One warning is logged per outage, never the events themselves."""

    def __init__(self, write: Callable[[list[MonitorEvent]], None], *, batch: int = 500,
                 interval: float = 0.05, capacity: int = 200_000,
                 autostart: bool = True) -> None:
        self._write = write
        self._autostart = autostart
        self._batch = batch
        self._interval = interval
        self._buffer: collections.deque[MonitorEvent] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.written = 0
        self.dropped = 0

    def publish(self, events: Sequence[MonitorEvent]) -> None:
        with self._lock:
            room = (self._buffer.maxlen or 0) - len(self._buffer)
            if len(events) > room:
                self.dropped += len(events) - room
            self._buffer.extend(events)
            if len(self._buffer) >= self._batch:
                self._wake.set()
        if self._thread is None and self._autostart:
            self.start()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="fairslot-monitor-publish")
                self._thread.start()

    def flush(self) -> int:
        """Write everything buffered now; returns how many were written. One flush runs at a
        time, so a caller's flush waits for the background one instead of racing it."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        done = 0
        while True:
            with self._lock:
                chunk = [self._buffer.popleft()
                         for _ in range(min(self._batch, len(self._buffer)))]
            if not chunk:
                return done
            try:
                self._write(chunk)
            except (redis.RedisError, OSError) as exc:
                with self._lock:
                    self._buffer.extendleft(reversed(chunk))
                if not self._failing:
                    self._failing = True
                    _log.warning("monitor events cannot be published (%s); buffering",
                                 type(exc).__name__)
                return done
            if self._failing:
                self._failing = False
                _log.warning("monitor events are published again")
            done += len(chunk)
            self.written += len(chunk)

    def pending(self) -> int:
        return len(self._buffer)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()
            if self._failing:
                self._stop.wait(1.0)


class RedisStreamPublisher(BufferedPublisher):
    """Publishes into the Redis stream ``key`` (one pipeline of ``XADD MAXLEN ~`` per
    batch)."""

    def __init__(self, client: redis.Redis[Any], key: str, *, maxlen: int, batch: int = 500,
                 interval: float = 0.05, capacity: int = 200_000) -> None:
        self._client = client
        self._key = key
        self._maxlen = maxlen
        super().__init__(self._xadd, batch=batch, interval=interval, capacity=capacity)

    def _xadd(self, events: list[MonitorEvent]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self._key, {"e": encode(event)}, maxlen=self._maxlen, approximate=True)
        pipe.execute()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStreamConsumer:
    """One member of the consumer group. Each ``read`` returns, in this order of priority:
    this consumer's own unacknowledged events (after a restart or a failed batch), events
    other consumers left unacknowledged for ``claim_idle_seconds`` (taken over with
    ``XAUTOCLAIM``, checked every ``claim_every`` seconds), then new events."""

    def __init__(self, client: redis.Redis[Any], key: str, group: str, consumer: str, *,
                 claim_idle_seconds: float = 30.0, claim_every: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self.key, self.group, self.consumer = key, group, consumer
        self._claim_idle_ms = int(claim_idle_seconds * 1000)
        self._claim_every = claim_every
        self._monotonic = monotonic
        self._next_claim = 0.0
        self._own_pending = True
        self.malformed = 0
        self.claimed = 0

    def ensure_group(self) -> None:
        """Create the stream and the group if missing. A new group starts at the stream's
        beginning, so events published before the first monitor started are read too."""
        try:
            self._client.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def retry_own(self) -> None:
        """The last batch failed: read this consumer's pending events again next."""
        self._own_pending = True

    def _decode(self, entries: Sequence[Any], batch: Batch) -> None:
        for entry_id, fields in entries:
            batch.ids.append(_text(entry_id))
            if not fields:  # trimmed away while pending
                continue
            raw = fields.get(b"e", fields.get("e"))
            try:
                batch.events.append(decode(raw))
            except (ValueError, TypeError):
                # A malformed entry is acknowledged with its batch and counted, never
                # retried for ever.
                self.malformed += 1

    def read(self, count: int, block_seconds: float) -> Batch:
        batch = Batch([])
        if self._own_pending:
            reply = self._client.xreadgroup(self.group, self.consumer, {self.key: "0"},
                                            count=count)
            entries = reply[0][1] if reply else []
            if len(entries) < count:
                self._own_pending = False
            if entries:
                self._decode(entries, batch)
                return batch
        now = self._monotonic()
        if now >= self._next_claim:
            self._next_claim = now + self._claim_every
            reply = self._client.xautoclaim(self.key, self.group, self.consumer,
                                            min_idle_time=self._claim_idle_ms, start_id="0-0",
                                            count=count)
            claimed = reply[1] if len(reply) > 1 else []
            if claimed:
                self.claimed += len(claimed)
                self._decode(claimed, batch)
                if len(claimed) >= count:
                    self._next_claim = 0.0  # more may be waiting
                return batch
        reply = self._client.xreadgroup(self.group, self.consumer, {self.key: ">"},
                                        count=count, block=max(1, int(block_seconds * 1000)))
        if reply:
            self._decode(reply[0][1], batch)
        return batch

    def ack(self, batch: Batch) -> None:
        if batch.ids:
            self._client.xack(self.key, self.group, *batch.ids)  # type: ignore[no-untyped-call]

    def forget_idle_consumers(self, idle_seconds: float = 3600.0) -> int:
        """Remove consumers that have nothing pending and were idle this long (monitors that
        stopped for good), so the group's list stays readable."""
        removed = 0
        for info in self._client.xinfo_consumers(  # type: ignore[no-untyped-call]
                self.key, self.group):
            name = _text(info["name"])
            if name != self.consumer and int(info["pending"]) == 0 and \
                    int(info["idle"]) >= idle_seconds * 1000:
                self._client.xgroup_delconsumer(  # type: ignore[no-untyped-call]
                    self.key, self.group, name)
                removed += 1
        return removed

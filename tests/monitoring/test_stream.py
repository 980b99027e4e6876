"""The event stream on the real Redis: publishing never blocks or raises, a consumer group
shares the events, a dead consumer's events are taken over, nothing is acknowledged before
it is processed, and monitors sharing Redis windows count together."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fairslot.clock import FixedClock
from fairslot.monitoring.assemble import make_monitor
from fairslot.monitoring.decisions import MemoryDecisionBook
from fairslot.monitoring.events import MonitorEvent, decode, encode, make_event
from fairslot.monitoring.runner import EmbeddedMonitor, MonitorLoop
from fairslot.monitoring.scenarios import Entity
from fairslot.monitoring.store import MemoryStore
from fairslot.monitoring.stream import (
    BufferedPublisher,
    InProcessStream,
    RedisStreamConsumer,
    RedisStreamPublisher,
)
from tests.monitoring.conftest import T0, ev, settings

NOW = dt.datetime.fromtimestamp(T0, dt.UTC)


def payments(n: int, payer: str = "hub") -> list[MonitorEvent]:
    return [ev("booking.paid", i, payer=payer, patient=f"p{i}", id=f"{payer}-{i}")
            for i in range(n)]


def test_an_event_survives_the_stream_unchanged() -> None:
    event = make_event("booking.created", NOW, account=42, patient=7, session=3,
                       release_at=NOW - dt.timedelta(seconds=1.25), channel="app",
                       detail={"screen_age_s": 3.5, "choices": [1, 2]})
    assert decode(encode(event)) == event
    assert event.account == "42" and event.release_ts == T0 - 1.25


def test_publishing_and_consuming_through_the_group(redis_client: redis.Redis[Any],
                                                    prefix: str) -> None:
    key = f"{prefix}events"
    publisher = RedisStreamPublisher(redis_client, key, maxlen=10_000, batch=100)
    publisher.publish(payments(250))
    publisher.close()
    consumer = RedisStreamConsumer(redis_client, key, "monitors", "m1")
    consumer.ensure_group()
    seen: list[MonitorEvent] = []
    while True:
        batch = consumer.read(100, 0.05)
        if not batch.ids:
            break
        seen += batch.events
        consumer.ack(batch)
    assert seen == payments(250)
    assert redis_client.xpending(key, "monitors")["pending"] == 0


def test_a_dead_consumers_events_are_taken_over(redis_client: redis.Redis[Any],
                                                prefix: str) -> None:
    key = f"{prefix}events"
    RedisStreamPublisher(redis_client, key, maxlen=10_000)._xadd(payments(30))
    ticks = itertools.count()
    dead = RedisStreamConsumer(redis_client, key, "g", "dead")
    dead.ensure_group()
    taken = dead.read(20, 0.05)  # delivered, never acknowledged: the monitor died
    assert len(taken.ids) == 20
    alive = RedisStreamConsumer(redis_client, key, "g", "alive", claim_idle_seconds=0.05,
                                claim_every=0, monotonic=lambda: float(next(ticks)))
    got: list[MonitorEvent] = []
    for _ in range(10):
        batch = alive.read(50, 0.05)
        got += batch.events
        alive.ack(batch)
        if len(got) >= 30:
            break
    assert sorted(e.id for e in got) == sorted(e.id for e in payments(30))
    assert alive.claimed == 20
    assert redis_client.xpending(key, "g")["pending"] == 0


def test_a_restarted_consumer_first_finishes_its_own_pending_events(
        redis_client: redis.Redis[Any], prefix: str) -> None:
    key = f"{prefix}events"
    RedisStreamPublisher(redis_client, key, maxlen=10_000)._xadd(payments(10))
    first = RedisStreamConsumer(redis_client, key, "g", "m1")
    first.ensure_group()
    unfinished = first.read(4, 0.05)
    again = RedisStreamConsumer(redis_client, key, "g", "m1")
    batch = again.read(10, 0.05)
    assert batch.ids == unfinished.ids


def test_a_malformed_entry_is_counted_and_acknowledged(redis_client: redis.Redis[Any],
                                                       prefix: str) -> None:
    key = f"{prefix}events"
    redis_client.xadd(key, {"e": "not json"})
    redis_client.xadd(key, {"e": encode(payments(1)[0])})
    consumer = RedisStreamConsumer(redis_client, key, "g", "m1")
    consumer.ensure_group()
    batch = consumer.read(10, 0.05)
    consumer.ack(batch)
    assert [e.id for e in batch.events] == ["hub-0"]
    assert consumer.malformed == 1
    assert redis_client.xpending(key, "g")["pending"] == 0


def test_a_failed_batch_is_left_pending_and_processed_again(redis_client: redis.Redis[Any],
                                                            prefix: str) -> None:
    key = f"{prefix}events"
    RedisStreamPublisher(redis_client, key, maxlen=10_000)._xadd(payments(10))
    store = MemoryStore()
    monitor = make_monitor(settings(), clock=FixedClock(NOW), sink=MemoryDecisionBook(),
                           store=store, notify=False)
    consumer = RedisStreamConsumer(redis_client, key, "g", "m1")
    consumer.ensure_group()
    real_record = store.record
    store.record = lambda *a, **k: (_ for _ in ()).throw(OSError("database down"))  # type: ignore[method-assign]
    loop = MonitorLoop(consumer, monitor, batch=50, block_seconds=0.05)
    try:
        loop.run_once()
    except OSError:
        consumer.retry_own()
    assert redis_client.xpending(key, "g")["pending"] == 10
    store.record = real_record  # type: ignore[method-assign]
    loop.run_once()
    assert redis_client.xpending(key, "g")["pending"] == 0
    assert [a.entity for a in store.alerts()] == [Entity("payer", "hub")]


def test_publishing_while_redis_is_down_buffers_and_never_raises() -> None:
    written: list[MonitorEvent] = []
    down = True

    def write(events: list[MonitorEvent]) -> None:
        if down:
            raise redis.ConnectionError("refused")
        written.extend(events)

    publisher = BufferedPublisher(write, batch=5, capacity=8, autostart=False)
    publisher.publish(payments(6))
    publisher.publish(payments(4, payer="later"))
    assert publisher.flush() == 0
    assert publisher.pending() == 8 and publisher.dropped == 2
    down = False
    assert publisher.flush() == 8
    assert [e.id for e in written] == [f"hub-{i}" for i in range(2, 6)] + \
        [f"later-{i}" for i in range(4)]
    publisher.close()


def test_an_unreachable_redis_never_fails_the_publisher() -> None:
    client: redis.Redis[Any] = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                                           retry=Retry(NoBackoff(), 0))
    publisher = RedisStreamPublisher(client, "x", maxlen=1000, interval=0.01)
    publisher.publish(payments(3))
    publisher.close()
    assert publisher.pending() == 3 and publisher.written == 0


def test_a_full_in_process_queue_drops_and_counts_instead_of_blocking() -> None:
    stream = InProcessStream(capacity=5)
    stream.publish(payments(8))
    assert stream.dropped == 3
    assert [e.id for e in stream.read(10, 0.01).events] == [f"hub-{i}" for i in range(5)]


def test_the_embedded_monitor_processes_what_the_server_published() -> None:
    stream = InProcessStream()
    store = MemoryStore()
    monitor = make_monitor(settings(), clock=FixedClock(NOW), sink=MemoryDecisionBook(),
                           store=store, notify=False)
    embedded = EmbeddedMonitor(stream, monitor)
    embedded.start()
    stream.publish(payments(10))
    embedded.stop()
    assert [a.entity for a in store.alerts()] == [Entity("payer", "hub")]


def test_monitors_sharing_redis_windows_count_each_others_events(
        redis_client: redis.Redis[Any], prefix: str) -> None:
    store = MemoryStore()
    monitors = [make_monitor(settings(monitor_redis_prefix=prefix), clock=FixedClock(NOW),
                             sink=MemoryDecisionBook(), store=store, notify=False,
                             redis_client=redis_client) for _ in range(2)]
    events = payments(10)
    # The group hands alternate events to each; neither sees ten patients on its own.
    monitors[0].process(events[0::2])
    assert store.alerts() == []
    monitors[1].process(events[1::2])
    (alert,) = store.alerts()
    assert alert.figures["patients"] == 10

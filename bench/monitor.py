"""How fast the monitor detects, and how long an event takes to become an alert.

    python bench/monitor.py [--events 300000] [--redis-url URL] [--delay-rate 2000]

1. **Detector throughput** on one process: a seeded stream shaped like a release morning
   (70 % requests, the rest registrations, identity links, booking screens, entries,
   bookings, payments, cancellations and guard refusals; 20,000 accounts, a few hundred IP
   prefixes, a handful of rings so that scenarios do fire) through every scenario. Measured
   for the engine on memory windows (embedded mode), for the whole monitor (engine,
   alerts, decisions, in-memory store), and for the engine on Redis windows (production:
   the state every monitor of the group shares). Events per second of wall clock and of
   this process's CPU, from one run each.
2. **Stream-to-alert delay**: events published at ``--delay-rate`` per second into a Redis
   stream, read by one consumer-group monitor (Redis windows, alerts in SQLite), with a
   ring's trigger event every 0.2 s; the delay is from ``publish()`` to the alert being
   stored, for every trigger. The live figure through a running server comes with the
   platform's wiring; this one is the monitor's share of it.

Figures are measured in this run; the load average is printed before and after, because the
machine is shared. The garbage collector is tuned as ``fairslot monitor`` tunes it
(``fairslot.monitoring.runner.tune_gc``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fairslot.clock import FixedClock, SystemClock  # noqa: E402
from fairslot.config import Settings  # noqa: E402
from fairslot.monitoring.assemble import make_monitor  # noqa: E402
from fairslot.monitoring.decisions import MemoryDecisionBook  # noqa: E402
from fairslot.monitoring.engine import Engine  # noqa: E402
from fairslot.monitoring.events import MonitorEvent  # noqa: E402
from fairslot.monitoring.runner import Monitor, tune_gc  # noqa: E402
from fairslot.monitoring.scenarios import Entity, build_scenarios  # noqa: E402
from fairslot.monitoring.sql_store import SqlMonitorStore  # noqa: E402
from fairslot.monitoring.store import MemoryStore  # noqa: E402
from fairslot.monitoring.stream import RedisStreamConsumer, RedisStreamPublisher  # noqa: E402
from fairslot.monitoring.windows import MemoryWindows, RedisWindows  # noqa: E402
from fairslot.storage.database import make_engine  # noqa: E402
from fairslot.storage.migrate import upgrade  # noqa: E402

SECRET = "bench-secret-0123456789abcdef-" + "x" * 24
START = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC).timestamp()


def settings(**overrides: Any) -> Settings:
    return Settings(**{"secret_key": SECRET, "database_url": "sqlite://", **overrides})


def release_morning(n: int, seed: int = 7, *, scattered: bool = False) -> list[MonitorEvent]:
    """A seeded stream over one hour, time-ordered. A genuine account's requests come from its
    home network, one in five from its carrier's; the ring accounts share five prefixes.
    With ``scattered`` every genuine request comes from any of the 400 prefixes, as this
    bench had it before 28 November: since ``ip_rotation`` counts an account's networks
    over a week, that makes nearly every genuine account a proxy rotator, an alert flood
    (the same draws from the generator either way, so the rest of the stream is the same)."""
    rng = random.Random(seed)
    accounts = [f"a{i}" for i in range(20_000)]
    prefixes = [f"{100 + i // 250}.{i % 250}.{rng.randrange(250)}" for i in range(400)]
    position = {prefix: i for i, prefix in enumerate(prefixes)}
    sessions = [f"s{i}" for i in range(300)]
    departments = [f"d{i}" for i in range(16)]
    releases = {s: START + 1800 + 600 * (i % 3) for i, s in enumerate(sessions)}
    kinds = (["access"] * 70 + ["booking.created"] * 7 + ["booking.paid"] * 6
             + ["booking.cancelled"] * 2 + ["entry.created"] * 4 + ["screen.booking"] * 5
             + ["patient.linked"] * 2 + ["account.registered"] * 1 + ["guard.deny"] * 3)
    events: list[MonitorEvent] = []
    for i in range(n):
        ts = START + 3600.0 * i / n
        kind = rng.choice(kinds)
        ring = rng.random() < 0.02
        account = f"ring{rng.randrange(12)}" if ring else rng.choice(accounts)
        patient = f"p{rng.randrange(60_000)}"
        session = rng.choice(sessions)
        drawn = rng.choice(prefixes[:5] if ring else prefixes)
        if not (ring or scattered):
            # The account's home network, or (one draw in five) its carrier's.
            home = int(account[1:])
            drawn = prefixes[home % 400 if position[drawn] % 5 else (home * 7 + 3) % 400]
        ip = f"{drawn}.{rng.randrange(1, 255)}"
        detail: dict[str, Any] = {}
        if kind == "access":
            detail = {"method": "GET", "path": "/doctors", "status": 200}
        elif kind == "booking.created":
            detail = {"screen_age_s": 1.7 if ring else 4 + 30 * rng.random()}
        elif kind == "guard.deny":
            detail = {"reason": "rate_limited", "key": "ip", "group": "booking"}
        elif kind == "patient.linked":
            detail = {"id_valid": not (ring and rng.random() < 0.5), "name_plausible": True}
        events.append(MonitorEvent(
            f"e{i}", kind, ts, account=account, patient=patient, session=session,
            department=rng.choice(departments), ip=ip, device=f"dev-{account}",
            payer=f"hub{rng.randrange(3)}" if ring else f"pay-{account}",
            channel="app", release_ts=releases[session], detail=detail))
    return events


def clock_both(work: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def throughput(events: list[MonitorEvent], redis_url: str) -> None:
    scenarios = build_scenarios(settings())
    batches = [events[i:i + 1000] for i in range(0, len(events), 1000)]
    findings = 0

    def engine_only() -> None:
        nonlocal findings
        engine = Engine(scenarios, MemoryWindows())
        for batch in batches:
            findings += len(engine.run(batch))

    wall, cpu = clock_both(engine_only)
    n = len(events)
    print(f"engine, memory windows      {n / wall:10,.0f} events/s wall  {n / cpu:10,.0f} "
          f"events/s CPU  ({findings:,} findings; target 50,000: "
          f"{n / wall / 50_000:.2f} of it)")

    store = MemoryStore()
    monitor = make_monitor(settings(), clock=FixedClock(dt.datetime.fromtimestamp(START,
                                                                                  dt.UTC)),
                           sink=MemoryDecisionBook(), store=store, notify=False)

    def whole() -> None:
        for batch in batches:
            monitor.process(batch, now=batch[-1].at)

    wall, cpu = clock_both(whole)
    print(f"whole monitor, memory       {n / wall:10,.0f} events/s wall  {n / cpu:10,.0f} "
          f"events/s CPU  ({len(store.alerts(limit=10**6))} alerts, "
          f"{len(store.decisions(limit=10**6))} decisions)")

    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    prefix = f"fairslot-bench:{uuid.uuid4().hex}:"
    try:
        shared = Engine(scenarios, RedisWindows(client, prefix, Engine.windows_of(scenarios)))
        subset = batches[: max(1, len(batches) // 3)]
        m = sum(len(b) for b in subset)

        def on_redis() -> None:
            for batch in subset:
                shared.run(batch)

        wall, cpu = clock_both(on_redis)
        print(f"engine, Redis windows       {m / wall:10,.0f} events/s wall  {m / cpu:10,.0f} "
              f"events/s CPU of this process ({m:,} events; Redis works too)")
    finally:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()


def delay(redis_url: str, rate: int, seconds: float) -> None:
    client: redis.Redis[Any] = redis.Redis.from_url(redis_url)
    prefix = f"fairslot-bench:{uuid.uuid4().hex}:"
    key = prefix + "events"
    tmp = tempfile.mkdtemp()
    db = make_engine(f"sqlite:///{tmp}/monitor.db")
    upgrade(db)
    sent: dict[str, float] = {}
    delays: list[float] = []
    store = SqlMonitorStore(db)
    monitor: Monitor = make_monitor(settings(monitor_redis_prefix=prefix,
                                             monitor_alert_update_seconds=0),
                                    clock=SystemClock(), sink=MemoryDecisionBook(),
                                    store=store, redis_client=client, notify=False)
    consumer = RedisStreamConsumer(client, key, "bench", "m1")
    consumer.ensure_group()
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            batch = consumer.read(500, 0.05)
            if batch.events:
                outcome = monitor.process(batch.events)
                done = time.perf_counter()
                for change in outcome.changes:
                    if change.opened and change.alert.entity.type == "payer":
                        origin = sent.get(change.alert.entity.id)
                        if origin is not None:
                            delays.append(done - origin)
            consumer.ack(batch)

    thread = threading.Thread(target=consume)
    thread.start()
    publisher = RedisStreamPublisher(client, key, maxlen=1_000_000, interval=0.01)
    rng = random.Random(3)
    started = time.perf_counter()
    n = trigger = 0
    next_trigger = started
    try:
        while time.perf_counter() - started < seconds:
            now = time.perf_counter()
            due = int((now - started) * rate) - n
            events = [MonitorEvent(f"b{n + i}", "access", time.time(),
                                   account=f"a{rng.randrange(50_000)}",
                                   ip=f"10.{rng.randrange(250)}.{rng.randrange(250)}.1")
                      for i in range(max(0, due))]
            n += len(events)
            if now >= next_trigger:
                # A payer's tenth patient: the event that opens its alert.
                payer = f"hub{trigger}"
                trigger += 1
                ring = [MonitorEvent(f"t{payer}-{j}", "booking.paid", time.time(), payer=payer,
                                     patient=f"{payer}-p{j}") for j in range(9)]
                publisher.publish(ring)
                sent[payer] = time.perf_counter()
                events.append(MonitorEvent(f"t{payer}-9", "booking.paid", time.time(),
                                           payer=payer, patient=f"{payer}-p9"))
                next_trigger += 0.2
            publisher.publish(events)
            time.sleep(0.005)
        deadline = time.perf_counter() + 10
        while len(delays) < trigger and time.perf_counter() < deadline:
            time.sleep(0.05)
    finally:
        publisher.close()
        stop.set()
        thread.join()
        for k in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(k)
        client.close()
        db.dispose()
    delays.sort()
    if not delays:
        print("stream-to-alert delay: no alert came back")
        return
    p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
    print(f"stream-to-alert delay at {n / seconds:,.0f} events/s: {len(delays)} of {trigger} "
          f"alerts, p50 {statistics.median(delays) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {delays[-1] * 1000:.0f} ms (target p99 < 5 s: {p99 / 5:.3f} of it)")


def platform_delay(triggers: int) -> None:
    """Embedded mode, end to end inside one process: committed event rows (written through
    ``Platform.write_events``, whose commit hooks publish them as a unit of work's do) ->
    the platform's publisher -> the in-process queue -> the monitor thread -> the alert
    stored in the platform's SQLite database. Each trigger is an account's third made-up
    identity (``bad_identities``); the delay is from the commit's return to the alert being
    readable."""
    from fairslot.bootstrap import bootstrap
    from fairslot.monitoring.live import server_monitoring

    tmp = tempfile.mkdtemp()
    url = f"sqlite:///{tmp}/platform.db"
    cfg = settings(database_url=url, monitor_mode="embedded", monitor_alert_update_seconds=0)
    platform = bootstrap(cfg, clock=SystemClock())
    upgrade(platform.engine)
    monitoring = server_monitoring(cfg, clock=platform.clock, db=platform.engine)
    platform.on_commit.append(monitoring.publisher)
    monitoring.start()
    assert monitoring.monitor is not None
    store = monitoring.monitor.store
    delays: list[float] = []
    try:
        for n in range(triggers):
            def row(j: int, n: int = n) -> dict[str, Any]:
                return {"at": dt.datetime.now(dt.UTC), "kind": "identity.rejected",
                        "account_id": 10_000 + n, "ip": f"10.9.{n % 250}.1",
                        "device_id": None, "patient_id": None, "session_id": None,
                        "booking_id": None,
                        "detail": {"reason": "invalid_id_number", "name_tried": f"n{n}-{j}"}}
            platform.write_events([row(0), row(1)])
            started = time.perf_counter()
            platform.write_events([row(2)])
            entity = Entity("account", str(10_000 + n))
            while not store.alerts(entity=entity, limit=1):
                time.sleep(0.002)
                if time.perf_counter() - started > 10:
                    break
            else:
                delays.append(time.perf_counter() - started)
            time.sleep(0.05)
    finally:
        monitoring.stop()
        platform.engine.dispose()
    if not delays:
        print("commit-to-alert delay (embedded): no alert came back")
        return
    delays.sort()
    p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
    print(f"commit-to-alert delay, embedded mode: {len(delays)} of {triggers} alerts, "
          f"p50 {statistics.median(delays) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {delays[-1] * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--redis-url", default=os.environ.get("FAIRSLOT_TEST_REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--delay-rate", type=int, default=2000)
    parser.add_argument("--delay-seconds", type=float, default=20.0)
    parser.add_argument("--platform-triggers", type=int, default=100)
    args = parser.parse_args()
    tune_gc()  # as `fairslot monitor` does
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    events = release_morning(args.events)
    throughput(events, args.redis_url)
    delay(args.redis_url, args.delay_rate, args.delay_seconds)
    platform_delay(args.platform_triggers)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

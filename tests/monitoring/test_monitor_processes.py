"""Two ``fairslot monitor run`` processes on PostgreSQL and Redis share one stream; one is
killed in the middle of a batch; the other takes its events over. Every event is
processed, and no alert is raised twice."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import redis

from fairslot.monitoring.sql_store import SqlMonitorStore
from fairslot.monitoring.stream import RedisStreamPublisher
from fairslot.storage.database import make_engine
from tests.conftest import TEST_SECRET
from tests.monitoring.conftest import ev, pg_monitor_engine

SRC = pathlib.Path(__file__).resolve().parents[2] / "src"
PAYERS = 200
PATIENTS = 10  # the payer fan-out threshold: each payer's last event opens its alert


def _start(name: str, env: dict[str, str], log: pathlib.Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fairslot.cli", "monitor", "run", "--consumer", name,
         "--batch", "20"], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _pending_of(client: redis.Redis[Any], key: str, group: str, consumer: str) -> int:
    try:
        entries = client.xpending_range(key, group, min="-", max="+", count=10_000,
                                        consumername=consumer)
    except redis.ResponseError:  # the monitors have not made the group yet
        return 0
    return len(entries)


@pytest.mark.slow
def test_a_killed_monitor_loses_nothing_and_no_alert_is_doubled(
        pg_url: str, redis_url: str, redis_client: redis.Redis[Any], prefix: str,
        tmp_path: pathlib.Path) -> None:
    engine = pg_monitor_engine(pg_url)
    key, group = f"{prefix}events", "monitors"
    env = {**os.environ, "PYTHONPATH": str(SRC), "FAIRSLOT_SECRET_KEY": TEST_SECRET,
           "FAIRSLOT_DATABASE_URL": pg_url, "FAIRSLOT_REDIS_URL": redis_url,
           "FAIRSLOT_MONITOR_STREAM_KEY": key, "FAIRSLOT_MONITOR_REDIS_PREFIX": prefix,
           "FAIRSLOT_MONITOR_GROUP": group, "FAIRSLOT_MONITOR_CLAIM_IDLE_SECONDS": "1",
           "FAIRSLOT_MONITOR_BLOCK_MS": "100", "FAIRSLOT_LOG_LEVEL": "WARNING"}
    # Interleaved, so that every payer's events are spread over the whole stream.
    events = [ev("booking.paid", n * PAYERS + p, payer=f"payer{p}", patient=f"p{p}-{n}",
                 id=f"pay-{p}-{n}") for n in range(PATIENTS) for p in range(PAYERS)]
    RedisStreamPublisher(redis_client, key, maxlen=100_000)._xadd(events)
    logs = {name: tmp_path / f"{name}.log" for name in ("doomed", "survivor")}
    # The survivor starts once the doomed monitor is frozen: started together on a loaded
    # machine, the survivor could drain the whole stream before the other had imported.
    doomed = _start("doomed", env, logs["doomed"])
    survivor: subprocess.Popen[bytes] | None = None
    try:
        # Freeze the doomed monitor while it holds an unacknowledged batch, then kill it.
        deadline = time.monotonic() + 60
        while True:
            assert doomed.poll() is None, logs["doomed"].read_text()
            if _pending_of(redis_client, key, group, "doomed") > 0:
                doomed.send_signal(signal.SIGSTOP)
                held = _pending_of(redis_client, key, group, "doomed")
                if held > 0:
                    break
                doomed.send_signal(signal.SIGCONT)
            assert time.monotonic() < deadline, "the doomed monitor never held a batch"
            time.sleep(0.01)
        survivor = _start("survivor", env, logs["survivor"])
        doomed.kill()
        doomed.wait(10)
        # The survivor finishes the stream, the doomed monitor's batch included.
        deadline = time.monotonic() + 120
        while True:
            info = {g["name"].decode(): g for g in redis_client.xinfo_groups(key)}[group]
            if info["lag"] == 0 and info["pending"] == 0:
                break
            assert survivor.poll() is None, logs["survivor"].read_text()
            assert time.monotonic() < deadline, f"stream not drained: {info}"
            time.sleep(0.2)
    finally:
        for process in (doomed, survivor):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
        engine.dispose()
    assert held > 0
    output = logs["survivor"].read_text()
    taken = re.search(r"(\d+) taken over from other monitors", output)
    assert taken is not None and int(taken.group(1)) >= held, output
    store = SqlMonitorStore(make_engine(pg_url))
    alerts = store.alerts(statuses=None, limit=10_000)
    assert len(alerts) == PAYERS
    assert {a.entity.id for a in alerts} == {f"payer{p}" for p in range(PAYERS)}
    assert {a.scenario for a in alerts} == {"payer_fanout"}
    assert all(a.figures["patients"] == PATIENTS for a in alerts)
    store.engine.dispose()

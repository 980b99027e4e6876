"""Booking throughput against /healthz on the same server: PostgreSQL, 4 uvicorn workers,
Redis for the request guard.

Prints requests per second of each, measured in one run, and their ratio. Every booking is
a real one (a distinct patient, a free slot, a committed row), so the ratio says what the
booking path costs over the bare framework on this machine."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time

from pydantic import SecretStr

from _server import (
    SECRET,
    Connection,
    add_patients,
    examples,
    fresh_database,
    lifted_limits,
    load,
    measure,
    report,
    server,
)
from fairslot.bootstrap import bootstrap
from fairslot.clock import FixedClock
from fairslot.config import Settings
from fairslot.domain.schedule import Period
from fairslot.services import accounts, catalog


def prepare(url: str, patients: int) -> tuple[list[str], list[dict[str, int]]]:
    now = dt.datetime.now(dt.UTC)
    platform = bootstrap(Settings(database_url=url, secret_key=SecretStr(SECRET)),
                         clock=FixedClock(now))
    hospital = platform.run(catalog.create_hospital, "BENCH", "Bench Hospital")
    department = platform.run(catalog.create_department, hospital.id or 0, "GEN", "General")
    doctor = platform.run(catalog.create_doctor, department.id or 0, "王伟", "主任医师", "general")
    today = now.astimezone(platform.settings.zone).date()
    sessions = platform.run(catalog.schedule_sessions, doctor.id or 0,
                            [today + dt.timedelta(days=d) for d in range(1, 16)],
                            [Period.MORNING, Period.AFTERNOON], 200, 5000,
                            release_days_before=16)
    ids = add_patients(platform, patients, now)
    tokens = [platform.run(accounts.issue_token, a) for a, _ in ids]
    bodies = [{"session_id": sessions[n % len(sessions)].id or 0, "patient_id": p}
              for n, (_, p) in enumerate(ids)]
    platform.engine.dispose()
    return tokens, bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--redis-url", default=os.environ.get(
        "FAIRSLOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    url = fresh_database("fairslot_bench_booking")
    tokens, bodies = prepare(url, args.requests)
    # Production shape: the guard keeps its state in Redis.
    env = {"FAIRSLOT_DATABASE_URL": url, "FAIRSLOT_SECRET_KEY": SECRET,
           "FAIRSLOT_SCHEDULER": "false", "FAIRSLOT_REDIS_URL": args.redis_url,
           "FAIRSLOT_GUARD_REDIS_PREFIX": f"fairslot-bench:{os.getpid()}:",
           "FAIRSLOT_GUARD_LEDGER_PATH": "",
           "FAIRSLOT_GUARD_LIMITS": lifted_limits("booking", "screens")}
    with server(env, workers=args.workers) as base:
        async def health_request(conn: Connection, n: int) -> tuple[int, bytes]:
            return await conn.request("GET", "/healthz")

        tokens_of: list[dict[str, str]] = [{}] * len(tokens)

        async def screen(conn: Connection, n: int) -> tuple[int, bytes]:
            status, body = await conn.request(
                "GET", f"/api/v1/sessions/{bodies[n]['session_id']}/booking-screen",
                headers={"Authorization": f"Bearer {tokens[n]}"})
            if status == 200:
                parsed = json.loads(body)
                tokens_of[n] = {parsed["token_header"]: parsed["action_token"]}
            return status, body

        async def booking(conn: Connection, n: int) -> tuple[int, bytes]:
            return await conn.request("POST", "/api/v1/bookings", json.dumps(bodies[n]).encode(),
                                      {"Authorization": f"Bearer {tokens[n]}", **tokens_of[n]})

        load(base, 300, args.concurrency, health_request)  # warm-up
        health = measure(base, args.requests, args.concurrency, health_request)
        # The screens issue the single-use action tokens; a patient spends at least the
        # tokens' minimum age on the screen before confirming.
        screens = measure(base, args.requests, args.concurrency, screen)
        time.sleep(2)
        action = measure(base, args.requests, args.concurrency, booking)
    print(f"server: {args.workers} uvicorn workers, PostgreSQL; client: {args.concurrency} "
          f"concurrent connections, {args.requests} requests each; CPU: the server's "
          f"processes and the database's backends")
    print(health.line("GET /healthz"))
    print(screens.line("GET booking-screen"))
    print(action.line("POST /bookings"))
    for status, body in examples.items():
        print(f"  e.g. {status}: {body}")
    report(health, action, "booking")


if __name__ == "__main__":
    main()

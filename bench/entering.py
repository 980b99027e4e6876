"""Entering an open round at its window's peak, against /healthz on the same server:
PostgreSQL, 4 uvicorn workers, Redis for the request guard.

Under the draw policy a hot release is no longer a race for slots but a burst of entries into
one open round: every patient opens the entry screen (which issues the single-use action
token), waits the token's minimum age, then enters with up to three sessions, best first.
Prints requests per second of each, measured in one run, and the ratio entries / healthz.
Every entry is a real one: a distinct patient, a committed row counted against the quotas."""

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
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import accounts, catalog
from fairslot.services.release import rounds


def prepare(url: str, patients: int) -> tuple[int, list[str], list[dict[str, object]]]:
    """One department of five draw-policy doctors whose sessions release in two hours, so
    one round is open now; ``patients`` patients ready to enter it."""
    now = dt.datetime.now(dt.UTC)
    platform = bootstrap(Settings(database_url=url, secret_key=SecretStr(SECRET)),
                         clock=FixedClock(now))
    release = (now + dt.timedelta(hours=2)).astimezone(platform.settings.zone)
    hospital = platform.run(catalog.create_hospital, "BENCH", "Bench Hospital")
    department = platform.run(catalog.create_department, hospital.id or 0, "GEN", "General")
    sessions = []
    for n in range(5):
        doctor = platform.run(catalog.create_doctor, department.id or 0, f"医生{n}", "主任医师",
                              "general", release_policy=ReleasePolicy.DRAW, hot=True)
        sessions += platform.run(catalog.schedule_sessions, doctor.id or 0,
                                 [release.date() + dt.timedelta(days=1)],
                                 [Period.MORNING, Period.AFTERNOON], 30, 5000,
                                 release_days_before=1,
                                 release_time=release.time().replace(microsecond=0))
    platform.run_job(rounds.open_due_rounds)
    opened = platform.run(rounds.open_rounds)
    if len(opened) != 1:
        raise SystemExit(f"expected one open round, found {len(opened)}")
    round_id = opened[0].id
    ids = add_patients(platform, patients, now)
    tokens = [platform.run(accounts.issue_token, a) for a, _ in ids]
    bodies: list[dict[str, object]] = [
        {"patient_id": p, "choices": [sessions[(n + k) % len(sessions)].id or 0
                                      for k in range(3)]}
        for n, (_, p) in enumerate(ids)]
    platform.engine.dispose()
    return round_id, tokens, bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--redis-url", default=os.environ.get(
        "FAIRSLOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    url = fresh_database("fairslot_bench_entering")
    round_id, tokens, bodies = prepare(url, args.requests)
    env = {"FAIRSLOT_DATABASE_URL": url, "FAIRSLOT_SECRET_KEY": SECRET,
           "FAIRSLOT_SCHEDULER": "false", "FAIRSLOT_REDIS_URL": args.redis_url,
           "FAIRSLOT_GUARD_REDIS_PREFIX": f"fairslot-bench:{os.getpid()}:",
           "FAIRSLOT_GUARD_LEDGER_PATH": "",
           "FAIRSLOT_GUARD_LIMITS": lifted_limits("entering", "screens")}
    with server(env, workers=args.workers) as base:
        async def health_request(conn: Connection, n: int) -> tuple[int, bytes]:
            return await conn.request("GET", "/healthz")

        tokens_of: list[dict[str, str]] = [{}] * len(tokens)

        async def screen(conn: Connection, n: int) -> tuple[int, bytes]:
            status, body = await conn.request(
                "GET", f"/api/v1/rounds/{round_id}/entry-screen",
                headers={"Authorization": f"Bearer {tokens[n]}"})
            if status == 200:
                parsed = json.loads(body)
                tokens_of[n] = {parsed["token_header"]: parsed["action_token"]}
            return status, body

        async def enter(conn: Connection, n: int) -> tuple[int, bytes]:
            return await conn.request("POST", f"/api/v1/rounds/{round_id}/entries",
                                      json.dumps(bodies[n]).encode(),
                                      {"Authorization": f"Bearer {tokens[n]}", **tokens_of[n]})

        load(base, 300, args.concurrency, health_request)  # warm-up
        health = measure(base, args.requests, args.concurrency, health_request)
        # The screens issue the single-use action tokens; a patient spends at least the
        # tokens' minimum age on the screen before confirming.
        screens = measure(base, args.requests, args.concurrency, screen)
        time.sleep(2)
        action = measure(base, args.requests, args.concurrency, enter)
    print(f"server: {args.workers} uvicorn workers, PostgreSQL; client: {args.concurrency} "
          f"concurrent connections, {args.requests} requests each; CPU: the server's "
          f"processes and the database's backends")
    print(health.line("GET /healthz"))
    print(screens.line("GET entry-screen"))
    print(action.line("POST entries"))
    for status, body in examples.items():
        print(f"  e.g. {status}: {body}")
    report(health, action, "entries")


if __name__ == "__main__":
    main()

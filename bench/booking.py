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
import random
import time

from pydantic import SecretStr

from _server import SECRET, Connection, examples, fresh_database, load, server
from fairslot.bootstrap import bootstrap
from fairslot.clock import FixedClock
from fairslot.config import Settings
from fairslot.domain.accounts import Account, Patient, Role
from fairslot.domain.residents import make_residents
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
    people = make_residents(random.Random(1), patients)
    password_hash = platform.deps.hasher.hash("bench password")
    ids: list[tuple[int, int]] = []
    with platform.uow() as uow:
        for n, identity in enumerate(people):
            account = Account(username=f"bench{n:05d}", role=Role.PATIENT,
                              password_hash=password_hash, phone=None, created_at=now)
            patient = Patient(id_number=identity.id_number, name=identity.name, phone=None,
                              verified_at=now, created_at=now)
            uow.accounts.add(account)
            uow.patients.add(patient)
            uow.flush()
            uow.patients.link(account.id or 0, patient.id or 0, now)
            ids.append((account.id or 0, patient.id or 0))
        uow.commit()
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
    # Production shape: the guard keeps its state in Redis. Every request comes from the one
    # loopback address, so the per-IP booking limits are lifted; the per-account, device and
    # patient limits, the action tokens and the one-in-flight cap all stay on.
    env = {"FAIRSLOT_DATABASE_URL": url, "FAIRSLOT_SECRET_KEY": SECRET,
           "FAIRSLOT_SCHEDULER": "false", "FAIRSLOT_REDIS_URL": args.redis_url,
           "FAIRSLOT_GUARD_REDIS_PREFIX": f"fairslot-bench:{os.getpid()}:",
           "FAIRSLOT_GUARD_LEDGER_PATH": "",
           # The bench client sends no device cookie: device limits lifted like the IP ones.
           "FAIRSLOT_GUARD_LIMITS": '{"booking": {"ip": "none", "prefix": "none", "device": '
                                    '"none"}, "screens": {"ip": "none", "prefix": "none", '
                                    '"device": "none"}}'}
    with server(env, workers=args.workers) as base:
        async def health(conn: Connection, n: int) -> tuple[int, bytes]:
            return await conn.request("GET", "/healthz")

        action: list[dict[str, str]] = [{}] * len(tokens)

        async def screen(conn: Connection, n: int) -> tuple[int, bytes]:
            status, body = await conn.request(
                "GET", f"/api/v1/sessions/{bodies[n]['session_id']}/booking-screen",
                headers={"Authorization": f"Bearer {tokens[n]}"})
            if status == 200:
                parsed = json.loads(body)
                action[n] = {parsed["token_header"]: parsed["action_token"]}
            return status, body

        async def booking(conn: Connection, n: int) -> tuple[int, bytes]:
            return await conn.request("POST", "/api/v1/bookings", json.dumps(bodies[n]).encode(),
                                      {"Authorization": f"Bearer {tokens[n]}", **action[n]})

        load(base, 300, args.concurrency, health)  # warm-up
        health_rps, health_codes = load(base, args.requests, args.concurrency, health)
        # The booking screens issue the single-use action tokens; a patient spends at least
        # the tokens' minimum age on the screen before confirming.
        screen_rps, screen_codes = load(base, args.requests, args.concurrency, screen)
        time.sleep(2)
        booking_rps, booking_codes = load(base, args.requests, args.concurrency, booking)
    print(f"server: {args.workers} uvicorn workers, PostgreSQL; client: {args.concurrency} "
          f"concurrent connections, {args.requests} requests each")
    print(f"/healthz          {health_rps:8.0f} req/s   statuses {health_codes}")
    print(f"GET booking-screen {screen_rps:7.0f} req/s   statuses {screen_codes}")
    print(f"POST /bookings    {booking_rps:8.0f} req/s   statuses {booking_codes}")
    for status, body in examples.items():
        print(f"  e.g. {status}: {body}")
    print(f"ratio booking/healthz = {booking_rps / health_rps:.3f}")


if __name__ == "__main__":
    main()

"""Booking throughput against /healthz on the same server: PostgreSQL, 4 uvicorn workers,
Redis for the request guard.

Prints requests per second of each, measured in one run, and their ratio, overall and for
each pair of phases (``/healthz`` measured just before each group of bookings; ``--pairs``)
with the pairs' median. Every booking is a real one (a distinct patient, a free slot, a
committed row), so the ratio says what the booking path costs over the bare framework on
this machine."""

from __future__ import annotations

import datetime as dt
import json

from pydantic import SecretStr

from _server import (
    FLOOR_APP,
    SECRET,
    add_patients,
    arguments,
    fresh_database,
    production_env,
    screen_then_act,
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
    args = arguments(__doc__)
    url = fresh_database("fairslot_bench_booking")
    tokens, bodies = prepare(url, args.requests)
    with server(production_env(args, url, "booking", "screens"),
                workers=args.workers, app=FLOOR_APP) as base:
        screen_then_act(
            base, args,
            lambda n: f"/api/v1/sessions/{bodies[n]['session_id']}/booking-screen",
            lambda n: ("POST", "/api/v1/bookings", json.dumps(bodies[n]).encode()),
            tokens, ("GET booking-screen", "POST /bookings", "booking"))


if __name__ == "__main__":
    main()

"""Entering an open round at its window's peak, against /healthz on the same server:
PostgreSQL, 4 uvicorn workers, Redis for the request guard.

Under the draw policy a hot release is no longer a race for slots but a burst of entries into
one open round: every patient opens the entry screen (which issues the single-use action
token), waits the token's minimum age, then enters with up to three sessions, best first.
Prints requests per second of each, measured in one run, and the ratio entries / healthz,
overall and for each pair of phases (``--pairs``) with the pairs' median.
Every entry is a real one: a distinct patient, a committed row counted against the quotas."""

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
    args = arguments(__doc__)
    url = fresh_database("fairslot_bench_entering")
    round_id, tokens, bodies = prepare(url, args.requests)
    with server(production_env(args, url, "entering", "screens"),
                workers=args.workers, app=FLOOR_APP) as base:
        screen_then_act(
            base, args, lambda n: f"/api/v1/rounds/{round_id}/entry-screen",
            lambda n: ("POST", f"/api/v1/rounds/{round_id}/entries",
                       json.dumps(bodies[n]).encode()),
            tokens, ("GET entry-screen", "POST entries", "entries"))


if __name__ == "__main__":
    main()

"""Jobs that run on the clock: mark the fcfs doctors people race for, open and draw rounds,
expire unpaid holds, record no-shows, and retry calls to the outside world still pending.
Any worker may run them; on PostgreSQL an advisory lock lets one at a time do so, and each
job is idempotent, so a crash mid-way is repaired by the next run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa

from fairslot.bootstrap import Platform
from fairslot.services import booking, outbox, release
from fairslot.services.deps import Deps, Units

__all__ = ["JOBS", "Scheduler", "run_due_jobs"]

log = logging.getLogger("fairslot.scheduler")
_LOCK_KEY = 0x66A1_5107  # "fairslot" scheduler's advisory lock id
JOBS: list[tuple[str, Callable[[Units, Deps], int]]] = [
    ("propose_draw_policy", release.propose_draw_policy),
    ("open_due_rounds", release.open_due_rounds),
    ("draw_due_rounds", release.draw_due_rounds),
    ("expire_overdue", booking.expire_overdue),
    ("record_no_shows", booking.record_no_shows),
    ("outbox", outbox.run_due),
]


def run_due_jobs(platform: Platform) -> dict[str, int] | None:
    """Run every job once; None when another worker holds the scheduler lock."""
    if platform.dialect != "postgresql":
        return {name: platform.run_job(job) for name, job in JOBS}
    with platform.engine.connect() as conn:
        if not conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}):
            return None
        try:
            return {name: platform.run_job(job) for name, job in JOBS}
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            conn.commit()


class Scheduler:
    """A daemon thread that runs the jobs every ``interval`` seconds until stopped."""

    def __init__(self, platform: Platform, interval: float = 5.0) -> None:
        self._platform = platform
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fairslot-scheduler",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                done = run_due_jobs(self._platform)
            except Exception:  # keep the scheduler alive; the next tick retries
                log.exception("scheduled jobs failed")
                continue
            if done and any(done.values()):
                log.info("scheduled jobs: %s", done)

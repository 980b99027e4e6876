"""Jobs that run on the clock: mark the fcfs doctors people race for, open and draw rounds,
expire unpaid holds, record no-shows, and retry calls to the outside world still pending.
Any worker may run them; on PostgreSQL an advisory lock lets one at a time do so, and each
job is idempotent, so a crash mid-way is repaired by the next run."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

import sqlalchemy as sa

from fairslot.bootstrap import Platform
from fairslot.logsafe import describe
from fairslot.services.jobs import JOBS
from fairslot.storage.database import lock_engine

__all__ = ["JOBS", "ConsortiumLoop", "Scheduler", "run_due_jobs"]

log = logging.getLogger("fairslot.scheduler")
_LOCK_KEY = 0x66A1_5107  # "fairslot" scheduler's advisory lock id
_SYNC_LOCK_KEY = 0x66A1_5108  # one worker at a time pulls the consortium's feeds


@contextlib.contextmanager
def _advisory_lock(platform: Platform, key: int) -> Iterator[bool]:
    """Hold PostgreSQL's session advisory lock ``key`` while the block runs, if no other
    worker holds it: yields whether this one does. The lock is held on a connection of its
    own, outside the requests' pool (``lock_engine``): on a pooled one, the work under it
    waited for a second pooled connection, with a pool of one for ever."""
    with lock_engine(platform.engine).connect() as conn:
        if not conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}):
            yield False
            return
        try:
            yield True
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


def run_due_jobs(platform: Platform) -> dict[str, int] | None:
    """Run every job once; None when another worker holds the scheduler lock."""
    if platform.dialect != "postgresql":
        return {name: platform.run_job(job) for name, job in JOBS}
    with _advisory_lock(platform, _LOCK_KEY) as held:
        return {name: platform.run_job(job) for name, job in JOBS} if held else None


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
            except Exception as exc:  # keep the scheduler alive; the next tick retries
                log.error("scheduled jobs failed: %s", describe(exc))
                continue
            if done and any(done.values()):
                log.info("scheduled jobs: %s", done)


class ConsortiumLoop:
    """Keeps a server's shared list current (docs/consortium.md): every
    ``consortium_sync_seconds`` (the feed interval) one worker pulls the other members'
    feeds and delivers pending appeals; every worker applies what was stored since to its
    in-memory list. With the interval at 0 only the refresh runs (a cron job syncs)."""

    def __init__(self, platform: Platform) -> None:
        assert platform.consortium is not None
        self._platform = platform
        self._consortium = platform.consortium
        s = platform.settings
        self._sync = s.consortium_sync_seconds
        self._interval = self._sync if self._sync > 0 else s.consortium_refresh_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fairslot-consortium",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def tick(self) -> None:
        c = self._consortium
        if self._sync > 0 and c.member_code() is not None and c.store.members():
            if not self._with_lock(c.sync):
                c.refresh()
        else:
            c.refresh()

    def _with_lock(self, fn: Callable[[], object]) -> bool:
        if self._platform.dialect != "postgresql":
            fn()
            return True
        with _advisory_lock(self._platform, _SYNC_LOCK_KEY) as held:
            if held:
                fn()
            return held

    def _loop(self) -> None:
        # The list itself is read at the server's start (``web.app``), before any request;
        # if that failed, the first tick's refresh reads it.
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except Exception:  # keep the loop alive; the next tick retries
                log.exception("consortium sync failed")

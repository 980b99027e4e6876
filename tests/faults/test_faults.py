"""Faults survived, nothing lost. Each test starts and kills its own processes: a draw
worker killed in the middle of its transaction, a Redis of the test's own stopped during a
release and started again, a disk that fills while records are exported. The machine's
shared PostgreSQL and Redis are never stopped."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.domain.accounts import Account
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.guard.policy import KeyKind, RouteGroup
from fairslot.services import catalog, release
from fairslot.services.context import RequestContext
from fairslot.storage import tables as t
from fairslot.web.app import create_app
from tests.conftest import TEST_SECRET, World, build_world, make_settings
from tests.guard.test_redis_down import PrivateRedis

ROOT = pathlib.Path(__file__).resolve().parents[2]
POSTGRES = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
CTX = RequestContext(ip="203.0.113.50")


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
            "FAIRSLOT_SECRET_KEY": TEST_SECRET, "FAIRSLOT_SCHEDULER": "false",
            "FAIRSLOT_GUARD_LEDGER_PATH": "", **extra}


# -- a draw worker killed in the middle of the draw --------------------------------------


def _draw_round_with_entries(platform: Platform, clock: FixedClock) -> tuple[int, int]:
    """A draw round of two sessions (capacity 2 each), ten entrants, its window closed, its
    entry list frozen and the clock at its beacon round's time: the next draw writes winners."""
    world = build_world(platform, residents=30)
    doctor = platform.run(catalog.create_doctor, world.department_id, "张华", "主任医师", "心衰",
                          release_policy=ReleasePolicy.DRAW, hot=True)
    today = clock.now().astimezone(platform.settings.zone).date()
    sessions = platform.run(catalog.schedule_sessions, doctor.id or 0,
                            [today + dt.timedelta(days=2)], [Period.MORNING, Period.AFTERNOON],
                            2, 30000, release_days_before=1)
    assert platform.run_job(release.open_due_rounds) == 1
    with platform.uow() as uow:
        round_id = uow.rounds.round_of_session(sessions[0].id or 0)
    assert round_id is not None
    ids = [s.id or 0 for s in sessions]
    for n in range(10):
        account: Account
        account, (pid,), _ = world.patient_account(f"entrant{n:02d}")
        platform.run(release.enter, account, round_id, pid, ids if n % 2 else ids[::-1], CTX)
    view = platform.run(release.round_view, round_id)
    clock.set(view.round.closes_at)
    assert platform.run(release.freeze_round, round_id)
    due = platform.run(release.round_view, round_id).stage.beacon_due_at
    assert due is not None
    clock.set(due)
    return round_id, 4


def _draw_keys(platform: Platform) -> dict[str, str]:
    """The platform's draw signing key and local chain key, for a worker process that must
    sign the same round's result and fetch the same chain's beacon."""
    settings = platform.settings
    assert settings.draw_signing_key is not None and settings.draw_local_chain_key is not None
    return {"FAIRSLOT_DRAW_SIGNING_KEY": settings.draw_signing_key.get_secret_value(),
            "FAIRSLOT_DRAW_LOCAL_CHAIN_KEY": settings.draw_local_chain_key.get_secret_value(),
            "FAIRSLOT_DRAW_CHAIN": settings.draw_chain,
            "FAIRSLOT_DRAW_LOCAL_CHAIN_GENESIS": str(settings.draw_local_chain_genesis)}


DRAW_WORKER = textwrap.dedent("""
    import datetime as dt, sys
    from fairslot.bootstrap import bootstrap
    from fairslot.clock import FixedClock
    from fairslot.config import Settings
    from fairslot.services import release
    platform = bootstrap(Settings(database_url=sys.argv[1], password_hash_time_cost=1,
                                  password_hash_memory_kib=32),
                         clock=FixedClock(dt.datetime.fromisoformat(sys.argv[2])))
    print("drew", platform.run_job(release.draw_due_rounds), flush=True)
""")


def _state(engine: sa.Engine, round_id: int) -> tuple[str, int, int]:
    with engine.connect() as conn:
        status = conn.scalar(sa.select(t.release_rounds.c.status)
                             .where(t.release_rounds.c.id == round_id))
        bookings = conn.scalar(sa.select(sa.func.count()).select_from(t.bookings))
        decided = conn.scalar(sa.select(sa.func.count()).select_from(t.entries)
                              .where(t.entries.c.outcome.is_not(None)))
    return str(status), int(bookings or 0), int(decided or 0)


def _signed(platform: Platform, round_id: int) -> set[str]:
    """The kinds of signed statement the round has (opening, freeze, result, results)."""
    with platform.uow() as uow:
        return set(uow.draw.statements(round_id))


@POSTGRES
def test_a_draw_worker_killed_mid_draw_leaves_nothing_and_the_draw_runs_once_on_restart(
        platform: Platform, clock: FixedClock, tmp_path: pathlib.Path) -> None:
    round_id, capacity = _draw_round_with_entries(platform, clock)
    engine = platform.engine
    url = engine.url.render_as_string(hide_password=False)
    script = tmp_path / "draw_worker.py"
    script.write_text(DRAW_WORKER)
    # Hold the bookings table so that the worker, once it has locked the round, decided the
    # entries and begun writing its winners' bookings, waits in the middle of its
    # transaction; then kill it there (SIGKILL: no clean-up of its own).
    blocker = engine.connect()
    blocker.execute(sa.text("LOCK TABLE bookings IN SHARE MODE"))
    worker = subprocess.Popen([sys.executable, str(script), url, clock.now().isoformat()],
                              env=child_env(**_draw_keys(platform)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        waiting = _wait_for_lock_wait(engine, worker)
        assert waiting, "the draw worker never reached the bookings"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
        blocker.rollback()
        blocker.close()
    _wait_until_gone(engine, waiting)
    # All or nothing: the killed draw wrote nothing (no winner, no signed result).
    assert _state(engine, round_id) == ("open", 0, 0)
    assert _signed(platform, round_id) == {"opening", "freeze"}
    # The scheduler's next tick (another process, or this one) draws the round, once.
    assert platform.run_job(release.draw_due_rounds) == 1
    status, bookings, decided = _state(engine, round_id)
    assert status != "open" and bookings == capacity and decided == 10
    assert _signed(platform, round_id) == {"opening", "freeze", "result", "results"}
    assert platform.run_job(release.draw_due_rounds) == 0
    assert _state(engine, round_id)[1] == capacity


def _wait_for_lock_wait(engine: sa.Engine, worker: subprocess.Popen[str]) -> int | None:
    """The backend pid of the worker's connection once it waits for a lock on bookings."""
    deadline = time.monotonic() + 60
    with engine.connect() as conn:
        while time.monotonic() < deadline and worker.poll() is None:
            found = conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE '%bookings%'")).scalar()
            conn.rollback()
            if found:
                return int(found)
            time.sleep(0.05)
    return None


def _wait_until_gone(engine: sa.Engine, pid: int) -> None:
    """PostgreSQL notices the dead client once its statement ends; wait for that."""
    deadline = time.monotonic() + 60
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            alive = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                 {"p": pid}).scalar()
            conn.rollback()
            if not alive:
                return
            time.sleep(0.05)
    pytest.fail(f"the killed worker's backend {pid} is still there")


# -- Redis stopped during a release ------------------------------------------------------


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@POSTGRES
def test_redis_stopped_during_a_release_pauses_booking_not_browsing_and_recovers(
        engine: sa.Engine, clock: FixedClock, private_redis: PrivateRedis) -> None:
    platform = bootstrap(make_settings(database_url=str(engine.url), redis_url=private_redis.url,
                                       guard_redis_retry_seconds=0.5,
                                       guard_redis_prefix="fairslot:faults:"),
                         clock=clock, engine=engine)
    world = build_world(platform)
    outcomes: dict[str, int] = {}
    booked: list[int] = []
    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        people = [world.patient_account(f"release{n:02d}") for n in range(12)]

        def book(n: int) -> int:
            _, (pid,), token = people[n]
            headers = {"Authorization": f"Bearer {token}"}
            screen = client.get(f"/api/v1/sessions/{world.session_ids[0]}/booking-screen",
                                headers=headers)
            if screen.status_code != 200:
                return screen.status_code
            clock.advance(2)
            r = client.post("/api/v1/bookings", json={"session_id": world.session_ids[0],
                                                      "patient_id": pid},
                            headers={**headers, screen.json()["token_header"]:
                                     screen.json()["action_token"]})
            outcomes[str(r.status_code)] = outcomes.get(str(r.status_code), 0) + 1
            if r.status_code == 201:
                booked.append(r.json()["id"])
            else:
                assert r.headers["content-type"].startswith("application/problem+json")
            return r.status_code

        assert [book(n) for n in range(4)] == [201] * 4
        assert private_redis.keys() > 0

        private_redis.stop()  # Redis dies in the middle of the release
        down = [book(n) for n in range(4, 8)]
        assert down == [503] * 4, down  # bookings fail closed ...
        for path in ("/api/v1/hospitals", f"/api/v1/doctors/{world.doctor_id}/sessions",
                     f"/api/v1/sessions/{world.session_ids[0]}"):
            assert client.get(path).status_code == 200  # ... browsing stays open

        private_redis.start()  # same port, empty
        clock.advance(1)  # past the guard's back-off
        after = [book(n) for n in range(8, 12)]
        assert after == [201] * 4, after
    # Nothing lost: every 201 is a booking in the database, every refusal wrote nothing.
    with engine.connect() as conn:
        stored = {r for (r,) in conn.execute(sa.select(t.bookings.c.id))}
    assert stored == set(booked) and len(stored) == 8
    assert outcomes == {"201": 8, "503": 4}


# -- the disk fills while records are exported -------------------------------------------


EXPORT = textwrap.dedent("""
    import resource, signal, sys
    # A full disk, for this process only: any file it writes stops growing at the limit
    # (EFBIG instead of the default SIGXFSZ, as a full disk gives ENOSPC).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    import runpy
    sys.argv = ["fairslot", "records", "export", sys.argv[2], "--pii", "clear"]
    runpy.run_module("fairslot.cli", run_name="__main__")
""")


@POSTGRES
def test_a_full_disk_during_an_export_is_a_clear_error_and_leaves_no_file(
        world: World, tmp_path: pathlib.Path, clock: FixedClock) -> None:
    app = create_app(world.platform)
    with TestClient(app) as client:
        for n in range(40):
            client.get("/api/v1/hospitals", headers={"User-Agent": f"agent {n} " + "x" * 60})
        app.state.access_log.flush()
    script = tmp_path / "export.py"
    script.write_text(EXPORT)
    url = world.platform.engine.url.render_as_string(hide_password=False)
    out = tmp_path / "export"
    # 1 KB a file: bookings and payments fit, the access log does not.
    run = subprocess.run([sys.executable, str(script), "1024", str(out)],
                         env=child_env(FAIRSLOT_DATABASE_URL=url), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not write the export" in lines[0], run.stderr
    assert "File too large" in lines[0] and "Traceback" not in run.stderr
    assert sorted(p.name for p in out.iterdir()) == []  # nothing that looks exported
    # With room, the same export is complete.
    again = subprocess.run([sys.executable, str(script), str(10**8), str(out)],
                           env=child_env(FAIRSLOT_DATABASE_URL=url), capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == ["access.csv", "bookings.csv",
                                                     "payments.csv"]
    assert (out / "access.csv").read_text().count("agent ") == 40


# -- PostgreSQL restarted during a burst of bookings --------------------------------------


class PrivatePostgres:
    """A throwaway PostgreSQL cluster of this test's own (run as the postgres user, on a
    free loopback port, fsync off): started, crashed (immediate shutdown) and started
    again by the test."""

    def __init__(self, folder: pathlib.Path) -> None:
        import pwd
        import shutil
        import socket

        self.user = pwd.getpwnam("postgres")
        self.bin = pathlib.Path(os.path.realpath(shutil.which("pg_ctl") or "pg_ctl")).parent
        self.data = folder / "pgdata"
        os.chown(folder, self.user.pw_uid, self.user.pw_gid)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                        "-U", "postgres", "--no-sync"], check=True, capture_output=True,
                       user=self.user.pw_uid, group=self.user.pw_gid, cwd=folder)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.data), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            user=self.user.pw_uid, group=self.user.pw_gid, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        engine = sa.create_engine(self.url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            for _ in range(300):
                try:
                    with engine.connect():
                        return
                except sa.exc.OperationalError:
                    time.sleep(0.05)
            pytest.fail("the private PostgreSQL did not start")
        finally:
            engine.dispose()

    def crash(self) -> None:
        """Immediate shutdown (SIGQUIT): every backend dies at once, as in a crash."""
        if self.process is not None:
            self.process.send_signal(signal.SIGQUIT)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.fail("this fault test starts PostgreSQL as the postgres user: run it as root")
    # Not under pytest's tmp_path: its parent is private to root, and the server runs as
    # the postgres user.
    folder = pathlib.Path(tempfile.mkdtemp(prefix="fairslot-faults-pg-"))
    try:
        server = PrivatePostgres(folder)
        server.start()
        yield server
        server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_restarted_during_a_burst_of_bookings_loses_nothing(
        private_postgres: PrivatePostgres, clock: FixedClock) -> None:
    import concurrent.futures
    import threading

    from fairslot.storage.database import make_engine
    from fairslot.storage.migrate import upgrade

    engine = make_engine(private_postgres.url)
    upgrade(engine)
    # The guard's limits are lifted: forty patients behind one test client's address would
    # meet the address limits, and this test is about the database.
    no_limits = {g.value: {k.value: "none" for k in KeyKind} for g in RouteGroup}
    platform = bootstrap(make_settings(database_url=private_postgres.url,
                                       guard_token_min_age_seconds=0, guard_limits=no_limits),
                         clock=clock, engine=engine)
    world = build_world(platform, capacity=15, residents=70)
    people = [world.patient_account(f"burst{n:02d}") for n in range(40)]
    answers: dict[int, tuple[int, str, int | None]] = {}
    done = threading.Semaphore(0)

    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        def book(n: int) -> None:
            _, (pid,), token = people[n]
            headers = {"Authorization": f"Bearer {token}"}
            session_id = world.session_ids[n % 2]
            try:
                screen = client.get(f"/api/v1/sessions/{session_id}/booking-screen",
                                    headers=headers)
                if screen.status_code != 200:
                    answers[n] = (screen.status_code, screen.json()["code"], None)
                    return
                r = client.post("/api/v1/bookings", json={"session_id": session_id,
                                                          "patient_id": pid},
                                headers={**headers, screen.json()["token_header"]:
                                         screen.json()["action_token"]})
                body = r.json()
                answers[n] = (r.status_code, str(body.get("code", "")),
                              body.get("id") if r.status_code == 201 else None)
                assert r.headers["content-type"].startswith(
                    "application/problem+json" if r.status_code >= 400 else "application/json")
            finally:
                done.release()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(book, n) for n in range(30)]
            for _ in range(10):
                done.acquire()
            private_postgres.crash()  # in the middle of the burst
            time.sleep(0.5)
            private_postgres.start()
            for future in futures:
                future.result(timeout=120)
        # The pool recovers: the ten who had not tried yet book normally.
        for n in range(30, 40):
            book(n)
        assert all(answers[n][0] in (201, 409) for n in range(30, 40)), \
            {n: answers[n] for n in range(30, 40)}

    statuses = sorted({(status, code) for status, code, _ in answers.values()})
    assert all(status < 500 or code == "database_unavailable" for status, code in statuses), \
        statuses
    made = {booking_id for _, _, booking_id in answers.values() if booking_id is not None}
    with engine.connect() as conn:
        stored = {row.id: row for row in conn.execute(sa.select(t.bookings))}
        taken = conn.scalar(sa.select(sa.func.count()).select_from(t.slots)
                            .where(t.slots.c.taken.is_(True)))
    # Every 201 is stored; anything stored beyond them is a booking whose answer was lost
    # in the crash (committed just before it), complete all the same: its slot is taken.
    assert made <= set(stored), made - set(stored)
    assert taken == len(stored)
    lost_answers = len(set(stored) - made)
    print(f"postgres restart: {len(answers)} requests, {len(made)} booked, "
          f"{sum(1 for s, _, _ in answers.values() if s == 503)} refused while down, "
          f"{lost_answers} committed without an answer")
    engine.dispose()

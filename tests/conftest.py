"""Fixtures shared by the whole suite: settings, the two database backends (SQLite and the
machine's PostgreSQL), Redis, a platform on a controllable clock, and a populated hospital.

PostgreSQL and Redis are used for real. When either is unreachable the tests that need them
fail with a clear message: nothing here skips a missing service."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import pathlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from pydantic import SecretStr

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.config import Settings
from fairslot.domain.accounts import Account, Role
from fairslot.domain.identity import Identity
from fairslot.domain.residents import make_phone, make_residents
from fairslot.domain.schedule import Period
from fairslot.services import accounts, catalog
from fairslot.storage import tables
from fairslot.storage.database import make_engine
from fairslot.storage.migrate import upgrade

TEST_SECRET = "test-secret-0123456789abcdef-" + "x" * 24
PG_ADMIN_URL = os.environ.get("FAIRSLOT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("FAIRSLOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # 17:00 in Shanghai, a Monday
PASSWORD = "correct horse battery"
# Argon2 at the cheapest cost the settings allow: tests check behaviour, not hashing cost.
CHEAP_HASH = {"password_hash_time_cost": 1, "password_hash_memory_kib": 32}


@functools.cache
def password_hash() -> str:
    return PasswordHasher(time_cost=1, memory_cost=32).hash(PASSWORD)


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"secret_key": SecretStr(TEST_SECRET),
                            "database_url": "sqlite://", "scheduler": False,
                            "guard_ledger_path": "", "dev_outbox_page": False,
                            "identity_provider": "registry", "monitor_mode": "off",
                            **CHEAP_HASH,
                            # Fixed test keys, so that no test writes key files to var/.
                            "draw_signing_key": SecretStr("1d" * 32),
                            "draw_local_chain_key": SecretStr("2e" * 32)}
    base.update(overrides)
    return Settings(**base)


def _worker() -> str:
    # One database per test run and worker, so two runs on one machine never share one.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)[:8]
    return f"{run}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test worker's own, migrated once."""
    name = f"fairslot_test_{_worker()}"
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is unreachable at {PG_ADMIN_URL}: {exc.orig}", pytrace=False)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


# Every table of the schema: each test on PostgreSQL starts from an empty database.
_TABLES = tuple(table.name for table in tables.metadata.sorted_tables)


def _pg_engine(url: str) -> sa.Engine:
    engine = make_engine(url)
    with engine.begin() as conn:
        # TRUNCATE skips row triggers, so the append-only event log can be emptied between
        # tests; no code path in fairslot truncates.
        conn.execute(sa.text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: pathlib.Path,
           sqlite_template: pathlib.Path) -> Iterator[sa.Engine]:
    if backend == "postgres":
        url = request.getfixturevalue("pg_url")
        eng = _pg_engine(url)
    else:
        path = tmp_path / "fairslot.db"
        shutil.copyfile(sqlite_template, path)
        eng = make_engine(f"sqlite:///{path}")
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def platform(engine: sa.Engine, clock: FixedClock) -> Platform:
    return bootstrap(make_settings(database_url=str(engine.url)), clock=clock, engine=engine)


@dataclasses.dataclass
class World:
    """A small hospital: one department, a doctor with released sessions, residents."""

    platform: Platform
    hospital_id: int
    department_id: int
    doctor_id: int
    session_ids: list[int]
    residents: list[Identity]
    staff: dict[Role, Account]

    def patient_account(self, username: str, *, patients: int = 1,
                        phone: str | None = None) -> tuple[Account, list[int], str]:
        """A patient account with ``patients`` verified family members, and a token."""
        import random

        rng = random.Random(username)
        run = self.platform.run
        account = run(accounts.create_user, username, PASSWORD, Role.PATIENT,
                      phone or make_phone(rng), password_hash=password_hash(),
                      phone_verified=True)
        ids = []
        for _ in range(patients):
            identity = self.residents.pop()
            ids.append(run(accounts.add_patient, account, identity.id_number, identity.name,
                           None, _ctx()).id or 0)
        return account, ids, run(accounts.issue_token, account.id or 0)

    def token(self, role: Role) -> str:
        return self.platform.run(accounts.issue_token, self.staff[role].id or 0)


def _ctx() -> Any:
    from fairslot.services.context import RequestContext

    return RequestContext(ip="203.0.113.9")


def build_world(platform: Platform, *, capacity: int = 10, residents: int = 40) -> World:
    import random

    run = platform.run
    hospital = run(catalog.create_hospital, "TEST", "测试医院")
    department = run(catalog.create_department, hospital.id or 0, "CARD", "心内科")
    doctor = run(catalog.create_doctor, department.id or 0, "李明", "主任医师", "心衰")
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    sessions = run(catalog.schedule_sessions, doctor.id or 0,
                   [today + dt.timedelta(days=d) for d in (1, 2)], [Period.MORNING], capacity,
                   5000, release_days_before=2)
    people = make_residents(random.Random(7), residents)
    with platform.uow() as uow:
        for identity in people:
            platform.verifier.register(uow, identity)
        uow.commit()
    staff = {role: run(accounts.create_user, f"staff-{role.value}", PASSWORD, role,
                       password_hash=password_hash())
             for role in Role if role is not Role.PATIENT}
    return World(platform, hospital.id or 0, department.id or 0, doctor.id or 0,
                 [s.id or 0 for s in sessions], people, staff)


@pytest.fixture
def world(platform: Platform) -> World:
    return build_world(platform)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is unreachable at {REDIS_URL}: {exc}", pytrace=False)
    finally:
        client.close()
    return REDIS_URL


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def api_book(client: Any, token: str, session_id: int, patient_id: int,
             clock: FixedClock) -> Any:
    """Book the way a patient's app does: open the booking screen (which issues the action
    token), take a few seconds to confirm, then post."""
    headers = {"Authorization": f"Bearer {token}"}
    screen = client.get(f"/api/v1/sessions/{session_id}/booking-screen", headers=headers)
    assert screen.status_code == 200, screen.text
    clock.advance(3)
    return client.post("/api/v1/bookings", json={"session_id": session_id,
                                                 "patient_id": patient_id},
                       headers={**headers, screen.json()["token_header"]:
                                screen.json()["action_token"]})


def api_pay(client: Any, token: str, booking_id: int, payer: str, clock: FixedClock) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    screen = client.get(f"/api/v1/bookings/{booking_id}/payment-screen", headers=headers)
    assert screen.status_code == 200, screen.text
    clock.advance(3)
    return client.post(f"/api/v1/bookings/{booking_id}/pay", json={"payer_account": payer},
                       headers={**headers, screen.json()["token_header"]:
                                screen.json()["action_token"]})


def api_cancel(client: Any, token: str, booking_id: int, clock: FixedClock) -> Any:
    """Cancel the way the app does: the payment screen hands out the cancel token."""
    headers = {"Authorization": f"Bearer {token}"}
    screen = client.get(f"/api/v1/bookings/{booking_id}/payment-screen", headers=headers)
    assert screen.status_code == 200, screen.text
    clock.advance(3)
    return client.post(f"/api/v1/bookings/{booking_id}/cancel",
                       headers={**headers, screen.json()["token_header"]:
                                screen.json()["cancel_token"]})


def wait_until_serving(base: str, process: subprocess.Popen[Any], *, seconds: float = 60,
                       log: pathlib.Path | None = None) -> None:
    """Wait for a server started by a test to answer ``/healthz``; fail the test, with its
    log if there is one, when it exits or does not answer in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            detail = log.read_text() if log is not None and log.exists() else ""
            pytest.fail(f"the server at {base} did not start in {seconds:.0f} s\n{detail}")
        time.sleep(0.1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the tests marked slow come first. ``--dist loadgroup`` hands out work in
    collection order (largest groups first): a slow test collected late would otherwise start
    when the other worker has nothing left, and the run waits for it alone. The order is
    stable, so a module's tests keep theirs (and a module-scoped fixture is built once)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)

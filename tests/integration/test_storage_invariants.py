"""What the database itself guarantees, whatever the code above it does."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys

import httpx
import pytest
import sqlalchemy as sa

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.crypto import Keyring
from fairslot.domain.booking import PatientImmutable
from fairslot.services.booking import book
from fairslot.services.context import RequestContext
from fairslot.storage import tables as t
from fairslot.storage.migrate import drift
from tests.conftest import TEST_SECRET, World, build_world, make_settings, wait_until_serving


def test_migrations_and_models_do_not_drift(world: World) -> None:
    assert drift(world.platform.engine) == []


def test_a_bookings_patient_can_never_change(world: World) -> None:
    account, (first, second), _ = world.patient_account("family", patients=2)
    view = world.platform.run(book, account, first, world.session_ids[0], RequestContext())
    with pytest.raises(PatientImmutable):
        view.booking.patient_id = second
    with world.platform.engine.begin() as conn, pytest.raises(sa.exc.DatabaseError):
        conn.execute(sa.update(t.bookings).values(patient_id=second))


def test_the_event_log_refuses_edits_and_deletes(world: World) -> None:
    with world.platform.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(t.events)) > 0
    for statement in (sa.update(t.events).values(kind="edited"), sa.delete(t.events)):
        with world.platform.engine.begin() as conn, pytest.raises(sa.exc.DatabaseError):
            conn.execute(statement)


def test_a_slot_cannot_be_held_twice_even_by_raw_sql(world: World) -> None:
    account, (first, second), _ = world.patient_account("two", patients=2)
    view = world.platform.run(book, account, first, world.session_ids[0], RequestContext())
    row = {c: getattr(view.booking, c) for c in ("session_id", "slot_id", "account_id",
                                                  "fee_cents", "created_at", "pay_by")}
    with world.platform.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.insert(t.bookings).values(**row, patient_id=second, channel="web",
                                                  status="held", late_cancel=False))


def test_pii_is_encrypted_at_rest_and_found_by_blind_index(world: World) -> None:
    _, (pid,), _ = world.patient_account("secretive", phone="+8613911112222")
    with world.platform.uow() as uow:
        patient = uow.patients.get(pid)
        assert patient is not None
        assert uow.patients.by_id_number(patient.id_number) is not None
    with world.platform.engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT id_number, name FROM patients")).all()
        phones = conn.execute(sa.text("SELECT phone FROM accounts WHERE phone IS NOT NULL")).all()
    dump = b"".join(bytes(v) for row in raw + phones for v in row if v is not None)
    assert patient.id_number.encode() not in dump
    assert patient.name.encode() not in dump
    assert b"13911112222" not in dump
    other = Keyring(b"another secret that is long enough!!")
    with pytest.raises(ValueError, match="does not decrypt"):
        other.decrypt(bytes(raw[0][0]), context="patients.id_number")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_200_concurrent_bookings_for_10_slots_make_exactly_10(platform: Platform,
                                                              clock: FixedClock) -> None:
    """Fired through a real multi-worker server at PostgreSQL, as production runs; the
    server reads the wall clock, so the hospital is built on the wall clock too."""
    clock.set(dt.datetime.now(dt.UTC))
    world = build_world(platform)
    tokens, bodies = [], []
    import random

    from fairslot.domain.accounts import Account, Role
    from fairslot.domain.residents import make_residents
    from fairslot.services.accounts import issue_token
    from tests.conftest import password_hash

    people = make_residents(random.Random(200), 200)
    now = platform.clock.now()
    with platform.uow() as uow:
        for n, identity in enumerate(people):
            platform.verifier.register(uow, identity)
            account = Account(username=f"racer{n:03d}", role=Role.PATIENT,
                              password_hash=password_hash(), phone=None, created_at=now,
                              phone_verified_at=now)
            uow.accounts.add(account)
            uow.flush()
            from fairslot.domain.accounts import Patient

            patient = Patient(id_number=identity.id_number, name=identity.name, phone=None,
                              verified_at=now, created_at=now)
            uow.patients.add(patient)
            uow.flush()
            uow.patients.link(account.id or 0, patient.id or 0, now)
            bodies.append({"session_id": world.session_ids[0], "patient_id": patient.id})
            tokens.append(account.id or 0)
        uow.commit()
    # The server runs on the wall clock: give its tokens a long life from real now.
    tokens = [platform.run(issue_token, a) for a in tokens]
    port = _free_port()
    # All 200 requests come from one loopback address: lift the guard's per-IP booking limits
    # so this test measures the database's guarantee, not the rate limiter.
    env = {**os.environ, "FAIRSLOT_DATABASE_URL": str(platform.engine.url.render_as_string(
        hide_password=False)), "FAIRSLOT_SECRET_KEY": TEST_SECRET, "FAIRSLOT_SCHEDULER": "false",
        # (and its client sends no device cookie, so the device limits are lifted too).
        "FAIRSLOT_GUARD_LIMITS": '{"booking": {"ip": "none", "prefix": "none", "device": "none"},'
                                 ' "screens": {"ip": "none", "prefix": "none", "device": "none"}}',
        "FAIRSLOT_GUARD_LEDGER_PATH": "",
        # The server runs on the wall clock: no minimum token age, so no waiting for one.
        "FAIRSLOT_GUARD_TOKEN_MIN_AGE_SECONDS": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fairslot.web.asgi:app", "--port", str(port),
         "--workers", "4", "--log-level", "warning"], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, server)

        async def fire() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
                screens = await asyncio.gather(*(
                    client.get(f"/api/v1/sessions/{body['session_id']}/booking-screen",
                               headers={"Authorization": f"Bearer {token}"})
                    for token, body in zip(tokens, bodies, strict=True)))
            # Fresh connections for the race: the server closes idle keep-alive connections
            # after 5 s, and on a loaded machine the screens can take that long.
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
                return await asyncio.gather(*(
                    client.post("/api/v1/bookings", json=body,
                                headers={"Authorization": f"Bearer {token}",
                                         s.json()["token_header"]: s.json()["action_token"]})
                    for token, body, s in zip(tokens, bodies, screens, strict=True)))

        responses = asyncio.run(fire())
    finally:
        server.terminate()
        server.wait(timeout=20)
    statuses = [r.status_code for r in responses]
    codes = [r.json().get("code") for r in responses if r.status_code != 201]
    assert statuses.count(201) == 10
    assert codes == ["slot_unavailable"] * 190
    with platform.engine.connect() as conn:
        held = conn.execute(sa.select(t.bookings.c.slot_id).where(
            t.bookings.c.session_id == world.session_ids[0])).scalars().all()
    assert len(held) == len(set(held)) == 10


def test_settings_refuse_a_short_secret() -> None:
    settings = make_settings(secret_key="short")
    with pytest.raises(RuntimeError, match="FAIRSLOT_SECRET_KEY"):
        settings.secret_bytes()

"""PostgreSQL's fast booking path as ``POST /bookings`` runs it (the unit of work in
autocommit, ``BEGIN`` sent with the first locked statement): parallel bookings stop at each
quota; a use case that fails between the two messages leaves nothing written, no
transaction open and no advisory lock held, and gives its connection back to the pool out
of autocommit; hostile strings in the event's fields are stored as data."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from fairslot.bootstrap import bootstrap
from fairslot.domain.errors import FairslotError
from fairslot.domain.residents import make_phone
from fairslot.domain.schedule import Period
from fairslot.services import booking, catalog, shared_list
from fairslot.services.context import RequestContext
from fairslot.storage.repositories.bookings import BookingRepository
from tests.conftest import World, build_world, make_settings
from tests.integration.test_quotas_parallel import _mover_and_stayer, _race

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
"""The fast path exists on PostgreSQL only."""

CTX = RequestContext(ip="203.0.113.80", device_id="dev-race")


def _book(platform: Any, account: Any, pid: int, session_id: int,
          ctx: RequestContext = CTX) -> Any:
    with platform.uow() as uow:
        uow.autocommit()
        return booking.book(uow, platform.deps, account, pid, session_id, ctx)


def _assert_clean(platform: Any) -> None:
    """No backend of this database in a transaction, no advisory lock held, and every
    pooled connection idle and out of autocommit."""
    with platform.engine.connect() as conn:
        me = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        states = conn.execute(sa.text(
            "SELECT state FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> :me AND backend_type = 'client backend'"), {"me": me}).scalars().all()
        advisory = conn.execute(sa.text(
            "SELECT l.pid, l.objid, l.granted, a.state, a.query FROM pg_locks l"
            " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())")).all()
    assert all(s == "idle" for s in states), states
    assert advisory == [], advisory
    pool = platform.engine.pool
    raws = [platform.engine.raw_connection() for _ in range(pool.checkedin())]
    try:
        for raw in raws:
            driver = raw.driver_connection
            assert driver.autocommit is False
            assert driver.info.transaction_status.name == "IDLE"
    finally:
        for raw in raws:
            raw.close()


def _count(platform: Any, table: str) -> int:
    with platform.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_parallel_fast_bookings_of_one_patient_stop_at_the_active_quota(
        world: World) -> None:
    world = world
    platform = world.platform
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    more = platform.run(catalog.schedule_sessions, world.doctor_id,
                        [today + dt.timedelta(days=d) for d in range(3, 9)],
                        [Period.MORNING], 10, 5000, release_days_before=10)
    sessions = world.session_ids + [s.id or 0 for s in more]
    account, (pid,), _ = world.patient_account("race-patient")
    outcomes = _race([(lambda s=s: _book(platform, account, pid, s)) for s in sessions])
    assert outcomes == Counter({"ok": 4, "quota_active_bookings": len(sessions) - 4})
    assert _count(platform, "bookings") == 4
    _assert_clean(platform)


def test_parallel_fast_bookings_of_one_patient_in_one_session_give_one(
        world: World) -> None:
    platform = world.platform
    account, (pid,), _ = world.patient_account("race-session")
    outcomes = _race([(lambda: _book(platform, account, pid, world.session_ids[0]))
                      for _ in range(6)])
    assert outcomes == Counter({"ok": 1, "already_booked": 5})
    assert _count(platform, "bookings") == 1
    _assert_clean(platform)


def test_parallel_fast_bookings_from_two_accounts_on_one_phone_stop_at_the_phone_quota(
        world: World) -> None:
    platform = world.platform
    phone = make_phone(random.Random("race-phone"))
    calls = []
    for name in ("race-phone-a", "race-phone-b"):
        account, pids, _ = world.patient_account(name, patients=4, phone=phone)
        calls += [(lambda a=account, p=p: _book(platform, a, p, world.session_ids[0]))
                  for p in pids]
    outcomes = _race(calls)
    assert outcomes == Counter({"ok": 5, "quota_phone_patients": 3})
    assert _count(platform, "bookings") == 5
    _assert_clean(platform)


def test_parallel_fast_bookings_from_a_moved_account_and_one_on_its_old_phone_stop_at_its_quota(
        world: World) -> None:
    """Account A verified phone P1 and moved to P2; B is still on P1. A's bookings count
    toward P1 too, so each takes P1's lock (starting again, all locks in order, once its
    facts name P1): their bookings at once stop at P1's quota, and the start again leaves
    nothing open."""
    platform = world.platform
    a, a_pids, b, b_pids = _mover_and_stayer(world, patients=5)
    calls = [(lambda a=a, p=p: _book(platform, a, p, world.session_ids[0])) for p in a_pids]
    calls += [(lambda p=p: _book(platform, b, p, world.session_ids[0])) for p in b_pids]
    outcomes = _race(calls)
    assert outcomes == Counter({"ok": 5, "quota_phone_patients": 5})
    assert _count(platform, "bookings") == 5
    _assert_clean(platform)


def test_parallel_fast_bookings_of_one_account_stop_at_the_account_quota(
        engine: sa.Engine, clock: Any) -> None:
    """The account's patients-served quota, lowered to two so that one account's five
    patients can pass it: four of them booked at once give two bookings."""
    platform = bootstrap(make_settings(database_url=str(engine.url),
                                       quota_patients_per_account=2),
                         clock=clock, engine=engine)
    world = build_world(platform)
    account, pids, _ = world.patient_account("race-account", patients=4)
    outcomes = _race([(lambda p=p: _book(platform, account, p, world.session_ids[0]))
                      for p in pids])
    assert outcomes == Counter({"ok": 2, "quota_account_patients": 2})
    assert _count(platform, "bookings") == 2
    _assert_clean(platform)


class _Boom(Exception):
    pass


def test_an_exception_between_the_two_messages_leaves_nothing_open_or_written(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = world.platform
    account, (pid,), _ = world.patient_account("race-boom")

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise _Boom

    with monkeypatch.context() as patch:
        patch.setattr(shared_list, "consult", boom)
        for _ in range(3):
            with pytest.raises(_Boom):
                _book(platform, account, pid, world.session_ids[0])
    _assert_clean(platform)
    # A failing second message: its error ends the transaction, nothing half-written.
    real = BookingRepository.hold_and_commit

    def failing(self: Any, booking_: Any, **kwargs: Any) -> Any:
        booking_.account_id = -1  # no such account: the booking's insert is refused
        return real(self, booking_, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(BookingRepository, "hold_and_commit", failing)
        with pytest.raises(Exception):  # noqa: B017 - whatever the storage layer raises
            _book(platform, account, pid, world.session_ids[0])
    assert _count(platform, "bookings") == 0
    with platform.engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM slots WHERE taken")).scalar_one() == 0
        assert conn.execute(sa.text(
            "SELECT count(*) FROM events WHERE kind = 'booking.created'")).scalar_one() == 0
    _assert_clean(platform)
    # And the pool's connections still serve an ordinary unit of work atomically.
    assert _book(platform, account, pid, world.session_ids[0]).slot_number == 1
    _assert_clean(platform)


def test_a_refused_fast_booking_leaves_nothing_open(world: World) -> None:
    platform = world.platform
    account, (pid,), _ = world.patient_account("race-refused")
    _book(platform, account, pid, world.session_ids[0])
    for _ in range(3):
        with pytest.raises(FairslotError) as refused:
            _book(platform, account, pid, world.session_ids[0])
        assert refused.value.code == "already_booked"
    _assert_clean(platform)


HOSTILE = ("x'); DROP TABLE bookings; --", "'; COMMIT; DELETE FROM events; --",
           "\\'; SELECT pg_sleep(5); --", "$fn$ $$ %s %(x)s {0} \u0000".replace("\u0000", ""),
           "\u5f20\u4e09'\"\\\n\t")


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_in_the_event_fields_are_stored_as_data(
        world: World, hostile: str) -> None:
    platform = world.platform
    account, (pid,), _ = world.patient_account("race-hostile")
    ctx = RequestContext(ip=hostile[:45], device_id=hostile, held_for_review=())
    view = _book(platform, account, pid, world.session_ids[0], ctx)
    with platform.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT ip, device_id FROM events WHERE booking_id = :id"),
            {"id": view.booking.id}).one()
    assert row == (hostile[:45], hostile)
    assert _count(platform, "bookings") == 1
    _assert_clean(platform)


def test_a_booking_cancelled_on_the_server_while_it_waits_for_a_lock_leaves_nothing_open(
        world: World) -> None:
    """A statement cancelled mid-message (as a server-side cancel or a timeout ends it):
    the first message's BEGIN had opened a transaction, which the unit of work rolls
    back."""
    import threading
    import time

    from fairslot.services import rules
    from fairslot.storage.locks import lock_keys

    platform = world.platform
    account, (pid,), _ = world.patient_account("race-cancel")
    with platform.uow() as uow:
        [key] = lock_keys(rules.lock_names(uow, pid, None))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _book(platform, account, pid, world.session_ids[0])
        except BaseException as exc:
            errors.append(exc)

    with platform.engine.connect() as holder:
        holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        thread = threading.Thread(target=run)
        thread.start()
        waiting: list[int] = []
        for _ in range(100):
            waiting = holder.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()")).scalars().all()
            # PostgreSQL shows a transaction one picture of pg_stat_activity, taken at its
            # first look: end it, or a booking that started waiting after that is never
            # seen (the session-level lock outlives the commit).
            holder.commit()
            if waiting:
                break
            time.sleep(0.05)
        assert len(waiting) == 1
        holder.execute(sa.text("SELECT pg_cancel_backend(:p)"), {"p": waiting[0]})
        thread.join(30)
        holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        holder.commit()
    assert len(errors) == 1 and not isinstance(errors[0], AssertionError), errors
    assert _count(platform, "bookings") == 0
    _assert_clean(platform)
    assert _book(platform, account, pid, world.session_ids[0]).slot_number == 1
    _assert_clean(platform)


def test_a_nul_in_an_event_field_is_refused_before_anything_is_written(
        world: World) -> None:
    """PostgreSQL's text holds no NUL: the second message is refused while the client
    composes it, after the first opened the transaction; nothing stays open or written."""
    platform = world.platform
    account, (pid,), _ = world.patient_account("race-nul")
    ctx = RequestContext(ip="203.0.113.81", device_id="dev\x00'; DELETE FROM events; --")
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        _book(platform, account, pid, world.session_ids[0], ctx)
    assert _count(platform, "bookings") == 0
    _assert_clean(platform)


def test_through_the_api_a_booking_and_its_refusals_leave_every_connection_clean(
        world: World) -> None:
    """``POST /bookings`` itself: booked, refused in the same session, refused for a full
    session; each answer a problem with its code, and the pool clean after each."""
    from fastapi.testclient import TestClient

    from fairslot.web.app import create_app
    from tests.conftest import api_book

    platform = world.platform
    client = TestClient(create_app(platform))
    clock = platform.clock
    _, (pid,), token = world.patient_account("api-race")
    sid = world.session_ids[0]
    assert api_book(client, token, sid, pid, clock).status_code == 201
    _assert_clean(platform)
    r = api_book(client, token, sid, pid, clock)
    assert r.status_code == 409 and r.json()["code"] == "already_booked"
    _assert_clean(platform)
    for n in range(2):
        other, ids, _ = world.patient_account(f"api-filler{n}", patients=5)
        for other_pid in ids:
            if n or other_pid != ids[0]:  # the session holds ten: api-race has one
                _book(platform, other, other_pid, sid)
    _, (late,), late_token = world.patient_account("api-late")
    r = api_book(client, late_token, sid, late, clock)
    assert r.status_code == 409 and r.json()["code"] == "slot_unavailable"
    assert r.headers["content-type"].startswith("application/problem+json")
    _assert_clean(platform)

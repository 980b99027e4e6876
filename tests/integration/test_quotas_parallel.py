"""Every quota holds when its requests arrive at once: N parallel bookings, payments,
registrations, family links and draw entries against a quota give exactly the quota, never
more, on SQLite and on PostgreSQL. Each request runs in its own thread and transaction, as
the server's workers do."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.errors import FairslotError
from fairslot.domain.residents import make_phone
from fairslot.domain.schedule import Period
from fairslot.services import accounts, booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.web.app import create_app
from tests.conftest import PASSWORD, World, api_book
from tests.identity.helpers import last_code, link_with_consent
from tests.integration.test_release import _draw_world

CTX = RequestContext(ip="203.0.113.50")


def _race(calls: list[Callable[[], Any]]) -> Counter[str]:
    """Run ``calls`` at the same moment, one thread each; count the outcomes ("ok" or the
    refusal's code)."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = [""] * len(calls)

    def run(n: int) -> None:
        barrier.wait()
        try:
            calls[n]()
            outcomes[n] = "ok"
        except FairslotError as exc:
            outcomes[n] = exc.code

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return Counter(outcomes)


def test_parallel_bookings_of_one_patient_from_several_accounts_stop_at_the_quota(
        world: World) -> None:
    platform = world.platform
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    more = platform.run(catalog.schedule_sessions, world.doctor_id,
                        [today + dt.timedelta(days=d) for d in range(3, 9)],
                        [Period.MORNING], 10, 5000, release_days_before=10)
    sessions = world.session_ids + [s.id or 0 for s in more]
    first, (patient_id,), _ = world.patient_account("family-a")
    identity = next(p for p in platform.run(accounts.list_patients, first))
    others = []
    for name in ("family-b", "family-c", "family-d"):
        account, _, _ = world.patient_account(name, patients=0)
        link_with_consent(platform, account, identity, first.phone or "", CTX)
        others.append(account)
    holders = [first, *others]
    outcomes = _race([
        (lambda n=n: platform.run(booking.book, holders[n % 4], patient_id, sessions[n], CTX))
        for n in range(8)])
    assert outcomes == Counter({"ok": 4, "quota_active_bookings": 4})


def test_parallel_payments_from_one_payer_stop_at_the_payer_quota(world: World) -> None:
    platform = world.platform
    held = []
    for name in ("payer-a", "payer-b"):
        account, patient_ids, _ = world.patient_account(name, patients=4)
        held += [(account, platform.run(booking.book, account, pid, world.session_ids[0],
                                        CTX).booking.id or 0) for pid in patient_ids]
    outcomes = _race([
        (lambda a=a, b=b: platform.run(booking.pay, a, b, "alipay:hub@pay.example", CTX))
        for a, b in held])
    assert outcomes == Counter({"ok": 5, "quota_payer_patients": 3})


def test_parallel_registrations_with_one_phone_stop_at_the_accounts_per_phone_limit(
        world: World) -> None:
    phone = "+8613800138000"
    outcomes = _race([
        (lambda n=n: world.platform.run(accounts.register, f"farm{n:02d}", PASSWORD, phone,
                                        CTX)) for n in range(10)])
    # Registering sends a code; one number gets five an hour, so half the farm is refused.
    assert outcomes == Counter({"ok": 5, "codes_rate_limited": 5})
    with world.platform.uow() as uow:
        made = list(uow.accounts.with_phone(phone))
    assert len(made) == 5
    outcomes = _race([
        (lambda a=a: world.platform.run(
            accounts.verify_phone, a, last_code(world.platform, phone, account_id=a.id), CTX))
        for a in made])
    assert outcomes == Counter({"ok": 2, "quota_accounts_per_phone": 3})


def test_parallel_family_links_stop_at_the_patients_per_account_limit(world: World) -> None:
    account, _, _ = world.patient_account("big-family", patients=0)
    people = [world.residents.pop() for _ in range(8)]
    outcomes = _race([
        (lambda p=p: world.platform.run(accounts.add_patient, account, p.id_number, p.name,
                                        None, CTX)) for p in people])
    assert outcomes == Counter({"ok": 5, "quota_patients_per_account": 3})


def test_unlinking_a_patient_does_not_reset_the_patients_per_account_count(
        world: World) -> None:
    account, patient_ids, _ = world.patient_account("churn", patients=5)
    world.platform.run(accounts.remove_patient, account, patient_ids[0], CTX)
    newcomer = world.residents.pop()
    try:
        world.platform.run(accounts.add_patient, account, newcomer.id_number, newcomer.name,
                           None, CTX)
    except FairslotError as exc:
        assert exc.code == "quota_patients_per_account"
    else:
        raise AssertionError("a sixth patient was linked within the quota window")


def test_parallel_draw_entries_from_two_accounts_on_one_phone_stop_at_the_phone_quota(
        platform: Any, clock: Any) -> None:
    dw = _draw_world(platform, clock, people=0)
    world = dw.world
    phone = make_phone(random.Random("shared-phone"))
    entrants = []
    for name in ("phone-a", "phone-b"):
        account, patient_ids, _ = world.patient_account(name, patients=5, phone=phone)
        entrants += [(account, pid) for pid in patient_ids]
    outcomes = _race([
        (lambda a=a, p=p: platform.run(release.enter, a, dw.round_id, p, [dw.sessions[0]],
                                       CTX)) for a, p in entrants])
    assert outcomes == Counter({"ok": 5, "quota_phone_patients": 5})


def test_entries_count_as_active_bookings_so_a_draw_win_never_exceeds_the_quota(
        platform: Any, clock: Any) -> None:
    dw = _draw_world(platform, clock, people=0)
    world = dw.world
    account, (patient_id,), _ = world.patient_account("busy")
    today = clock.now().astimezone(platform.settings.zone).date()
    more = platform.run(catalog.schedule_sessions, world.doctor_id,
                        [today + dt.timedelta(days=d) for d in range(3, 6)],
                        [Period.MORNING], 10, 5000, release_days_before=10)
    for session in more:
        platform.run(booking.book, account, patient_id, session.id or 0, CTX)
    platform.run(release.enter, account, dw.round_id, patient_id, [dw.sessions[0]], CTX)
    try:
        platform.run(booking.book, account, patient_id, world.session_ids[0], CTX)
    except FairslotError as exc:
        assert exc.code == "quota_active_bookings" and exc.extra["used"] == 4
    else:
        raise AssertionError("a fifth active booking was made beside a pending entry")


def _move(platform: Any, account: Any, phone: str) -> Any:
    """Move the account to ``phone`` as a person does: ask, then type back the code."""
    platform.run(accounts.change_phone, account, phone)
    return platform.run(accounts.verify_phone, account,
                        last_code(platform, phone, account_id=account.id), CTX)


def _mover_and_stayer(world: World, patients: int) -> tuple[Any, list[int], Any, list[int]]:
    """Account A, which verified phone P1 by a code and moved on to P2 (within the quota
    window), and account B, still on P1; each with ``patients`` patients."""
    platform = world.platform
    rng = random.Random("moved-phone")
    p1, p2 = make_phone(rng), make_phone(rng)
    a, a_pids, _ = world.patient_account("mover", patients=patients)
    _move(platform, a, p1)
    b, b_pids, _ = world.patient_account("stayer", patients=patients, phone=p1)
    a = _move(platform, a, p2)
    assert a.phone == p2
    return a, a_pids, b, b_pids


def test_an_account_that_moved_off_a_phone_is_held_to_that_phones_quota(
        world: World) -> None:
    """Its bookings still count toward the phone it left (the window has not passed), so
    once that phone's quota is reached it may serve no new patient, whatever its new
    phone has room for."""
    platform = world.platform
    a, a_pids, b, b_pids = _mover_and_stayer(world, patients=3)
    session = world.session_ids[0]
    for pid in b_pids:
        platform.run(booking.book, b, pid, session, CTX)
    for pid in a_pids[:2]:
        platform.run(booking.book, a, pid, session, CTX)
    # P1 has served five patients (B's three, A's two): its quota. A's new number has
    # served two (A's own), yet A may not serve a third: P1 would serve six.
    clock = platform.clock
    assert isinstance(clock, FixedClock)
    client = TestClient(create_app(platform))
    token = platform.run(accounts.issue_token, a.id or 0)
    refused = api_book(client, token, session, a_pids[2], clock)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "quota_phone_patients"
    assert refused.json()["used"] == 5
    # A patient it served already is no new one: booking them again passes.
    platform.run(booking.book, a, a_pids[0], world.session_ids[1], CTX)


def test_parallel_bookings_from_a_moved_account_and_one_still_on_the_phone_stop_at_its_quota(
        world: World) -> None:
    platform = world.platform
    a, a_pids, b, b_pids = _mover_and_stayer(world, patients=5)
    calls = [(lambda a=a, p=p: platform.run(booking.book, a, p, world.session_ids[0], CTX))
             for p in a_pids]
    calls += [(lambda p=p: platform.run(booking.book, b, p, world.session_ids[0], CTX))
              for p in b_pids]
    outcomes = _race(calls)
    assert outcomes == Counter({"ok": 5, "quota_phone_patients": 5})


def test_parallel_draw_entries_from_a_moved_account_and_one_still_on_the_phone_stop_at_its_quota(
        platform: Any, clock: Any) -> None:
    dw = _draw_world(platform, clock, people=0)
    a, a_pids, b, b_pids = _mover_and_stayer(dw.world, patients=5)
    entrants = [(a, p) for p in a_pids] + [(b, p) for p in b_pids]
    outcomes = _race([
        (lambda a=a, p=p: platform.run(release.enter, a, dw.round_id, p, [dw.sessions[0]],
                                       CTX)) for a, p in entrants])
    assert outcomes == Counter({"ok": 5, "quota_phone_patients": 5})


def test_parallel_moves_onto_one_phone_stop_at_the_accounts_per_phone_limit(
        world: World) -> None:
    """Two accounts moving onto a phone that backs one account already (the limit is two)
    and typing their codes back at once: one of them gets it."""
    platform = world.platform
    phone = make_phone(random.Random("crowded-phone"))
    world.patient_account("resident", patients=0, phone=phone)
    movers = [world.patient_account(f"newcomer-{n}", patients=0)[0] for n in range(2)]
    for account in movers:
        platform.run(accounts.change_phone, account, phone)
    outcomes = _race([
        (lambda a=a: platform.run(accounts.verify_phone, a,
                                  last_code(platform, phone, account_id=a.id), CTX))
        for a in movers])
    assert outcomes == Counter({"ok": 1, "quota_accounts_per_phone": 1})
    with platform.uow() as uow:
        assert uow.accounts.count_with_phone(phone, verified_only=True) == 2

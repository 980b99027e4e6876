"""The shared list where a scalper would get in: registration, identity linking, draw
entry, booking and payment consult it, and this hospital's policy per kind decides what an
entry of another hospital does (refuse, hold for review, lower quota). Hospital A publishes
on its own database; B is the platform under test."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.consortium import Action, Entry, EntryKind, NewEntry, RingRole, SubjectType
from fairslot.domain.accounts import Account, Role
from fairslot.domain.credit import Suspended
from fairslot.domain.errors import FairslotError, QuotaExceeded
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import accounts, booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.services.payments import payer_key
from fairslot.services.shared_list import ConsortiumHeld, ConsortiumRefused
from fairslot.storage import tables as t
from tests.conftest import PASSWORD, World, build_world, password_hash
from tests.consortium.conftest import Pair

CTX = RequestContext(ip="203.0.113.77")
PAYER = "alipay:ring-hub@example.com"


@pytest.fixture
def hb(pair: Pair, platform: Platform) -> World:
    """Hospital B: a small hospital whose platform consults B's consortium."""
    return build_world(dataclasses.replace(platform, consortium=pair.b))


def listed(pair: Pair, subject: SubjectType, value: str, *,
           kind: EntryKind = EntryKind.RING_MEMBER,
           role: RingRole | None = RingRole.MEMBER, days: int = 90) -> Entry:
    """A publishes an entry; B pulls A's feed."""
    now = pair.clock.now()
    [entry] = pair.a.publish([NewEntry(kind, role if kind is EntryKind.RING_MEMBER else None,
                                       2, now, now + dt.timedelta(days=days), subject, value,
                                       "case 17")], actor="investigator")
    assert pair.b.sync()[0].ok
    return entry


def events(world: World, kind: str) -> list[dict[str, object]]:
    with world.platform.engine.connect() as conn:
        rows = conn.execute(sa.select(t.events.c.detail).where(t.events.c.kind == kind))
        return [dict(r.detail) for r in rows]


def account_without_patients(world: World, name: str, phone: str = "13700001234") -> object:
    return world.platform.run(accounts.create_user, name, PASSWORD, Role.PATIENT, phone,
                              password_hash=password_hash(), phone_verified=True)


def test_registration_with_a_listed_phone_is_refused_and_nothing_is_made(
        pair: Pair, hb: World) -> None:
    entry = listed(pair, SubjectType.PHONE, "13911112222")
    run = hb.platform.run
    with pytest.raises(ConsortiumRefused) as refused:
        run(accounts.register, "scalper1", PASSWORD, "+86 139 1111 2222", CTX)
    assert refused.value.extra["entries"][0]["entry"] == entry.ref
    assert "case 17" not in repr(refused.value.extra)  # the evidence stays at A
    with hb.platform.uow() as uow:
        assert uow.accounts.by_username("scalper1") is None
    assert events(hb, "consortium.matched") == [
        {"point": "registration", "outcome": "refuse", "entries": [entry.ref]}]
    assert run(accounts.register, "honest1", PASSWORD, "13911112223", CTX).id


def test_identity_linking_is_held_until_staff_clear_the_entry(pair: Pair, hb: World) -> None:
    pair.b.set_policy("ring_member", Action.HOLD, actor="test")
    person = hb.residents.pop()
    entry = listed(pair, SubjectType.IDENTITY, person.id_number)
    account = account_without_patients(hb, "family1")
    run = hb.platform.run
    with pytest.raises(ConsortiumHeld):
        run(accounts.add_patient, account, person.id_number, person.name, None, CTX)
    with pytest.raises(ConsortiumHeld):  # still pending: one review, not two
        run(accounts.add_patient, account, person.id_number, person.name, None, CTX)
    [review] = pair.b.store.reviews()
    assert (review.ref, review.status, review.point) == (entry.ref, "pending", "identity_link")
    with hb.platform.uow() as uow:
        assert uow.patients.by_id_number(person.id_number) is None
    pair.b.decide_review(entry.ref, clear=True, note="seen at the desk: not the ring's",
                         actor="desk-wang")
    patient = run(accounts.add_patient, account, person.id_number, person.name, None, CTX)
    assert patient.id
    actions = [a["action"] for a in pair.b.store.audit_log(10)]
    assert "review.opened" in actions and "review.cleared" in actions


def _booking_held(pair: Pair, hb: World, username: str) -> tuple[Account, int, str, Entry]:
    """B holds ring members for review; A lists a family's patient; their booking at B is
    held (a review opens). The account, the patient, the account's token and the entry."""
    pair.b.set_policy("ring_member", Action.HOLD, actor="test")
    account, (pid,), token = hb.patient_account(username)
    with hb.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    entry = listed(pair, SubjectType.IDENTITY, patient.id_number)
    with pytest.raises(ConsortiumHeld):
        hb.platform.run(booking.book, account, pid, hb.session_ids[0], CTX)
    return account, pid, token, entry


def test_a_review_refused_by_staff_refuses_from_then_on(pair: Pair, hb: World) -> None:
    account, pid, _, entry = _booking_held(pair, hb, "family2")
    run = hb.platform.run
    pair.b.decide_review(entry.ref, clear=False, note="confirmed with A", actor="desk-li")
    with pytest.raises(ConsortiumRefused):
        run(booking.book, account, pid, hb.session_ids[0], CTX)


def test_a_lowered_quota_lets_one_booking_through_and_not_two(pair: Pair, hb: World) -> None:
    pair.b.set_policy("ring_member", Action.LOWER_QUOTA, actor="test")
    listed_account, (listed_pid,), _ = hb.patient_account("family3")
    other_account, (other_pid,), _ = hb.patient_account("family4")
    with hb.platform.uow() as uow:
        patient = uow.patients.get(listed_pid)
    assert patient is not None
    listed(pair, SubjectType.IDENTITY, patient.id_number)
    run = hb.platform.run
    first, second = hb.session_ids
    assert run(booking.book, listed_account, listed_pid, first, CTX).booking.id
    with pytest.raises(QuotaExceeded) as refused:
        run(booking.book, listed_account, listed_pid, second, CTX)
    assert refused.value.code == "quota_active_bookings" and refused.value.extra["limit"] == 1
    for session in (first, second):  # an unlisted patient keeps the ordinary quotas
        assert run(booking.book, other_account, other_pid, session, CTX).booking.id
    # The booking made under the lowered quotas says so (the refused one wrote nothing).
    assert [e["outcome"] for e in events(hb, "consortium.matched")] == ["lower_quota"]


def test_a_listed_payer_is_refused_at_payment_and_the_booking_stays_unpaid(
        pair: Pair, hb: World) -> None:
    pair.b.set_policy("ring_member", Action.HOLD, actor="test")
    pair.b.set_policy("ring_member:payer", Action.REFUSE, actor="test")
    listed(pair, SubjectType.PAYER, payer_key(hb.platform.payments, PAYER),
           role=RingRole.PAYER)
    account, (pid,), _ = hb.patient_account("family5")
    run = hb.platform.run
    view = run(booking.book, account, pid, hb.session_ids[0], CTX)
    with pytest.raises(ConsortiumRefused):
        run(booking.pay, account, view.booking.id, PAYER, CTX)
    assert run(booking.get_booking, account, view.booking.id).booking.status == "held"
    paid = run(booking.pay, account, view.booking.id, "wechat:wxid_family5", CTX)
    assert paid.booking.status == "paid"


def test_a_listed_payer_is_refused_however_the_client_spells_it(pair: Pair,
                                                                 hb: World) -> None:
    # The list names the payer by the provider's id, as the payer quota counts it: another
    # method or spelling of the same funding account is the same payer.
    pair.b.set_policy("ring_member", Action.REFUSE, actor="test")
    listed(pair, SubjectType.PAYER, payer_key(hb.platform.payments, PAYER),
           role=RingRole.PAYER)
    account, (pid,), _ = hb.patient_account("family6")
    run = hb.platform.run
    view = run(booking.book, account, pid, hb.session_ids[0], CTX)
    for spelling in ("wechat:Ring.Hub@Example.com", "card:RING_HUB@example.com"):
        with pytest.raises(ConsortiumRefused):
            run(booking.pay, account, view.booking.id, spelling, CTX)
    assert run(booking.get_booking, account, view.booking.id).booking.status == "held"
    # A payment record as an investigation reads it names the same payer.
    assert payer_key(hb.platform.payments, "alipay:" + payer_key(
        hb.platform.payments, "wechat:ring.hub@example.com")) == payer_key(
            hb.platform.payments, PAYER)


def test_a_desk_booking_with_a_listed_payer_is_refused(pair: Pair, hb: World) -> None:
    listed(pair, SubjectType.PAYER, payer_key(hb.platform.payments, PAYER),
           role=RingRole.PAYER)
    person = hb.residents.pop()
    with pytest.raises(ConsortiumRefused):
        hb.platform.run(booking.book_on_site, hb.staff[Role.REGISTRATION], hb.session_ids[0],
                        person.id_number, person.name, PAYER, CTX)
    with hb.platform.uow() as uow:
        assert list(uow.bookings.of_session(hb.session_ids[0])) == []


def test_another_hospitals_no_show_suspension_refuses_a_draw_entry_as_a_suspension(
        pair: Pair, hb: World, clock: FixedClock) -> None:
    pair.b.set_policy("no_show_suspension", Action.REFUSE, actor="test")
    platform = hb.platform
    doctor = platform.run(catalog.create_doctor, hb.department_id, "张华", "主任医师", "心衰",
                          release_policy=ReleasePolicy.DRAW, hot=True)
    today = clock.now().astimezone(platform.settings.zone).date()
    [session] = platform.run(catalog.schedule_sessions, doctor.id or 0,
                             [today + dt.timedelta(days=2)], [Period.MORNING], 2, 30000,
                             release_days_before=1)
    assert platform.run_job(release.open_due_rounds) == 1
    with platform.uow() as uow:
        round_id = uow.rounds.round_of_session(session.id or 0)
    account, (pid,), _ = hb.patient_account("family6")
    with platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None and round_id is not None
    entry = listed(pair, SubjectType.IDENTITY, patient.id_number,
                   kind=EntryKind.NO_SHOW_SUSPENSION, days=30)
    with pytest.raises(Suspended) as refused:
        platform.run(release.enter, account, round_id, pid, [session.id], CTX)
    assert refused.value.code == "consortium_suspended"
    assert refused.value.until == clock.now() + dt.timedelta(days=30)
    pair.a.withdraw(entry.entry_no, "paid the fine", actor="investigator")
    pair.b.sync()
    assert platform.run(release.enter, account, round_id, pid, [session.id], CTX).id


def test_a_withdrawn_entry_stops_refusing_bookings(pair: Pair, hb: World) -> None:
    account, (pid,), _ = hb.patient_account("family7")
    with hb.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    entry = listed(pair, SubjectType.IDENTITY, patient.id_number)
    run = hb.platform.run
    with pytest.raises(ConsortiumRefused):
        run(booking.book, account, pid, hb.session_ids[0], CTX)
    pair.a.withdraw(entry.entry_no, "identity stolen", actor="investigator")
    assert pair.b.sync()[0].applied == 1
    assert run(booking.book, account, pid, hb.session_ids[0], CTX).booking.id


def test_no_show_suspensions_of_others_are_ignored_until_the_hospital_decides(
        pair: Pair, hb: World) -> None:
    account, (pid,), _ = hb.patient_account("family8")
    with hb.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    listed(pair, SubjectType.IDENTITY, patient.id_number, kind=EntryKind.NO_SHOW_SUSPENSION)
    assert hb.platform.run(booking.book, account, pid, hb.session_ids[0], CTX).booking.id


def test_the_desk_reviews_held_entries_over_the_api(pair: Pair, hb: World) -> None:
    from fastapi.testclient import TestClient

    from fairslot.web.app import create_app

    account, pid, patient_token, entry = _booking_held(pair, hb, "family12")
    run = hb.platform.run
    client = TestClient(create_app(hb.platform))
    desk = {"Authorization": f"Bearer {hb.token(Role.REGISTRATION)}"}
    patient_auth = {"Authorization": f"Bearer {patient_token}"}
    assert client.get("/api/v1/staff/consortium/reviews",
                      headers=patient_auth).status_code == 403
    [held] = client.get("/api/v1/staff/consortium/reviews", headers=desk).json()
    assert (held["entry"], held["status"], held["point"], held["patient_id"]) == (
        entry.ref, "pending", "booking", pid)
    issuer, number = entry.ref.split("/")
    url = f"/api/v1/staff/consortium/reviews/{issuer}/{number}"
    assert client.post(url, json={"clear": True, "note": ""}, headers=desk).status_code == 422
    assert client.post("/api/v1/staff/consortium/reviews/hosp-a/999999",
                       json={"clear": True, "note": "x"}, headers=desk).status_code == 404
    decided = client.post(url, json={"clear": True, "note": "ID card checked at window 2"},
                          headers=desk)
    assert decided.status_code == 200 and decided.json()["status"] == "cleared"
    assert decided.json()["decided_by"] == "staff:staff-registration"
    assert client.get("/api/v1/staff/consortium/reviews", headers=desk).json() == []
    assert run(booking.book, account, pid, hb.session_ids[0], CTX).booking.id


def test_an_id_number_without_its_name_does_not_say_whether_it_is_listed(
        pair: Pair, hb: World) -> None:
    person = hb.residents.pop()
    listed(pair, SubjectType.IDENTITY, person.id_number)
    account = account_without_patients(hb, "prober1")
    with pytest.raises(FairslotError) as refused:
        hb.platform.run(accounts.add_patient, account, person.id_number, "王小明", None, CTX)
    assert refused.value.code == "identity_not_verified"
    with pytest.raises(ConsortiumRefused):
        hb.platform.run(accounts.add_patient, account, person.id_number, person.name, None,
                        CTX)


def test_the_desk_page_shows_held_entries_and_clears_one(pair: Pair, hb: World) -> None:
    """The patient is told to ask the desk: the desk's page lists the review (masked) and
    decides it, in the clerk's language."""
    from fastapi.testclient import TestClient

    from fairslot.web.app import create_app
    from tests.web.test_pages import HTML, alert, fields, log_in

    account, pid, _, entry = _booking_held(pair, hb, "family13")
    with hb.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    with TestClient(create_app(hb.platform), headers=HTML) as client:
        log_in(client, "staff-registration")
        page = client.get("/desk").text
        assert "其他医院的共享名单记录：待审核" in page and entry.ref in page
        assert patient.id_number not in page and patient.name not in page
        form = fields(page, "/desk/reviews")
        empty = client.post("/desk/reviews", data=form | {"decision": "clear", "note": " "},
                            follow_redirects=False)
        assert empty.status_code == 422 and "500 字" in alert(empty.text), alert(empty.text)
        done = client.post("/desk/reviews", data=form | {"decision": "clear",
                                                         "note": "ID card checked"},
                           follow_redirects=False)
        assert done.status_code == 303
        assert entry.ref not in client.get(done.headers["location"]).text
    assert [r.status for r in pair.b.store.reviews()] == ["cleared"]
    assert hb.platform.run(booking.book, account, pid, hb.session_ids[0], CTX).booking.id

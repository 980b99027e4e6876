"""Due process across two hospitals: a patient at B sees on their page and in the API that
A's entry affects them (kind, issuer, expiry and what B does; never A's evidence), appeals;
the appeal reaches A, A withdraws, the withdrawal reaches B with B's next sync and the entry
stops applying at both; every step is in both hospitals' audit logs."""

from __future__ import annotations

import dataclasses
import datetime as dt

import httpx
import pytest
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform
from fairslot.consortium import EntryKind, NewEntry, RingRole, SubjectType
from fairslot.services import booking
from fairslot.services.context import RequestContext
from fairslot.services.shared_list import ConsortiumRefused
from fairslot.web.app import create_app
from tests.conftest import World, build_world
from tests.consortium.conftest import Pair
from tests.web.test_pages import submit

CTX = RequestContext(ip="203.0.113.78")
EVIDENCE = "case 2026-31: 14 bookings from one payer, CCTV at window 3"


@pytest.fixture
def hb(pair: Pair, platform: Platform) -> World:
    return build_world(dataclasses.replace(platform, consortium=pair.b))


def test_a_patient_sees_the_entry_appeals_and_the_withdrawal_stops_it_at_both(
        pair: Pair, hb: World) -> None:
    account, (pid,), token = hb.patient_account("family9")
    _, (_other_pid,), other_token = hb.patient_account("family10")
    with hb.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    now = pair.clock.now()
    [entry] = pair.a.publish([NewEntry(
        EntryKind.RING_MEMBER, RingRole.HELD_IDENTITY, 3, now, now + dt.timedelta(days=180),
        SubjectType.IDENTITY, patient.id_number, EVIDENCE)], actor="investigator-zhao")
    pair.b.sync()
    with pytest.raises(ConsortiumRefused):
        hb.platform.run(booking.book, account, pid, hb.session_ids[0], CTX)

    client = TestClient(create_app(hb.platform))
    bearer = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/me/shared-list", headers=bearer)
    assert listed.status_code == 200
    [item] = listed.json()
    assert (item["entry"], item["issuer"], item["kind"], item["action"], item["patient_id"]) == (
        entry.ref, "hosp-a", "ring_member", "refuse", pid)
    assert "CCTV" not in listed.text and patient.id_number not in listed.text
    other = client.get("/api/v1/me/shared-list",
                       headers={"Authorization": f"Bearer {other_token}"})
    assert other.json() == []  # another family sees nothing of it
    stolen = client.post("/api/v1/me/shared-list/appeals", json={
        "entry": entry.ref, "message": "not mine"},
        headers={"Authorization": f"Bearer {other_token}"})
    assert stolen.status_code == 404 and stolen.json()["code"] == "consortium_no_entry"

    client.cookies.set("fs_session", token)
    page = client.get("/me").text
    assert "hosp-a" in page and "/me/appeals" in page and "CCTV" not in page
    sent = submit(client, "/me", "/me/appeals",
                  message="My ID card was stolen in January; police report 2026-0113.")
    assert sent.status_code == 303 and "done=appealed" in sent.headers["location"]
    [out] = pair.b.store.appeals(direction="out")
    assert (out.status, out.patient_id) == ("delivered", pid)
    [received] = pair.a.store.appeals(direction="in")
    assert received.member == "hosp-b" and "police report" in received.message
    assert patient.id_number not in repr(dataclasses.astuple(received))
    again = client.get("/api/v1/me/shared-list", headers=bearer).json()
    assert [a["status"] for a in again[0]["appeals"]] == ["delivered"]

    pair.a.decide_appeal(received.ref, withdraw=True, note="identity theft confirmed",
                         actor="investigator-zhao")
    assert pair.a.check(identity=patient.id_number) == []
    pair.b.sync()
    assert pair.b.check(identity=patient.id_number) == []
    assert client.get("/api/v1/me/shared-list", headers=bearer).json() == []
    assert pair.b.store.appeal(out.ref).status == "withdrawn"  # type: ignore[union-attr]
    assert hb.platform.run(booking.book, account, pid, hb.session_ids[0], CTX).booking.id

    a_log = [r["action"] for r in pair.a.store.audit_log(100)]
    b_log = [r["action"] for r in pair.b.store.audit_log(100)]
    assert {"entry.published", "appeal.in.received", "entry.withdrawn"} <= set(a_log), a_log
    assert {"appeal.out.pending", "appeal.updated", "feed.applied"} <= set(b_log), b_log
    for row in pair.a.store.audit_log(100) + pair.b.store.audit_log(100):
        assert patient.id_number not in repr(row)


def test_an_appeal_waits_while_the_issuer_is_down_and_sync_delivers_it(
        pair: Pair, hb: World) -> None:
    _account, (pid,), token = hb.patient_account("family11")
    with hb.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    now = pair.clock.now()
    [entry] = pair.a.publish([NewEntry(
        EntryKind.RING_MEMBER, RingRole.MEMBER, 2, now, now + dt.timedelta(days=30),
        SubjectType.IDENTITY, patient.id_number, EVIDENCE)], actor="investigator")
    pair.b.sync()
    client = TestClient(create_app(hb.platform))
    bearer = {"Authorization": f"Bearer {token}"}
    real_http = pair.b._http

    def refuse_to_connect(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    pair.b._http = httpx.Client(transport=httpx.MockTransport(refuse_to_connect))  # A is down
    try:
        sent = client.post("/api/v1/me/shared-list/appeals",
                           json={"entry": entry.ref, "message": "wrong person"},
                           headers=bearer)
    finally:
        pair.b._http = real_http
    assert sent.status_code == 201 and sent.json()["status"] == "pending"
    assert pair.a.store.appeals(direction="in") == []
    pair.b.sync()
    [received] = pair.a.store.appeals(direction="in")
    assert received.message == "wrong person"
    assert pair.b.store.appeal(sent.json()["ref"]).status == "delivered"  # type: ignore[union-attr]

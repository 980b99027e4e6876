"""Hold new bookings for review: a monitoring decision makes the account's next booking
wait for an investigator (not payable, the patient told); approved, the patient pays as
usual; rejected, the slot is released; unreviewed, the hold lapses at no cost."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.monitoring.scenarios import Entity
from fairslot.services import booking, rules
from fairslot.web.app import create_app
from tests.conftest import World, api_book, api_pay

PAYER = "alipay:ring@example.com"


def _client(world: World) -> TestClient:
    platform = dataclasses.replace(
        world.platform,
        settings=world.platform.settings.model_copy(update={"monitor_mode": "embedded"}))
    return TestClient(create_app(platform))


def _held_booking(world: World, client: TestClient, name: str) -> tuple[Any, str, int, dict]:
    account, (patient_id,), token = world.patient_account(name)
    monitoring = client.app.state.monitoring  # type: ignore[attr-defined]
    monitoring.monitor.decide("hold_bookings", Entity("account", str(account.id)),
                              dt.timedelta(days=7), "li", "pays for eleven strangers")
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    r = api_book(client, token, world.session_ids[0], patient_id, clock)
    assert r.status_code == 201, r.text
    held = r.json()
    assert held["status"] == "held" and held["review"] == "pending"
    return account, token, patient_id, held


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_held_booking_waits_for_an_investigator_then_is_paid(world: World) -> None:
    client = _client(world)
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    with client:
        _, token, _, held = _held_booking(world, client, "ring.buyer")
        # Not confirmed: it cannot be paid yet, and the patient is told.
        r = api_pay(client, token, held["id"], PAYER, clock)
        assert r.status_code == 409 and r.json()["code"] == "under_review", r.text
        inbox = client.get("/api/v1/me/inbox", headers=_auth(token)).json()
        assert any("being checked" in n["text"] for n in inbox)
        # Another account books as usual.
        _, (other,), other_token = world.patient_account("a.neighbour")
        r = api_book(client, other_token, world.session_ids[0], other, clock)
        assert r.status_code == 201 and r.json()["review"] is None

        investigator = _auth(world.token(Role.INVESTIGATOR))
        assert client.get("/api/v1/investigation/reviews",
                          headers=_auth(world.token(Role.OPERATOR))).status_code == 403
        queue = client.get("/api/v1/investigation/reviews", headers=investigator).json()
        assert [b["id"] for b in queue] == [held["id"]]
        r = client.post(f"/api/v1/investigation/reviews/{held['id']}", headers=investigator,
                        json={"approve": True, "reason": ""})
        assert r.status_code == 422  # a review says why
        r = client.post(f"/api/v1/investigation/reviews/{held['id']}", headers=investigator,
                        json={"approve": True, "reason": "a family's carer; checked by phone"})
        assert r.status_code == 200 and r.json()["review"] == "approved", r.text
        assert client.get("/api/v1/investigation/reviews", headers=investigator).json() == []
        r = api_pay(client, token, held["id"], PAYER, clock)
        assert r.status_code == 200 and r.json()["status"] == "paid", r.text
        kinds = [e["kind"] for e in client.get(
            "/api/v1/investigation/events?limit=50", headers=investigator).json()]
        assert "booking.review_approved" in kinds


def test_a_rejected_booking_releases_its_slot(world: World) -> None:
    client = _client(world)
    with client:
        free = client.get(f"/api/v1/sessions/{world.session_ids[0]}").json()["free"]
        _, token, _, held = _held_booking(world, client, "ring.member")
        assert client.get(f"/api/v1/sessions/{world.session_ids[0]}").json()["free"] == \
            free - 1
        r = client.post(f"/api/v1/investigation/reviews/{held['id']}",
                        headers=_auth(world.token(Role.INVESTIGATOR)),
                        json={"approve": False, "reason": "one of the launder ring"})
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["review"]) == ("cancelled", "rejected")
        assert client.get(f"/api/v1/sessions/{world.session_ids[0]}").json()["free"] == free
        inbox = client.get("/api/v1/me/inbox", headers=_auth(token)).json()
        assert any("not confirmed after review" in n["text"] for n in inbox)


def test_an_unreviewed_hold_lapses_safely(world: World) -> None:
    client = _client(world)
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    with client:
        account, _, patient_id, held = _held_booking(world, client, "slow.review")
        deadline = dt.datetime.fromisoformat(held["pay_by"])
        clock.set(deadline - dt.timedelta(seconds=1))
        assert world.platform.run_job(booking.expire_overdue) == 0
        clock.set(deadline + dt.timedelta(seconds=1))
        assert world.platform.run_job(booking.expire_overdue) == 1
        mine = world.platform.run(booking.my_bookings, account)
        assert [(v.booking.status, v.booking.review) for v in mine] == [
            ("cancelled", "lapsed")]
        # Not the patient's fault: no lapsed hold counts against their credit.
        with world.platform.uow() as uow:
            facts = rules.facts_for(uow, world.platform.deps, patient_id, account)
        assert facts.lapsed_holds == []

"""The desk's identity claim needs four eyes.

Before: a clerk typed an ID number, a name and a username, and the identity was that
account's at once, whoever had registered or claimed it: a corrupt clerk could hand a
victim's identity (and everything done under it) to a ring's account, and the victim heard
of it only afterwards. Now the claim is recorded pending with the clerk, a second member of
staff (an operator, not the clerk) approves or rejects it before it expires, and the
identity's owner is told, in their language, when it is made and when it is approved."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError
from fairslot.services import accounts, identities
from fairslot.services.context import RequestContext
from fairslot.web.app import create_app
from tests.conftest import World
from tests.web.test_pages import HTML, alert, log_in, submit
from tests.web.test_pages import platform as pages_platform  # noqa: F401 (fixture)

CTX = RequestContext(ip="198.51.100.21")
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _refusal(call: object, *args: object, **kwargs: object) -> FairslotError:
    with pytest.raises(FairslotError) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    return refused.value


def _owned_identity(world: World) -> tuple[Account, int, str, str]:
    """An identity its own person claimed from their account (English messages)."""
    run = world.platform.run
    owner, (patient_id,), _ = world.patient_account("true.owner", phone="+8613500000001")
    run(accounts.set_language, owner, "en")
    with world.platform.uow() as uow:
        patient = uow.patients.get(patient_id)
    assert patient is not None
    run(identities.claim, owner, patient.id_number, patient.name, CTX)
    return owner, patient_id, patient.id_number, patient.name


def _inbox(world: World, account: Account) -> list[tuple[str, str]]:
    with world.platform.uow() as uow:
        return [(n.kind, n.text) for n in uow.notifications.inbox(account.id or 0)]


def _holder(world: World, patient_id: int) -> int | None:
    with world.platform.uow() as uow:
        return uow.patients.holder(patient_id)


def _events(world: World, kind: str) -> list[dict[str, object]]:
    with world.platform.uow() as uow:
        return [dict(e.detail) for e in reversed(uow.events.recent(500, kind))]


def test_a_clerks_claim_waits_for_a_second_member_of_staff(world: World) -> None:
    run = world.platform.run
    owner, patient_id, id_number, name = _owned_identity(world)
    crony, _, _ = world.patient_account("ring.crony", patients=0)
    clerk = world.staff[Role.REGISTRATION]

    asked = run(identities.claim_at_desk, clerk, id_number, name, "ring.crony", CTX)
    assert asked.status == "pending" and asked.requested_by == clerk.username
    # Nothing changed hands yet, and the owner heard of it at once, in English.
    assert _holder(world, patient_id) == owner.id
    told = _inbox(world, owner)
    assert told[0][0] == "identity.claim_requested"
    assert "second member of staff" in told[0][1] and "ri*******" in told[0][1]
    assert "ring.crony" not in told[0][1]
    # A second claim on the same identity waits for the first to be decided.
    assert _refusal(run, identities.claim_at_desk, clerk, id_number, name, "ring.crony",
                    CTX).code == "claim_pending"
    # The clerk cannot decide it (a desk account is no approver) ...
    assert _refusal(run, identities.approve_desk_claim, clerk, asked.claim.id,
                    CTX).code == "forbidden_role"
    # ... and an operator who rejects it leaves the identity where it was.
    operator = world.staff[Role.OPERATOR]
    assert [v.claim.id for v in run(identities.desk_claims, operator)] == [asked.claim.id]
    rejected = run(identities.reject_desk_claim, operator, asked.claim.id, CTX)
    assert rejected.status == "rejected" and rejected.claim.decided_by == operator.id
    assert _holder(world, patient_id) == owner.id
    assert not run(identities.desk_claims, operator)
    assert _refusal(run, identities.approve_desk_claim, operator, asked.claim.id,
                    CTX).code == "claim_decided"
    assert crony.id not in [a for a, _, _ in _managers(world, patient_id)]
    assert [d["claim"] for d in _events(world, "identity.claim_requested")] == [asked.claim.id]
    assert [d["requested_by"] for d in _events(world, "identity.claim_rejected")] \
        == [clerk.id]


def _managers(world: World, patient_id: int) -> list[tuple[int, str, object]]:
    with world.platform.uow() as uow:
        return list(uow.patients.managers(patient_id))


def test_an_approved_claim_moves_the_identity_and_tells_its_owner(world: World) -> None:
    run = world.platform.run
    owner, patient_id, id_number, name = _owned_identity(world)
    person, _, _ = world.patient_account("real.person", patients=0)
    asked = run(identities.claim_at_desk, world.staff[Role.REGISTRATION], id_number, name,
                "real.person", CTX)
    operator = world.staff[Role.OPERATOR]
    done = run(identities.approve_desk_claim, operator, asked.claim.id, CTX)
    assert done.status == "approved" and _holder(world, patient_id) == person.id
    kinds = [k for k, _ in _inbox(world, owner)]
    # Told of the claim and of its approval (once: not again as "claimed by its holder").
    assert kinds == ["identity.claim_approved", "identity.claim_requested"]
    assert "approved by a second member of staff" in _inbox(world, owner)[0][1]
    approved = _events(world, "identity.claim_approved")
    assert approved == [{"claim": asked.claim.id, "requested_by":
                         world.staff[Role.REGISTRATION].id, "for_account": person.id}]
    claimed = _events(world, "identity.claimed")[-1]
    assert claimed["approved_by"] == operator.id and claimed["took_over"] is True


def test_nobody_approves_their_own_claim(world: World) -> None:
    run = world.platform.run
    owner, patient_id, id_number, name = _owned_identity(world)
    someone, _, _ = world.patient_account("someone", patients=0)
    admin = world.staff[Role.ADMIN]  # may act at the desk and approve: not both at once
    asked = run(identities.claim_at_desk, admin, id_number, name, "someone", CTX)
    refused = _refusal(run, identities.approve_desk_claim, admin, asked.claim.id, CTX)
    assert refused.code == "claim_own" and refused.status == 403
    assert _refusal(run, identities.reject_desk_claim, admin, asked.claim.id,
                    CTX).code == "claim_own"
    assert _holder(world, patient_id) == owner.id
    assert run(identities.approve_desk_claim, world.staff[Role.OPERATOR], asked.claim.id,
               CTX).status == "approved"
    assert _holder(world, patient_id) == someone.id


def test_a_claim_nobody_approves_expires(world: World) -> None:
    run = world.platform.run
    owner, patient_id, id_number, name = _owned_identity(world)
    world.patient_account("late.person", patients=0)
    clerk, operator = world.staff[Role.REGISTRATION], world.staff[Role.OPERATOR]
    asked = run(identities.claim_at_desk, clerk, id_number, name, "late.person", CTX)
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(world.platform.settings.desk_claim_hours * 3600 + 1)
    assert not run(identities.desk_claims, operator)
    assert _refusal(run, identities.approve_desk_claim, operator, asked.claim.id,
                    CTX).code == "claim_expired"
    assert _holder(world, patient_id) == owner.id
    with world.platform.uow() as uow:
        stored = uow.patients.claim(asked.claim.id)
    assert stored is not None and stored.status == "expired"
    # The desk may make it again.
    again = run(identities.claim_at_desk, clerk, id_number, name, "late.person", CTX)
    assert again.status == "pending" and again.claim.id != asked.claim.id


@SQLITE_ONLY
def test_the_api_records_lists_and_decides_claims(world: World) -> None:
    _owner, patient_id, id_number, name = _owned_identity(world)
    person, _, _ = world.patient_account("api.person", patients=0)
    client = TestClient(create_app(world.platform))

    def as_(role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {world.token(role)}"}

    r = client.post("/api/v1/staff/identity-claims", headers=as_(Role.REGISTRATION),
                    json={"id_number": id_number, "name": name, "username": "api.person"})
    assert r.status_code == 201, r.text
    claim = r.json()
    assert claim["status"] == "pending" and claim["account"] == "api.person"
    assert id_number not in r.text and claim["patient"]["id_number"].endswith(id_number[-4:])
    again = client.post("/api/v1/staff/identity-claims", headers=as_(Role.REGISTRATION),
                        json={"id_number": id_number, "name": name, "username": "api.person"})
    assert again.status_code == 409 and again.json()["code"] == "claim_pending"
    assert again.headers["content-type"] == "application/problem+json"
    listed = client.get("/api/v1/staff/identity-claims", headers=as_(Role.OPERATOR)).json()
    assert [c["id"] for c in listed] == [claim["id"]]
    url = f"/api/v1/staff/identity-claims/{claim['id']}/approve"
    assert client.post(url, headers=as_(Role.REGISTRATION)).json()["code"] == "forbidden_role"
    r = client.post(url, headers=as_(Role.OPERATOR))
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert _holder(world, patient_id) == person.id
    r = client.post(url, headers=as_(Role.OPERATOR))
    assert r.status_code == 409 and r.json()["code"] == "claim_decided"
    missing = client.post("/api/v1/staff/identity-claims/999/reject",
                          headers=as_(Role.OPERATOR))
    assert missing.status_code == 404 and missing.json()["code"] == "claim_not_found"


@pytest.fixture
def platform(pages_platform: Platform) -> Platform:  # noqa: F811
    return pages_platform


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), headers=HTML) as test_client:
        yield test_client


@SQLITE_ONLY
def test_the_desk_page_records_a_claim_and_the_operator_page_approves_it(
        client: TestClient, world: World) -> None:
    _owner, patient_id, id_number, name = _owned_identity(world)
    person, _, _ = world.patient_account("page.person", patients=0)
    log_in(client, world.staff[Role.REGISTRATION].username)
    r = submit(client, "/desk", "/desk/identity-claim", id_number=id_number, name=name,
               username="page.person")
    assert r.status_code == 303, alert(r.text)
    assert "第二名工作人员批准" in client.get(r.headers["location"]).text
    r = submit(client, "/desk", "/desk/identity-claim", id_number=id_number, name=name,
               username="page.person")
    assert r.status_code == 409 and "等待第二名工作人员" in alert(r.text)
    assert _holder(world, patient_id) != person.id

    client.cookies.clear()
    log_in(client, world.staff[Role.OPERATOR].username)
    page = client.get("/operator/identity-claims")
    assert page.status_code == 200 and "page.person" in page.text
    assert id_number not in page.text and name not in page.text  # masked
    (claim,) = world.platform.run(identities.desk_claims, world.staff[Role.OPERATOR])
    r = submit(client, "/operator/identity-claims", f"/operator/identity-claims/{claim.claim.id}",
               decision="approve")
    assert r.status_code == 303, alert(r.text)
    assert "认领已批准" in client.get(r.headers["location"]).text
    assert _holder(world, patient_id) == person.id
    assert "page.person" not in client.get("/operator/identity-claims").text

"""Identity on evidence: linking a person needs the consent of the phone registered to their
identity, the person can claim it (from their account, or at the desk with the ID card), and
then sees and undoes everything done under it.

Before: an account linked a real person's ID number and name and entered their draw first;
the person's own account got ``already_entered`` and could neither see nor withdraw that
entry; a gang booked a slot under a victim's identity that the victim could not see or
cancel."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.domain.errors import Conflict, FairslotError
from fairslot.services import accounts, booking, identities, release
from fairslot.services.context import RequestContext
from fairslot.web.app import create_app
from tests.conftest import World
from tests.identity.helpers import last_code
from tests.integration.test_release import DrawWorld, _draw_world

CTX = RequestContext(ip="198.51.100.7")


def _refusal(call: object, *args: object, **kwargs: object) -> FairslotError:
    with pytest.raises(FairslotError) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    return refused.value


def test_a_second_account_needs_the_registered_phones_code_to_link(world: World) -> None:
    run = world.platform.run
    son, (mother_id,), _ = world.patient_account("son", phone="+8613900000001")
    stranger, _, _ = world.patient_account("stranger", patients=0, phone="+8613900000002")
    with world.platform.uow() as uow:
        mother = uow.patients.get(mother_id)
        assert mother is not None and mother.registered_account_id == son.id
    refused = _refusal(run, accounts.add_patient, stranger, mother.id_number, mother.name,
                       None, CTX)
    assert refused.code == "consent_required" and refused.extra["sent_to"] == "139****0001"
    # The code went to the son's phone, not to the stranger's.
    code = last_code(world.platform, "+8613900000001", "link.consent")
    with pytest.raises(AssertionError):
        last_code(world.platform, "+8613900000002", "link.consent")
    # A guess is wrong; the code read out by the son is consent.
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    assert _refusal(run, accounts.add_patient, stranger, mother.id_number, mother.name, None,
                    CTX, consent_code=wrong).code == "code_wrong"
    linked = run(accounts.add_patient, stranger, mother.id_number, mother.name, None, CTX,
                 consent_code=code)
    assert linked.id == mother_id
    assert [p.id for p in run(accounts.list_patients, stranger)] == [mother_id]


def test_a_code_for_one_identity_does_not_link_another(world: World) -> None:
    run = world.platform.run
    _a, (first_id,), _ = world.patient_account("holder.a", phone="+8613900000011")
    _b, (second_id,), _ = world.patient_account("holder.b", phone="+8613900000011")
    asker, _, _ = world.patient_account("asker", patients=0, phone="+8613900000012")
    with world.platform.uow() as uow:
        first, second = uow.patients.get(first_id), uow.patients.get(second_id)
    assert first is not None and second is not None
    _refusal(run, accounts.add_patient, asker, first.id_number, first.name, None, CTX)
    code = last_code(world.platform, "+8613900000011", "link.consent")
    refused = _refusal(run, accounts.add_patient, asker, second.id_number, second.name, None,
                       CTX, consent_code=code)
    assert refused.code in ("code_wrong", "code_expired")


def test_a_squatters_booking_and_entry_are_seen_and_undone_by_the_person(
        platform: object, clock: FixedClock) -> None:
    dw: DrawWorld = _draw_world(platform, clock, people=1)  # type: ignore[arg-type]
    world, run = dw.world, dw.platform.run
    victim_identity = world.residents.pop()
    squatter, _, _ = world.patient_account("gang01", patients=0, phone="+8613700000001")
    victim, _, _ = world.patient_account("victim", patients=0, phone="+8613700000002")
    clerk = world.staff[Role.REGISTRATION]

    # The squatter links the victim first, enters the draw and books a slot under them.
    squatted = run(accounts.add_patient, squatter, victim_identity.id_number,
                   victim_identity.name, None, CTX)
    entry = run(release.enter, squatter, dw.round_id, squatted.id or 0, dw.sessions, CTX)
    held = run(booking.book, squatter, squatted.id or 0, world.session_ids[1], CTX)

    # The victim's own account can neither link nor claim without the squatter's phone...
    assert _refusal(run, accounts.add_patient, victim, victim_identity.id_number,
                    victim_identity.name, None, CTX).code == "consent_required"
    assert _refusal(run, identities.claim, victim, victim_identity.id_number,
                    victim_identity.name, CTX).code == "consent_required"
    assert last_code(world.platform, "+8613700000001", "claim.consent")  # to the squatter
    # ... so they take it back at the desk, with the ID card.
    # (the desk records the claim; a second member of staff approves it)
    asked = run(identities.claim_at_desk, clerk, victim_identity.id_number,
                victim_identity.name, "victim", CTX)
    run(identities.approve_desk_claim, world.staff[Role.OPERATOR], asked.claim.id, CTX)
    assert _refusal(run, identities.claim, squatter, victim_identity.id_number,
                    victim_identity.name, CTX).code == "identity_claimed"

    client = TestClient(create_app(dw.platform))
    token = run(accounts.issue_token, victim.id or 0)
    headers = {"Authorization": f"Bearer {token}"}
    seen = client.get("/api/v1/me/identity", headers=headers).json()
    assert len(seen) == 1
    assert [b["id"] for b in seen[0]["bookings"]] == [held.booking.id]
    assert [e["id"] for e in seen[0]["entries"]] == [entry.id]
    managers = {m["own"]: m for m in seen[0]["managers"]}
    assert managers[True]["username"] == "victim" and managers[False]["username"] == "ga****"

    # The person cancels the squatter's booking (no offence of theirs) and withdraws the
    # squatter's entry, then enters themselves.
    cancelled = run(booking.cancel, victim, held.booking.id or 0, CTX)
    assert cancelled.booking.status.value == "cancelled" and not cancelled.booking.late_cancel
    run(release.withdraw, victim, entry.id, CTX)
    mine = run(release.enter, victim, dw.round_id, squatted.id or 0, dw.sessions, CTX)
    assert mine.entry.account_id == victim.id and not mine.entry.withdrawn

    # The squatter's link is removed; linking again needs the victim's phone.
    r = client.delete(f"/api/v1/me/identity/{squatted.id}/links/{squatter.id}",
                      headers=headers)
    assert r.status_code == 204
    assert run(accounts.list_patients, squatter) == []
    refused = _refusal(run, accounts.add_patient, squatter, victim_identity.id_number,
                       victim_identity.name, None, CTX)
    assert refused.code == "consent_required" and refused.extra["sent_to"] == "137****0002"
    assert _refusal(run, release.enter, squatter, dw.round_id, squatted.id or 0, dw.sessions,
                    CTX).code == "patient_not_found"


def test_a_person_claims_an_identity_nobody_registered_at_once(world: World) -> None:
    run = world.platform.run
    me, _, _ = world.patient_account("own.self", patients=0)
    person = world.residents.pop()
    claimed = run(identities.claim, me, person.id_number, person.name, CTX)
    assert claimed.claimed_at is not None and claimed.registered_account_id == me.id
    assert [p.id for p in run(accounts.list_patients, me)] == [claimed.id]
    again = run(identities.claim, me, person.id_number, person.name, CTX)
    assert again.id == claimed.id
    other, _, _ = world.patient_account("other.one", patients=0)
    with pytest.raises(Conflict):
        run(identities.claim, other, person.id_number, person.name, CTX)


def test_claiming_through_the_registered_phones_code(world: World) -> None:
    run = world.platform.run
    daughter, (father_id,), _ = world.patient_account("daughter", phone="+8613600000001")
    father, _, _ = world.patient_account("father", patients=0, phone="+8613600000002")
    with world.platform.uow() as uow:
        person = uow.patients.get(father_id)
    assert person is not None
    assert _refusal(run, identities.claim, father, person.id_number, person.name,
                    CTX).code == "consent_required"
    code = last_code(world.platform, "+8613600000001", "claim.consent")
    run(identities.claim, father, person.id_number, person.name, CTX, consent_code=code)
    # The daughter still manages her father and is told he claimed his identity.
    assert [p.id for p in run(accounts.list_patients, daughter)] == [father_id]
    with world.platform.uow() as uow:
        told = uow.notifications.inbox(daughter.id or 0)
    assert told and told[0].kind == "identity.claimed"

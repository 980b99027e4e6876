"""A person's own identity: claim it (from their account, or at the desk with the ID card),
then see and undo everything done under it (docs/identity.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from fairslot.domain.accounts import Role
from fairslot.services import booking, identities, release
from fairslot.web.api.rounds import EntryOut
from fairslot.web.deps import CallerDep, DepsDep, UowDep, context
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.routing import ReleasingRoute
from fairslot.web.schemas import BookingOut, PatientOut, Strict

__all__ = ["router"]

router = APIRouter(route_class=ReleasingRoute, responses=PROBLEM_RESPONSES)
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


class ClaimIn(Strict):
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    consent_code: Annotated[str | None, Field(max_length=12)] = None
    """The code sent to the identity's registered phone, after ``consent_required``."""


class DeskClaimIn(Strict):
    id_number: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=60)]
    username: Annotated[str, Field(min_length=1, max_length=64)]
    """The person's own patient account, which is to hold the identity."""


class ManagerOut(BaseModel):
    account_id: int
    username: str
    own: bool


class IdentityOut(BaseModel):
    patient: PatientOut
    bookings: list[BookingOut]
    entries: list[EntryOut]
    managers: list[ManagerOut]
    """Every account that manages the identity now (yours included)."""


def _masked(username: str, own: bool) -> str:
    return username if own else username[:2] + "*" * max(1, len(username) - 2)


@router.post("/me/identity", status_code=201, tags=["patients"])
def claim(body: ClaimIn, request: Request, caller: CallerDep, uow: UowDep,
          deps: DepsDep) -> PatientOut:
    """Claim your own identity. Done at once when no other account's phone speaks for it;
    otherwise a code goes to the registered phone (``consent_required``) or, if another
    account claimed it already, ``identity_claimed``: bring the ID card to the desk. The
    real-name check is counted like a log-in (``identity_checks_limited``)."""
    account = caller.account(Role.PATIENT)
    return PatientOut.of(identities.claim(uow, deps, account, body.id_number, body.name,
                                          context(request), consent_code=body.consent_code))


@router.get("/me/identity", tags=["patients"])
def my_identity(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[IdentityOut]:
    """The identities you hold, with every booking and draw entry made under them by any
    account, and the accounts that manage them."""
    account = caller.account(Role.PATIENT)
    out = []
    for v in identities.held(uow, deps, account):
        out.append(IdentityOut(
            patient=PatientOut.of(v.patient),
            bookings=[BookingOut.of(b) for b in booking.views(uow, v.bookings)],
            entries=[EntryOut.of(release.EntryView(e)) for e in v.entries],
            managers=[ManagerOut(account_id=a, username=_masked(u, own), own=own)
                      for a, u, own in v.managers]))
    return out


@router.delete("/me/identity/{patient_id}/links/{account_id}", status_code=204,
               tags=["patients"])
def revoke_link(patient_id: IdPath, account_id: IdPath, request: Request, caller: CallerDep,
                uow: UowDep, deps: DepsDep) -> Response:
    """Remove another account's link to an identity you hold."""
    account = caller.account(Role.PATIENT)
    identities.revoke_link(uow, deps, account, patient_id, account_id, context(request))
    return Response(status_code=204)


class DeskClaimOut(BaseModel):
    id: int
    status: str
    """pending, approved, rejected or expired."""
    patient: PatientOut
    account: str
    """The patient account that is to hold the identity."""
    requested_by: str
    """The clerk who made the claim."""
    created_at: dt.datetime
    expires_at: dt.datetime
    decided_by: int | None
    decided_at: dt.datetime | None

    @classmethod
    def of(cls, v: identities.DeskClaimView) -> DeskClaimOut:
        c = v.claim
        return cls(id=c.id, status=v.status, patient=PatientOut.of(v.patient),
                   account=v.account, requested_by=v.requested_by, created_at=c.created_at,
                   expires_at=c.expires_at, decided_by=c.decided_by,
                   decided_at=c.decided_at)


@router.post("/staff/identity-claims", status_code=201, tags=["desk"])
def claim_at_desk(body: DeskClaimIn, request: Request, caller: CallerDep, uow: UowDep,
                  deps: DepsDep) -> DeskClaimOut:
    """At the desk, with the person and their ID card present: ask to give the identity to
    the person's own account, whoever registered or claimed it before. The claim is
    recorded ``pending``: a second member of staff (an operator) approves it within
    ``FAIRSLOT_DESK_CLAIM_HOURS``; the identity's current owner is told at once.
    ``claim_pending`` if the identity has a pending claim already, ``identity_held`` if the
    account holds it already."""
    staff = caller.account(Role.REGISTRATION)
    return DeskClaimOut.of(identities.claim_at_desk(uow, deps, staff, body.id_number,
                                                    body.name, body.username,
                                                    context(request)))


@router.get("/staff/identity-claims", tags=["desk"])
def desk_claims(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[DeskClaimOut]:
    """The desk's identity claims waiting for a second member of staff, oldest first."""
    staff = caller.account(Role.OPERATOR)
    return [DeskClaimOut.of(v) for v in identities.desk_claims(uow, deps, staff)]


@router.post("/staff/identity-claims/{claim_id}/approve", tags=["desk"])
def approve_desk_claim(claim_id: IdPath, request: Request, caller: CallerDep, uow: UowDep,
                       deps: DepsDep) -> DeskClaimOut:
    """Approve the desk's claim (not the clerk who made it: ``claim_own``): the identity
    goes to the account and its previous owner is told. ``claim_expired``,
    ``claim_decided``, ``claim_not_found``."""
    staff = caller.account(Role.OPERATOR)
    return DeskClaimOut.of(identities.approve_desk_claim(uow, deps, staff, claim_id,
                                                         context(request)))


@router.post("/staff/identity-claims/{claim_id}/reject", tags=["desk"])
def reject_desk_claim(claim_id: IdPath, request: Request, caller: CallerDep, uow: UowDep,
                      deps: DepsDep) -> DeskClaimOut:
    """Reject the desk's claim: nothing changes hands."""
    staff = caller.account(Role.OPERATOR)
    return DeskClaimOut.of(identities.reject_desk_claim(uow, deps, staff, claim_id,
                                                        context(request)))

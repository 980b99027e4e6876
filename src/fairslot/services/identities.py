"""A person's own identity: claiming it, then seeing and undoing what others did under it.

An identity is registered to the verified phone of the first account that linked it. The
person it belongs to claims it from their own account (after the same guarded real-name
check): at once when nobody's phone speaks for it yet or it is their own account's, with a
code to the registered phone otherwise, or at the registration desk with the ID card present
(which overrides whoever registered it first: this is how a person takes their identity
back from a squatter). A desk claim needs four eyes: the clerk records it, a second member
of staff (an operator) approves or rejects it before it expires, and the identity's owner
is told of both. The holder then sees every booking and draw entry made under the
identity, by any account, can cancel or withdraw each of them, and can remove other
accounts' links to it."""

from __future__ import annotations

import dataclasses
import datetime as dt

from fairslot.domain.accounts import Account, Patient, Role
from fairslot.domain.booking import Booking
from fairslot.domain.errors import Conflict, Forbidden, NotFound
from fairslot.domain.identity import Identity, mask_name
from fairslot.domain.rounds import Entry
from fairslot.services import accounts, notifications, realname, verification
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.repositories.accounts import IdentityClaim
from fairslot.storage.uow import UnitOfWork

__all__ = ["DeskClaimView", "IdentityView", "approve_desk_claim", "claim", "claim_at_desk",
           "desk_claims", "held", "holds", "reject_desk_claim", "revoke_link"]


@dataclasses.dataclass(frozen=True)
class IdentityView:
    patient: Patient
    bookings: list[Booking]
    entries: list[Entry]
    managers: list[tuple[int, str, bool]]
    """(account id, username, is the holder's own) of every account managing it now."""


def holds(uow: UnitOfWork, account: Account, patient_id: int) -> bool:
    """Whether ``account`` has claimed the identity of ``patient_id`` as its own."""
    return account.id is not None and uow.patients.holder(patient_id) == account.id


def _take(uow: UnitOfWork, deps: Deps, account: Account, patient: Patient,
          ctx: RequestContext, *, at_desk: Account | None = None,
          approved_by: Account | None = None, skip_notice: int | None = None) -> Patient:
    now = deps.clock.now()
    previous = patient.registered_account_id
    patient.registered_account_id = account.id
    patient.claimed_at = now
    if not uow.patients.is_managed_by(patient.id or 0, account.id or 0):
        uow.patients.link(account.id or 0, patient.id or 0, now)
    uow.events.append("identity.claimed", now, account_id=account.id, patient_id=patient.id,
                      detail={"at_desk": at_desk is not None,
                              "by": at_desk.id if at_desk is not None else None,
                              "approved_by": approved_by.id if approved_by else None,
                              "took_over": previous not in (None, account.id)},
                      **ctx.event_fields())
    for manager, _name, _at in uow.patients.managers(patient.id or 0):
        if manager not in (account.id, skip_notice):
            notifications.notify(uow, deps, manager, "identity.claimed",
                                 patient=mask_name(patient.name))
    return patient


def claim(uow: UnitOfWork, deps: Deps, account: Account, id_number: str, name: str,
          ctx: RequestContext, *, consent_code: str | None = None) -> Patient:
    """Claim one's own identity from one's own (phone-verified) account."""
    accounts.require_verified_phone(account)
    if account.role is not Role.PATIENT:
        raise Forbidden("only a patient account claims an identity", code="forbidden_role")
    identity = realname.checked_identity(uow, deps, account, id_number, name, ctx)
    uow.lock(("account", account.id or 0),
             ("identity", uow.keyring.blind_index("id_number", identity.id_number)))
    patient = uow.patients.by_id_number(identity.id_number)
    if patient is None:
        patient = accounts.verified_patient(uow, deps, identity)
    elif patient.claimed_at is not None:
        if patient.registered_account_id == account.id:
            return patient
        raise Conflict("this identity is claimed by another account; bring the ID card to the "
                       "registration desk to take it back", code="identity_claimed")
    else:
        accounts.require_consent(uow, deps, account, patient, consent_code,
                          verification.CLAIM)
    _take(uow, deps, account, patient, ctx)
    uow.commit()
    return patient


@dataclasses.dataclass(frozen=True)
class DeskClaimView:
    """A claim the desk made, as the second member of staff sees it."""

    claim: IdentityClaim
    patient: Patient
    account: str
    """The username of the account that is to hold the identity."""
    requested_by: str
    """The username of the clerk who made the claim."""
    status: str
    """pending, approved, rejected or expired (a pending claim past its time is expired)."""


def _claim_view(uow: UnitOfWork, deps: Deps, found: IdentityClaim) -> DeskClaimView:
    patient = uow.patients.get(found.patient_id)
    owner = uow.accounts.get(found.account_id)
    clerk = uow.accounts.get(found.requested_by)
    status = found.status
    if status == "pending" and not found.live(deps.clock.now()):
        status = "expired"
    assert patient is not None
    return DeskClaimView(found, patient, owner.username if owner else "-",
                         clerk.username if clerk else "-", status)


def _masked_username(username: str) -> str:
    return username[:2] + "*" * max(1, len(username) - 2)


def claim_at_desk(uow: UnitOfWork, deps: Deps, staff: Account, id_number: str, name: str,
                  username: str, ctx: RequestContext) -> DeskClaimView:
    """The registration desk, with the person and their ID card present, asks to give the
    identity to the person's own account (whoever registered or claimed it before). The
    claim is only recorded, pending: a second member of staff (an operator) must approve it
    within ``desk_claim_hours`` (``approve_desk_claim``), and the identity's current owner
    is told at once, so one clerk alone cannot hand a victim's identity to a ring."""
    accounts.require_role(staff, Role.REGISTRATION)
    identity = Identity.parse(id_number, name)
    owner = uow.accounts.by_username(username.strip().lower())
    if owner is None or owner.role is not Role.PATIENT or owner.disabled:
        raise NotFound("no patient account of that name", code="account_not_found")
    uow.lock(("account", owner.id or 0),
             ("identity", uow.keyring.blind_index("id_number", identity.id_number)))
    patient = accounts.verified_patient(uow, deps, identity)
    if holds(uow, owner, patient.id or 0):
        raise Conflict("that account holds this identity already", code="identity_held")
    now = deps.clock.now()
    if uow.patients.pending_claims(now, patient_id=patient.id):
        raise Conflict("a claim on this identity is waiting for a second member of staff; "
                       "have it approved or rejected first", code="claim_pending")
    expires = now + dt.timedelta(hours=deps.settings.desk_claim_hours)
    claim_id = uow.patients.add_claim(patient_id=patient.id or 0, account_id=owner.id or 0,
                                      requested_by=staff.id or 0, now=now,
                                      expires_at=expires)
    uow.events.append("identity.claim_requested", now, account_id=staff.id,
                      patient_id=patient.id,
                      detail={"claim": claim_id, "for_account": owner.id,
                              "owner_told": patient.registered_account_id
                              not in (None, owner.id)},
                      **ctx.event_fields())
    previous = patient.registered_account_id
    if previous not in (None, owner.id):
        notifications.notify(uow, deps, previous or 0, "identity.claim_requested",
                             patient_id=patient.id, at=notifications.when(deps, now),
                             expires=notifications.when(deps, expires),
                             requester=_masked_username(owner.username))
    uow.commit()
    found = uow.patients.claim(claim_id)
    assert found is not None
    return _claim_view(uow, deps, found)


def desk_claims(uow: UnitOfWork, deps: Deps, staff: Account) -> list[DeskClaimView]:
    """The desk's claims waiting for a second member of staff, oldest first."""
    accounts.require_role(staff, Role.OPERATOR)
    return [_claim_view(uow, deps, c)
            for c in uow.patients.pending_claims(deps.clock.now())]


def _decidable(uow: UnitOfWork, deps: Deps, staff: Account, claim_id: int,
               ctx: RequestContext) -> IdentityClaim:
    accounts.require_role(staff, Role.OPERATOR)
    found = uow.patients.claim(claim_id)
    if found is None:
        raise NotFound("no such identity claim", code="claim_not_found")
    now = deps.clock.now()
    if found.status != "pending":
        raise Conflict("this claim was decided already", code="claim_decided",
                       claim_status=found.status)
    if not found.live(now):
        if uow.patients.decide_claim(claim_id, "expired", now, None):
            uow.events.append("identity.claim_expired", now, account_id=staff.id,
                              patient_id=found.patient_id, detail={"claim": claim_id},
                              **ctx.event_fields())
            uow.commit()
        raise Conflict("this claim expired; the desk must make it again",
                       code="claim_expired")
    if found.requested_by == staff.id:
        raise Forbidden("a second member of staff must approve or reject this claim, not "
                        "the one who made it", code="claim_own")
    return found


def approve_desk_claim(uow: UnitOfWork, deps: Deps, staff: Account, claim_id: int,
                       ctx: RequestContext) -> DeskClaimView:
    """A second member of staff (an operator, not the clerk who made it) approves the
    desk's claim: the identity goes to the person's account, its previous owner is told."""
    found = _decidable(uow, deps, staff, claim_id, ctx)
    patient = uow.patients.get(found.patient_id)
    owner = uow.accounts.get(found.account_id)
    if patient is None or owner is None or owner.disabled:
        raise NotFound("the claim's account is gone or disabled", code="account_not_found")
    uow.lock(("account", owner.id or 0),
             ("identity", uow.keyring.blind_index("id_number", patient.id_number)))
    now = deps.clock.now()
    if not uow.patients.decide_claim(claim_id, "approved", now, staff.id):
        raise Conflict("this claim was decided already", code="claim_decided")
    previous = patient.registered_account_id
    clerk = uow.accounts.get(found.requested_by)
    _take(uow, deps, owner, patient, ctx, at_desk=clerk, approved_by=staff,
          skip_notice=previous)
    uow.events.append("identity.claim_approved", now, account_id=staff.id,
                      patient_id=patient.id,
                      detail={"claim": claim_id, "requested_by": found.requested_by,
                              "for_account": owner.id}, **ctx.event_fields())
    if previous not in (None, owner.id):
        notifications.notify(uow, deps, previous or 0, "identity.claim_approved",
                             patient_id=patient.id, at=notifications.when(deps, now),
                             requester=_masked_username(owner.username))
    uow.commit()
    decided = uow.patients.claim(claim_id)
    assert decided is not None
    return _claim_view(uow, deps, decided)


def reject_desk_claim(uow: UnitOfWork, deps: Deps, staff: Account, claim_id: int,
                      ctx: RequestContext) -> DeskClaimView:
    """A second member of staff rejects the desk's claim: nothing changes hands."""
    found = _decidable(uow, deps, staff, claim_id, ctx)
    now = deps.clock.now()
    if not uow.patients.decide_claim(claim_id, "rejected", now, staff.id):
        raise Conflict("this claim was decided already", code="claim_decided")
    uow.events.append("identity.claim_rejected", now, account_id=staff.id,
                      patient_id=found.patient_id,
                      detail={"claim": claim_id, "requested_by": found.requested_by,
                              "for_account": found.account_id}, **ctx.event_fields())
    uow.commit()
    decided = uow.patients.claim(claim_id)
    assert decided is not None
    return _claim_view(uow, deps, decided)


def held(uow: UnitOfWork, deps: Deps, account: Account) -> list[IdentityView]:
    """The identities the account holds, each with everything done under it."""
    out = []
    for patient in uow.patients.claimed_by(account.id or 0):
        pid = patient.id or 0
        out.append(IdentityView(
            patient, list(uow.bookings.of_patients([pid])),
            uow.rounds.entries_of_patient(pid),
            [(a, u, a == account.id) for a, u, _ in uow.patients.managers(pid)]))
    return out


def revoke_link(uow: UnitOfWork, deps: Deps, account: Account, patient_id: int,
                other_account_id: int, ctx: RequestContext) -> None:
    """The holder removes another account's link to their identity (its bookings and entries
    stay until the holder cancels them; it can link again only with the holder's code)."""
    if not holds(uow, account, patient_id):
        raise NotFound("you do not hold that identity", code="patient_not_found")
    if other_account_id == account.id:
        raise Conflict("that is your own account", code="own_link")
    now = deps.clock.now()
    if uow.patients.unlink(other_account_id, patient_id, now) == 0:
        raise NotFound("that account does not manage this identity", code="link_not_found")
    uow.events.append("patient.unlinked", now, account_id=other_account_id,
                      patient_id=patient_id, detail={"by_holder": account.id},
                      **ctx.event_fields())
    uow.commit()

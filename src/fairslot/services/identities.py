"""A person's own identity: claiming it, then seeing and undoing what others did under it.

An identity is registered to the verified phone of the first account that linked it. The
person it belongs to claims it from their own account (after the same guarded real-name
check): at once when nobody's phone speaks for it yet or it is their own account's, with a
code to the registered phone otherwise, or at the registration desk with the ID card present
(which overrides whoever registered it first: this is how a person takes their identity
back from a squatter). The holder then sees every booking and draw entry made under the
identity, by any account, can cancel or withdraw each of them, and can remove other
accounts' links to it."""

from __future__ import annotations

import dataclasses

from fairslot.domain.accounts import Account, Patient, Role
from fairslot.domain.booking import Booking
from fairslot.domain.errors import Conflict, Forbidden, NotFound
from fairslot.domain.identity import Identity, mask_name
from fairslot.domain.rounds import Entry
from fairslot.services import accounts, notifications, realname, verification
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = ["IdentityView", "claim", "claim_at_desk", "held", "holds", "revoke_link"]


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
          ctx: RequestContext, *, at_desk: Account | None = None) -> Patient:
    now = deps.clock.now()
    previous = patient.registered_account_id
    patient.registered_account_id = account.id
    patient.claimed_at = now
    if not uow.patients.is_managed_by(patient.id or 0, account.id or 0):
        uow.patients.link(account.id or 0, patient.id or 0, now)
    uow.events.append("identity.claimed", now, account_id=account.id, patient_id=patient.id,
                      detail={"at_desk": at_desk is not None,
                              "by": at_desk.id if at_desk is not None else None,
                              "took_over": previous not in (None, account.id)},
                      **ctx.event_fields())
    for manager, _name, _at in uow.patients.managers(patient.id or 0):
        if manager != account.id:
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


def claim_at_desk(uow: UnitOfWork, deps: Deps, staff: Account, id_number: str, name: str,
                  username: str, ctx: RequestContext) -> Patient:
    """The registration desk, with the person and their ID card present, gives the identity
    to the person's own account (whoever registered or claimed it before)."""
    accounts.require_role(staff, Role.REGISTRATION)
    identity = Identity.parse(id_number, name)
    owner = uow.accounts.by_username(username.strip().lower())
    if owner is None or owner.role is not Role.PATIENT:
        raise NotFound("no patient account of that name", code="account_not_found")
    uow.lock(("account", owner.id or 0),
             ("identity", uow.keyring.blind_index("id_number", identity.id_number)))
    patient = accounts.verified_patient(uow, deps, identity)
    _take(uow, deps, owner, patient, ctx, at_desk=staff)
    uow.commit()
    return patient


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

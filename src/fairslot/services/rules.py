"""Quota and credit checks, atomic: the caller's unit of work holds the locks of the patient,
account, phones or payer concerned (``UnitOfWork.lock``) before the facts are read, so two
parallel requests can never both pass a quota only one of them may pass. An account's
bookings count toward every phone it verified within the quota window, so a booking or an
entry holds the lock of each and checks the quota of each (``unlocked_phones``). The rules
are the pure ones of ``fairslot.domain.quotas`` and ``fairslot.domain.credit``; each
refusal names its rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from fairslot.domain import credit, quotas
from fairslot.domain.accounts import Account
from fairslot.services.deps import Deps
from fairslot.storage.repositories import QuotaFacts
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "Standing",
    "check_credit",
    "check_may_book",
    "check_payer",
    "credit_policy",
    "facts_for",
    "facts_query",
    "lock_names",
    "phone_lock",
    "quota_policy",
    "standing",
    "suspended_at",
    "unlocked_phones",
]


def quota_policy(deps: Deps, *, lowered: bool = False) -> quotas.QuotaPolicy:
    """The quotas from the settings; ``lowered`` (a consortium entry whose policy is
    ``lower_quota``) caps each count at ``consortium_lowered_quota``."""
    s = deps.settings
    cap = s.consortium_lowered_quota if lowered else None

    def limit(value: int) -> int:
        return value if cap is None else min(value, cap)

    return quotas.QuotaPolicy(
        active_bookings=limit(s.quota_active_bookings),
        departments_per_week=limit(s.quota_departments_per_week),
        patients_per_account=limit(s.quota_patients_per_account),
        patients_per_phone=limit(s.quota_patients_per_phone),
        patients_per_payer=limit(s.quota_patients_per_payer),
        served_window=dt.timedelta(days=s.quota_window_days))


def credit_policy(deps: Deps) -> credit.CreditPolicy:
    s = deps.settings
    return credit.CreditPolicy(
        suspensions=tuple(dt.timedelta(days=d) for d in s.credit_suspension_days),
        cancel_cutoff=dt.timedelta(hours=max(s.credit_late_cancel_hours, s.cancel_cutoff_hours)),
        lapsed_holds_per_offence=s.credit_lapsed_holds_per_offence)


def phone_lock(uow: UnitOfWork, phone: str) -> tuple[str, str]:
    """The lock of a phone number's quotas (the accounts it backs, the patients its
    accounts serve), named by its blind index: the quota facts name the phones an account
    verified that way, and a booking must take the lock of each of them."""
    return ("phone", uow.keyring.blind_index("phone", phone))


def lock_names(uow: UnitOfWork, patient_id: int, account: Account | None,
               phones: Iterable[str] = ()) -> list[tuple[str, str | int]]:
    """The locks a booking or an entry for ``patient_id`` by ``account`` needs: the patient
    (active bookings, departments, credit), the account, and the phone it is on
    (patients served). ``phones``: the blind indexes of the other phones whose quotas its
    bookings count toward (those it verified within the window, ``QuotaFacts.phones``);
    a first attempt does not know them and checks with ``unlocked_phones``."""
    names: list[tuple[str, str | int]] = [("patient", patient_id)]
    if account is not None:
        names.append(("account", account.id or 0))
        if account.phone:
            names.append(phone_lock(uow, account.phone))
        names += [("phone", index) for index in phones]
    return names


def unlocked_phones(uow: UnitOfWork, names: list[tuple[str, str | int]],
                    facts: QuotaFacts) -> list[str]:
    """The phones whose quotas the facts say this booking or entry counts toward but whose
    locks ``names`` lack (the account moved off them within the window). Empty on SQLite,
    where the transaction is the one writer. Otherwise the caller must roll back and start
    again holding them all (``lock_names`` with these phones): taking them now, after the
    others, would break the order that keeps two lockers from waiting for each other in a
    circle."""
    if not uow.postgres:
        return []
    held = {value for kind, value in names if kind == "phone"}
    return sorted({p for p in facts.phones if p not in held})


def facts_for(uow: UnitOfWork, deps: Deps, patient_id: int, account: Account | None, *,
              session_id: int | None = None) -> QuotaFacts:
    """Everything the quotas and credit need about this patient and account, in one query.
    ``account`` is None for the desk, which serves everyone."""
    return uow.quotas.facts(patient_id, **facts_query(uow, deps, account,
                                                      session_id=session_id))


def facts_query(uow: UnitOfWork, deps: Deps, account: Account | None, *,
                session_id: int | None = None) -> dict[str, Any]:
    """``QuotaRepository.facts``'s keywords (but the patient) for ``facts_for``."""
    now = deps.clock.now()
    policy = credit_policy(deps)
    phone = account.phone if account is not None else None
    return {"now": now, "served_since": now - quota_policy(deps).served_window,
            "offences_since": now - policy.window - policy.window, "session_id": session_id,
            "account_id": account.id if account is not None else None,
            "phone_index": uow.keyring.blind_index("phone", phone) if phone else None}


def check_credit(deps: Deps, facts: QuotaFacts) -> None:
    """Raise ``Suspended`` if the patient's offences suspend them now, or if the account's
    holds left to expire (over all its patients) do: holding costs the account too, so a
    bot cannot spread its lapses over the five patients it holds."""
    if not deps.settings.credit_enabled:
        return
    policy = credit_policy(deps)
    found = credit.offences(facts.no_shows, facts.late_cancellations, policy,
                            facts.lapsed_holds)
    now = deps.clock.now()
    credit.check_not_suspended(found, now, policy)
    if facts.account_lapsed_holds:
        lapsed = credit.offences((), (), policy, facts.account_lapsed_holds)
        suspension = credit.current_suspension(lapsed, now, policy)
        if suspension is not None:
            reason = f"this account: {suspension.reason}"
            raise credit.Suspended(reason, until=suspension.until, reason=reason)


def suspended_at(uow: UnitOfWork, deps: Deps, patient_id: int, when: dt.datetime, *,
                 account_id: int | None = None) -> bool:
    """Whether the patient (or, given ``account_id``, the account, for its holds left to
    expire) was suspended at ``when``, judged only on what had happened by then: an offence
    recorded later (a late cancellation after a round's close) does not count, so nothing
    done after a moment can change who was eligible at it."""
    if not deps.settings.credit_enabled:
        return False
    policy = credit_policy(deps)
    facts = uow.quotas.facts(patient_id, now=when, served_since=when,
                             offences_since=when - policy.window - policy.window,
                             account_id=account_id)
    found = credit.offences([t for t in facts.no_shows if t <= when],
                            [t for t in facts.late_cancellations if t <= when], policy,
                            [t for t in facts.lapsed_holds if t <= when])
    if credit.current_suspension(found, when, policy) is not None:
        return True
    lapsed = [t for t in facts.account_lapsed_holds if t <= when]
    return bool(lapsed) and credit.current_suspension(
        credit.offences((), (), policy, lapsed), when, policy) is not None


def check_may_book(deps: Deps, facts: QuotaFacts, patient_id: int, department_id: int,
                   visit_at: dt.datetime, *, served: bool = True, lowered: bool = False) -> None:
    """May this patient book (or enter a draw for) a visit with ``department_id`` at
    ``visit_at``? Credit first (a suspended patient is told why and until when), then the
    quotas; entries in undrawn rounds count as bookings and visits, since an entry is a
    booking in waiting. ``served`` is False for the desk, which serves everyone; ``lowered``
    applies the consortium's lowered quotas."""
    check_credit(deps, facts)
    if not deps.settings.quotas_enabled:
        return
    now = deps.clock.now()
    policy = quota_policy(deps, lowered=lowered)
    quotas.check_active_bookings(facts.active, policy)
    quotas.check_departments(facts.visits, str(department_id), visit_at, policy)
    if served:
        quotas.check_patients_served("account", facts.served_by_account, str(patient_id), now,
                                     policy)
        # Each phone whose quota the account's bookings count toward, the ones it moved
        # off within the window as well as its current one.
        for phone in sorted(set(facts.phones)):
            quotas.check_patients_served(
                "phone", [(p, at) for of, p, at in facts.served_by_phone if of == phone],
                str(patient_id), now, policy)


def check_payer(uow: UnitOfWork, deps: Deps, payer: str, patient_id: int, *,
                lowered: bool = False) -> None:
    """May this payer account pay for ``patient_id``? The caller holds the payer's lock."""
    if not deps.settings.quotas_enabled:
        return
    now = deps.clock.now()
    policy = quota_policy(deps, lowered=lowered)
    index = uow.keyring.blind_index("payer", payer)
    quotas.check_patients_served("payer", uow.bookings.served_by_payer(
        index, now - policy.served_window), str(patient_id), now, policy)


@dataclasses.dataclass(frozen=True)
class Standing:
    """A patient's credit as the rules see it now: the offences of the past year (no-shows,
    late cancellations, runs of unpaid holds), the suspension in force if any, and how many
    active bookings they hold against the quota."""

    offences: list[credit.Offence]
    suspension: credit.Suspension | None
    active: int
    active_limit: int


def standing(uow: UnitOfWork, deps: Deps, patient_id: int) -> Standing:
    facts = facts_for(uow, deps, patient_id, None)
    policy = credit_policy(deps)
    now = deps.clock.now()
    every = credit.offences(facts.no_shows, facts.late_cancellations, policy,
                            facts.lapsed_holds)
    suspension = (credit.current_suspension(every, now, policy)
                  if deps.settings.credit_enabled else None)
    recent = [o for o in every if now - policy.window < o.at <= now]
    return Standing(recent, suspension, facts.active,
                    quota_policy(deps).active_bookings)

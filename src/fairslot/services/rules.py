"""Quota and credit checks against what the database knows, using the pure rules of
``fairslot.domain.quotas`` and ``fairslot.domain.credit``. Each refusal names its rule."""

from __future__ import annotations

import datetime as dt

from fairslot.bootstrap import Platform
from fairslot.crypto import current_keyring
from fairslot.domain import credit, quotas
from fairslot.domain.accounts import Account
from fairslot.storage.uow import UnitOfWork

__all__ = ["check_credit", "check_may_book", "check_payer", "credit_policy", "quota_policy"]


def quota_policy(platform: Platform) -> quotas.QuotaPolicy:
    s = platform.settings
    return quotas.QuotaPolicy(
        active_bookings=s.quota_active_bookings, departments_per_week=s.quota_departments_per_week,
        patients_per_account=s.quota_patients_per_account,
        patients_per_phone=s.quota_patients_per_phone,
        patients_per_payer=s.quota_patients_per_payer)


def credit_policy(platform: Platform) -> credit.CreditPolicy:
    return credit.CreditPolicy(
        suspensions=tuple(dt.timedelta(days=d) for d in platform.settings.credit_suspension_days),
        cancel_cutoff=dt.timedelta(hours=platform.settings.cancel_cutoff_hours))


def check_credit(platform: Platform, uow: UnitOfWork, patient_id: int,
                 now: dt.datetime | None = None) -> None:
    """Raise ``Suspended`` if the patient's no-shows suspend them now."""
    _check_credit(platform, uow, patient_id, now or platform.clock.now())


def _check_credit(platform: Platform, uow: UnitOfWork, patient_id: int,
                  now: dt.datetime) -> None:
    if not platform.settings.credit_enabled:
        return
    policy = credit_policy(platform)
    no_shows, late = uow.bookings.offences(patient_id, now - policy.window - policy.window)
    credit.check_not_suspended(credit.offences(no_shows, late, policy), now, policy)


def _check_served(platform: Platform, uow: UnitOfWork, account: Account | None,
                  patient_id: int, now: dt.datetime) -> None:
    policy = quota_policy(platform)
    since = now - policy.served_window
    if account is None:
        return
    quotas.check_patients_served("account", uow.bookings.served_by_account(account.id or 0,
                                                                           since),
                                 str(patient_id), now, policy)
    if account.phone:
        index = current_keyring().blind_index("phone", account.phone)
        quotas.check_patients_served("phone", uow.bookings.served_by_phone(index, since),
                                     str(patient_id), now, policy)


def check_may_book(platform: Platform, uow: UnitOfWork, account: Account | None,
                   patient_id: int, department_id: int, visit_at: dt.datetime) -> None:
    """May this patient book (or enter a draw for) a visit with ``department_id`` at
    ``visit_at``? Credit first (a suspended patient is told why and until when), then the
    quotas; open draw entries count as visits, since an entry is a booking in waiting.
    ``account`` is None for bookings made at the desk, which serves everyone."""
    now = platform.clock.now()
    _check_credit(platform, uow, patient_id, now)
    if not platform.settings.quotas_enabled:
        return
    policy = quota_policy(platform)
    quotas.check_active_bookings(uow.bookings.active_count(patient_id, now), policy)
    visits = uow.bookings.visits(patient_id, now) + [
        (str(r.department_id), r.closes_at)
        for r in uow.rounds.open_entries_of_patient(patient_id)]
    quotas.check_departments(visits, str(department_id), visit_at, policy)
    _check_served(platform, uow, account, patient_id, now)


def check_payer(platform: Platform, uow: UnitOfWork, payer: str, patient_id: int) -> None:
    if not platform.settings.quotas_enabled:
        return
    now = platform.clock.now()
    policy = quota_policy(platform)
    index = current_keyring().blind_index("payer", payer)
    quotas.check_patients_served("payer", uow.bookings.served_by_payer(
        index, now - policy.served_window), str(patient_id), now, policy)

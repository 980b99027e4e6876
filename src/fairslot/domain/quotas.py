"""Quotas that bound how much one identity can take: per patient (active bookings, departments
in a week, entries per round) and per account, phone and payer account (distinct patients
served in 30 days). Each refusal is a ``QuotaExceeded`` whose ``code`` names the quota.

The checks are pure: the caller passes what the patient, account, phone or payer already
has, and the check says whether one more is allowed. "One more" of something already
counted (the same department, the same patient) never breaks a quota."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from fairslot.domain.errors import QuotaExceeded

__all__ = [
    "Payer",
    "QuotaPolicy",
    "check_active_bookings",
    "check_departments",
    "check_entries_per_round",
    "check_patients_served",
]

Payer = Literal["account", "phone", "payer"]


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """Quota settings. The defaults are sized for a family that books for a few relatives;
    they are far below what a scalper ring needs (dozens of identities, hundreds of payments).

    - ``active_bookings``: bookings a patient may hold at once across the hospital (4).
    - ``departments_per_week``: distinct departments a patient may have visits with in any
      window of ``department_window`` around a visit (3 within 7 days); one patient with a
      headache and a foot ache at once is rare, one ID across many departments is a tout.
    - ``entries_per_round``: entries per patient in one release round (1).
    - ``patients_per_account`` / ``patients_per_phone`` / ``patients_per_payer``: distinct
      patients one account, one phone number or one payment account may serve within
      ``served_window`` (5 each within 30 days).
    """

    active_bookings: int = 4
    departments_per_week: int = 3
    department_window: dt.timedelta = dt.timedelta(days=7)
    entries_per_round: int = 1
    patients_per_account: int = 5
    patients_per_phone: int = 5
    patients_per_payer: int = 5
    served_window: dt.timedelta = dt.timedelta(days=30)

    def limit_for(self, who: Payer) -> int:
        return {"account": self.patients_per_account, "phone": self.patients_per_phone,
                "payer": self.patients_per_payer}[who]


_DEFAULT = QuotaPolicy()


def _refuse(code: str, detail: str, *, limit: int, used: int) -> QuotaExceeded:
    return QuotaExceeded(detail, code=code, quota=code.removeprefix("quota_"), limit=limit,
                         used=used)


def check_active_bookings(active: int, policy: QuotaPolicy = _DEFAULT) -> None:
    """Allow one more booking unless the patient already holds ``active_bookings``."""
    if active >= policy.active_bookings:
        raise _refuse("quota_active_bookings",
                      f"quota 'active bookings per patient' reached: {active} of "
                      f"{policy.active_bookings} held; cancel or attend one first",
                      limit=policy.active_bookings, used=active)


def check_departments(visits: Iterable[tuple[str, dt.datetime]], department: str,
                      visit_at: dt.datetime, policy: QuotaPolicy = _DEFAULT) -> None:
    """Allow a visit with ``department`` at ``visit_at`` given the patient's live visits
    (department, time): the distinct departments whose visits lie less than
    ``department_window`` from ``visit_at``, plus this one, may not exceed the quota."""
    near = {d for d, at in visits if abs(at - visit_at) < policy.department_window}
    if department in near:
        return
    if len(near) >= policy.departments_per_week:
        days = policy.department_window.days
        raise _refuse("quota_departments_per_week",
                      f"quota 'departments per week' reached: visits with {len(near)} "
                      f"departments within {days} days of this one (limit "
                      f"{policy.departments_per_week})",
                      limit=policy.departments_per_week, used=len(near))


def check_entries_per_round(entries: int, policy: QuotaPolicy = _DEFAULT) -> None:
    """Allow a new entry unless the patient already has ``entries_per_round`` in the round.
    (Changing an existing entry is not a new entry.)"""
    if entries >= policy.entries_per_round:
        raise _refuse("quota_entries_per_round",
                      f"quota 'entries per round' reached: {entries} of "
                      f"{policy.entries_per_round}; change your entry instead",
                      limit=policy.entries_per_round, used=entries)


def check_patients_served(who: Payer, served: Iterable[tuple[str, dt.datetime]], patient: str,
                          now: dt.datetime, policy: QuotaPolicy = _DEFAULT) -> None:
    """Allow ``who`` (an account, a phone or a payer account) to serve ``patient`` given the
    (patient, time) pairs it served: the distinct patients within ``served_window`` before
    ``now``, plus this one, may not exceed the quota."""
    limit = policy.limit_for(who)
    recent = {p for p, at in served if now - policy.served_window < at <= now}
    if patient in recent:
        return
    if len(recent) >= limit:
        days = policy.served_window.days
        raise _refuse(f"quota_{who}_patients",
                      f"quota 'patients per {who}' reached: {len(recent)} distinct patients "
                      f"in {days} days (limit {limit})", limit=limit, used=len(recent))

"""Quotas per patient, account, phone and payer account; each refusal names its quota."""

from __future__ import annotations

import datetime as dt

import pytest

from fairslot.domain.errors import QuotaExceeded
from fairslot.domain.quotas import (
    QuotaPolicy,
    check_active_bookings,
    check_departments,
    check_entries_per_round,
    check_patients_served,
)

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def test_a_patient_may_hold_up_to_four_active_bookings() -> None:
    check_active_bookings(3)
    with pytest.raises(QuotaExceeded) as caught:
        check_active_bookings(4)
    assert caught.value.code == "quota_active_bookings"
    assert caught.value.extra == {"quota": "active_bookings", "limit": 4, "used": 4}
    assert "active bookings per patient" in caught.value.detail


def test_a_fourth_department_within_a_week_is_refused() -> None:
    visits = [("cardiology", NOW), ("dermatology", NOW + 2 * DAY), ("orthopedics", NOW - 5 * DAY)]
    with pytest.raises(QuotaExceeded) as caught:
        check_departments(visits, "neurology", NOW + DAY)
    assert caught.value.code == "quota_departments_per_week"


def test_a_department_already_visited_that_week_is_allowed() -> None:
    visits = [("cardiology", NOW), ("dermatology", NOW), ("orthopedics", NOW)]
    check_departments(visits, "cardiology", NOW + DAY)


def test_departments_outside_the_week_do_not_count() -> None:
    visits = [("cardiology", NOW - 8 * DAY), ("dermatology", NOW), ("orthopedics", NOW)]
    check_departments(visits, "neurology", NOW)


def test_one_entry_per_round() -> None:
    check_entries_per_round(0)
    with pytest.raises(QuotaExceeded) as caught:
        check_entries_per_round(1)
    assert caught.value.code == "quota_entries_per_round"


@pytest.mark.parametrize("who", ["account", "phone", "payer"])
def test_a_sixth_patient_in_thirty_days_is_refused(who: str) -> None:
    served = [(f"patient-{n}", NOW - n * DAY) for n in range(5)]
    check_patients_served(who, served, "patient-3", NOW)  # type: ignore[arg-type]
    with pytest.raises(QuotaExceeded) as caught:
        check_patients_served(who, served, "patient-new", NOW)  # type: ignore[arg-type]
    assert caught.value.code == f"quota_{who}_patients"
    assert f"patients per {who}" in caught.value.detail


def test_patients_served_over_thirty_days_ago_do_not_count() -> None:
    served = [(f"patient-{n}", NOW - (26 + n) * DAY) for n in range(5)]
    check_patients_served("payer", served, "patient-new", NOW)


def test_limits_are_settings() -> None:
    policy = QuotaPolicy(patients_per_payer=1)
    with pytest.raises(QuotaExceeded):
        check_patients_served("payer", [("a", NOW)], "b", NOW, policy)

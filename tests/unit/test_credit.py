"""The Beijing 114 no-show credit rule: 30, 60, 90 days within a rolling year."""

from __future__ import annotations

import datetime as dt

import pytest

from fairslot.domain.credit import (
    CreditPolicy,
    Offence,
    OffenceKind,
    Suspended,
    check_not_suspended,
    current_suspension,
    is_late_cancellation,
    offences,
)

T0 = dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def test_a_clean_record_means_no_suspension() -> None:
    assert current_suspension([], T0) is None


@pytest.mark.parametrize(("count", "days"), [(1, 30), (2, 60), (3, 90), (4, 90), (7, 90)])
def test_the_nth_no_show_in_a_year_suspends_for_its_tier(count: int, days: int) -> None:
    no_shows = [T0 + n * 40 * DAY for n in range(count)]
    last = no_shows[-1]
    suspension = current_suspension(no_shows, last + DAY)
    assert suspension is not None
    assert (suspension.nth, suspension.until) == (count, last + days * DAY)


def test_a_suspension_ends_at_its_until() -> None:
    assert current_suspension([T0], T0 + 30 * DAY - dt.timedelta(seconds=1)) is not None
    assert current_suspension([T0], T0 + 30 * DAY) is None


def test_offences_older_than_a_year_no_longer_count() -> None:
    second = T0 + 366 * DAY
    suspension = current_suspension([T0, second], second)
    assert suspension is not None and suspension.nth == 1
    assert suspension.until == second + 30 * DAY


def test_an_offence_after_now_is_ignored() -> None:
    assert current_suspension([T0 + DAY], T0) is None


def test_a_late_cancellation_counts_as_a_no_show_by_default() -> None:
    visit = T0 + 10 * DAY
    assert is_late_cancellation(visit - dt.timedelta(hours=23), visit)
    assert not is_late_cancellation(visit - dt.timedelta(hours=25), visit)
    events = offences([T0], [T0 + 40 * DAY])
    assert [o.kind for o in events] == [OffenceKind.NO_SHOW, OffenceKind.LATE_CANCELLATION]
    suspension = current_suspension(events, T0 + 41 * DAY)
    assert suspension is not None and suspension.nth == 2
    assert "late cancellation" in suspension.reason


def test_late_cancellations_can_be_softened_or_ignored() -> None:
    late = [T0, T0 + 10 * DAY, T0 + 20 * DAY]
    two_per = CreditPolicy(late_cancellations_per_offence=2)
    assert [o.at for o in offences([], late, two_per)] == [T0 + 10 * DAY]
    assert offences([], late, CreditPolicy(late_cancellations_per_offence=0)) == []


def test_the_tiers_are_settings() -> None:
    policy = CreditPolicy(suspensions=(7 * DAY, 14 * DAY))
    suspension = current_suspension([T0, T0 + DAY, T0 + 2 * DAY], T0 + 2 * DAY, policy)
    assert suspension is not None and suspension.until == T0 + 16 * DAY


def test_a_suspended_patient_is_refused_with_why_and_until() -> None:
    with pytest.raises(Suspended) as caught:
        check_not_suspended([Offence(T0)], T0 + DAY)
    error = caught.value
    assert (error.code, error.status) == ("credit_suspended", 403)
    assert error.until == T0 + 30 * DAY
    assert "1st offence" in error.reason and "2026-02-09" in error.detail
    check_not_suspended([Offence(T0)], T0 + 31 * DAY)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        current_suspension([dt.datetime(2026, 1, 1)], T0)

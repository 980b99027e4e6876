"""Planning a session: local times, slots spread over the period, release before the visit."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

import pytest

from fairslot.domain.errors import InvalidInput
from fairslot.domain.schedule import Period, ReleasePolicy, plan_session

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 3, 16)


def test_a_morning_session_is_planned_in_the_hospitals_time_and_stored_in_utc() -> None:
    session, slots = plan_session(doctor_id=1, date=DAY, period=Period.MORNING, capacity=4,
                                  fee_cents=5000, zone=SHANGHAI)
    local_start = session.starts_at.astimezone(SHANGHAI)
    assert session.starts_at.tzinfo is dt.UTC and local_start.date() == DAY
    assert session.ends_at > session.starts_at
    assert len(slots) == 4 and slots[0] == session.starts_at
    gaps = {b - a for a, b in itertools.pairwise(slots)}
    assert len(gaps) == 1 and slots[-1] < session.ends_at


def test_release_is_a_fortnight_ahead_at_eight_local_time_by_default() -> None:
    session, _ = plan_session(doctor_id=1, date=DAY, period=Period.AFTERNOON, capacity=10,
                              fee_cents=0, zone=SHANGHAI, release_policy=ReleasePolicy.DRAW)
    release = session.release_at.astimezone(SHANGHAI)
    assert release.date() == DAY - dt.timedelta(days=14) and release.time() == dt.time(8, 0)
    assert session.release_policy is ReleasePolicy.DRAW
    assert session.is_released(session.release_at)
    assert not session.is_released(session.release_at - dt.timedelta(seconds=1))


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"capacity": 0}, "invalid_capacity"), ({"capacity": 201}, "invalid_capacity"),
    ({"fee_cents": -1}, "invalid_fee"), ({"release_days_before": -1}, "invalid_release"),
    ({"release_days_before": 0, "release_time": dt.time(23, 0)}, "invalid_release"),
])
def test_impossible_plans_are_refused(kwargs: dict[str, object], code: str) -> None:
    args: dict[str, object] = {"doctor_id": 1, "date": DAY, "period": Period.MORNING,
                               "capacity": 10, "fee_cents": 5000, "zone": SHANGHAI}
    args.update(kwargs)
    with pytest.raises(InvalidInput) as refused:
        plan_session(**args)  # type: ignore[arg-type]
    assert refused.value.code == code


def test_a_session_has_started_from_its_first_slot() -> None:
    session, _ = plan_session(doctor_id=1, date=DAY, period=Period.MORNING, capacity=2,
                              fee_cents=0, zone=SHANGHAI)
    assert session.has_started(session.starts_at)
    assert not session.has_started(session.starts_at - dt.timedelta(seconds=1))

"""The hospital's schedule: hospitals, departments, doctors, sessions and their numbered slots."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import zoneinfo

from fairslot.domain.errors import InvalidInput

__all__ = [
    "Department",
    "Doctor",
    "Hospital",
    "Period",
    "ReleasePolicy",
    "Session",
    "SessionStatus",
    "Slot",
    "plan_session",
]


class Period(enum.StrEnum):
    MORNING = "morning"
    AFTERNOON = "afternoon"

    @property
    def local_hours(self) -> tuple[dt.time, dt.time]:
        """Clinic hours of the period, in the hospital's local time."""
        if self is Period.MORNING:
            return dt.time(8, 0), dt.time(12, 0)
        return dt.time(13, 30), dt.time(17, 0)


class ReleasePolicy(enum.StrEnum):
    FCFS = "fcfs"
    """Slots open at the release time, first come first served (the old way, the baseline)."""
    DRAW = "draw"
    """A request window, then a verifiable draw and a ranked waitlist."""


class SessionStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


@dataclasses.dataclass(eq=False)
class Hospital:
    code: str
    name: str
    id: int | None = None


@dataclasses.dataclass(eq=False)
class Department:
    hospital_id: int
    code: str
    name: str
    id: int | None = None


@dataclasses.dataclass(eq=False)
class Doctor:
    department_id: int
    name: str
    title: str
    specialty: str
    release_policy: ReleasePolicy = ReleasePolicy.FCFS
    hot: bool = False
    id: int | None = None


@dataclasses.dataclass(eq=False)
class Session:
    """One doctor's clinic on one half-day, with ``capacity`` numbered slots."""

    doctor_id: int
    date: dt.date
    period: Period
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int
    fee_cents: int
    release_at: dt.datetime
    release_policy: ReleasePolicy = ReleasePolicy.FCFS
    status: SessionStatus = SessionStatus.SCHEDULED
    id: int | None = None

    def is_released(self, now: dt.datetime) -> bool:
        return now >= self.release_at

    def has_started(self, now: dt.datetime) -> bool:
        return now >= self.starts_at


@dataclasses.dataclass(eq=False)
class Slot:
    session_id: int
    number: int
    starts_at: dt.datetime
    id: int | None = None


def plan_session(
    *,
    doctor_id: int,
    date: dt.date,
    period: Period,
    capacity: int,
    fee_cents: int,
    zone: zoneinfo.ZoneInfo,
    release_days_before: int = 14,
    release_time: dt.time = dt.time(8, 0),
    release_policy: ReleasePolicy = ReleasePolicy.FCFS,
) -> tuple[Session, list[dt.datetime]]:
    """A session and the start times of its slots, spread evenly over the period.

    Release follows the common practice of opening a fortnight ahead at a fixed local time."""
    if not 1 <= capacity <= 200:
        raise InvalidInput("capacity must be between 1 and 200", code="invalid_capacity")
    if not 0 <= fee_cents <= 10_000_00:
        raise InvalidInput("fee must be between 0 and 10,000 yuan", code="invalid_fee")
    if release_days_before < 0:
        raise InvalidInput("release must come before the session", code="invalid_release")
    start_local, end_local = period.local_hours
    starts_at = dt.datetime.combine(date, start_local, zone).astimezone(dt.UTC)
    ends_at = dt.datetime.combine(date, end_local, zone).astimezone(dt.UTC)
    release_day = date - dt.timedelta(days=release_days_before)
    release_at = dt.datetime.combine(release_day, release_time, zone).astimezone(dt.UTC)
    if release_at >= starts_at:
        raise InvalidInput("release must come before the session", code="invalid_release")
    step = (ends_at - starts_at) / capacity
    slot_times = [starts_at + step * i for i in range(capacity)]
    session = Session(
        doctor_id=doctor_id,
        date=date,
        period=period,
        starts_at=starts_at,
        ends_at=ends_at,
        capacity=capacity,
        fee_cents=fee_cents,
        release_at=release_at,
        release_policy=release_policy,
    )
    return session, slot_times

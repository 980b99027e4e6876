"""The hospital's catalogue: browsing departments, doctors and sessions with availability,
and the operator's side of it (departments, doctors, session schedules)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from fairslot.bootstrap import Platform
from fairslot.domain.errors import Conflict, InvalidInput, NotFound
from fairslot.domain.schedule import (
    Department,
    Doctor,
    Hospital,
    Period,
    ReleasePolicy,
    Session,
    plan_session,
)

__all__ = [
    "SessionView",
    "create_department",
    "create_doctor",
    "create_hospital",
    "departments",
    "doctors",
    "schedule_sessions",
    "session_view",
    "sessions_of_doctor",
]


@dataclasses.dataclass(frozen=True)
class SessionView:
    session: Session
    doctor: Doctor
    free: int
    released: bool


def create_hospital(platform: Platform, code: str, name: str) -> Hospital:
    with platform.uow() as uow:
        existing = uow.schedule.hospital_by_code(code)
        if existing is not None:
            return existing
        hospital = Hospital(code=code, name=name)
        uow.schedule.add(hospital)
        uow.commit()
        return hospital


def departments(platform: Platform, hospital_id: int) -> Sequence[Department]:
    with platform.uow() as uow:
        if uow.schedule.hospital(hospital_id) is None:
            raise NotFound("no such hospital", code="hospital_not_found")
        return uow.schedule.departments(hospital_id)


def doctors(platform: Platform, department_id: int) -> Sequence[Doctor]:
    with platform.uow() as uow:
        if uow.schedule.department(department_id) is None:
            raise NotFound("no such department", code="department_not_found")
        return uow.schedule.doctors(department_id)


def sessions_of_doctor(platform: Platform, doctor_id: int, start: dt.date,
                       end: dt.date) -> list[SessionView]:
    if end < start or (end - start).days > 62:
        raise InvalidInput("choose a date range of at most 62 days", code="invalid_date_range")
    now = platform.clock.now()
    with platform.uow() as uow:
        doctor = uow.schedule.doctor(doctor_id)
        if doctor is None:
            raise NotFound("no such doctor", code="doctor_not_found")
        found = uow.schedule.sessions(doctor_id, start, end)
        free = uow.schedule.free_counts([s.id or 0 for s in found], now)
        return [SessionView(s, doctor, free[s.id or 0] if s.is_released(now) else 0,
                            s.is_released(now)) for s in found]


def session_view(platform: Platform, session_id: int) -> SessionView:
    now = platform.clock.now()
    with platform.uow() as uow:
        session = uow.schedule.session(session_id)
        if session is None:
            raise NotFound("no such session", code="session_not_found")
        doctor = uow.schedule.doctor(session.doctor_id)
        assert doctor is not None
        free = uow.schedule.free_counts([session_id], now)[session_id]
        released = session.is_released(now)
        return SessionView(session, doctor, free if released else 0, released)


def create_department(platform: Platform, hospital_id: int, code: str, name: str) -> Department:
    if not code.strip() or not name.strip():
        raise InvalidInput("a department needs a code and a name", code="invalid_department")
    with platform.uow() as uow:
        if uow.schedule.hospital(hospital_id) is None:
            raise NotFound("no such hospital", code="hospital_not_found")
        if uow.schedule.department_by_code(hospital_id, code.strip()) is not None:
            raise Conflict("a department with that code exists", code="department_exists")
        department = Department(hospital_id=hospital_id, code=code.strip(), name=name.strip())
        uow.schedule.add(department)
        uow.commit()
        return department


def create_doctor(platform: Platform, department_id: int, name: str, title: str,
                  specialty: str, *, release_policy: ReleasePolicy = ReleasePolicy.FCFS,
                  hot: bool = False) -> Doctor:
    if not name.strip() or not title.strip():
        raise InvalidInput("a doctor needs a name and a title", code="invalid_doctor")
    with platform.uow() as uow:
        if uow.schedule.department(department_id) is None:
            raise NotFound("no such department", code="department_not_found")
        doctor = Doctor(department_id=department_id, name=name.strip(), title=title.strip(),
                        specialty=specialty.strip(), release_policy=release_policy, hot=hot)
        uow.schedule.add(doctor)
        uow.commit()
        return doctor


def schedule_sessions(platform: Platform, doctor_id: int, dates: Sequence[dt.date],
                      periods: Sequence[Period], capacity: int, fee_cents: int, *,
                      release_days_before: int = 14, release_time: dt.time = dt.time(8, 0),
                      release_policy: ReleasePolicy | None = None) -> list[Session]:
    """Create sessions and their numbered slots; a (doctor, date, period) that already has a
    session is left as it is (so a schedule can be re-run safely)."""
    if not dates or not periods:
        raise InvalidInput("give at least one date and one period", code="invalid_schedule")
    if len(dates) * len(periods) > 400:
        raise InvalidInput("at most 400 sessions at a time", code="invalid_schedule")
    zone = platform.settings.zone
    created: list[Session] = []
    with platform.uow() as uow:
        doctor = uow.schedule.doctor(doctor_id)
        if doctor is None:
            raise NotFound("no such doctor", code="doctor_not_found")
        policy = release_policy or doctor.release_policy
        for date in sorted(set(dates)):
            for period in periods:
                if uow.schedule.session_at(doctor_id, date, period.value) is not None:
                    continue
                session, slot_times = plan_session(
                    doctor_id=doctor_id, date=date, period=period, capacity=capacity,
                    fee_cents=fee_cents, zone=zone, release_days_before=release_days_before,
                    release_time=release_time, release_policy=policy)
                uow.schedule.add(session)
                uow.flush()
                uow.schedule.add_slots(session.id or 0, slot_times)
                created.append(session)
        try:
            uow.commit()
        except IntegrityError as exc:
            raise Conflict("the schedule changed meanwhile; try again",
                           code="schedule_conflict") from exc
    return created

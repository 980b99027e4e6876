"""The hospital's catalogue: browsing hospitals, departments, doctors and sessions with
availability, and the operator's side of it (departments, doctors, session schedules)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

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
from fairslot.services.deps import Deps
from fairslot.storage.repositories import SessionCounts
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "DaySession",
    "DoctorPage",
    "SessionView",
    "create_department",
    "create_doctor",
    "create_hospital",
    "day_sessions",
    "department",
    "departments",
    "doctor",
    "doctor_page",
    "doctors",
    "hospitals",
    "schedule_sessions",
    "session_view",
    "sessions_of_doctor",
    "set_release_policy",
]

# The earliest and latest dates a schedule may use: no clinic in 1900 or in 9999.
_FIRST_YEAR, _LAST_YEAR = 2000, 2100


@dataclasses.dataclass(frozen=True)
class SessionView:
    session: Session
    doctor: Doctor
    free: int
    released: bool
    round_id: int | None = None
    """The draw round taking entries for this session now, if any."""


@dataclasses.dataclass(frozen=True)
class DoctorPage:
    doctor: Doctor
    department: Department
    hospital: Hospital
    sessions: list[SessionView]


@dataclasses.dataclass(frozen=True)
class DaySession:
    """One session of the day, for the desk's and the operator's lists."""

    session: Session
    doctor: Doctor
    department: Department
    counts: SessionCounts


def _check_dates(start: dt.date, end: dt.date) -> None:
    if end < start or (end - start).days > 62:
        raise InvalidInput("choose a date range of at most 62 days", code="invalid_date_range")
    if start.year < _FIRST_YEAR or end.year > _LAST_YEAR:
        raise InvalidInput(f"choose dates between {_FIRST_YEAR} and {_LAST_YEAR}",
                           code="invalid_date_range")


def hospitals(uow: UnitOfWork, deps: Deps) -> list[tuple[Hospital, list[Department]]]:
    return [(h, list(uow.schedule.departments(h.id or 0))) for h in uow.schedule.hospitals()]


def department(uow: UnitOfWork, deps: Deps, department_id: int) -> tuple[Department, Hospital]:
    found = uow.schedule.department(department_id)
    hospital = uow.schedule.hospital(found.hospital_id) if found else None
    if found is None or hospital is None:
        raise NotFound("no such department", code="department_not_found")
    return found, hospital


def departments(uow: UnitOfWork, deps: Deps, hospital_id: int) -> Sequence[Department]:
    if uow.schedule.hospital(hospital_id) is None:
        raise NotFound("no such hospital", code="hospital_not_found")
    return uow.schedule.departments(hospital_id)


def doctors(uow: UnitOfWork, deps: Deps, department_id: int) -> Sequence[Doctor]:
    if uow.schedule.department(department_id) is None:
        raise NotFound("no such department", code="department_not_found")
    return uow.schedule.doctors(department_id)


def doctor(uow: UnitOfWork, deps: Deps, doctor_id: int) -> Doctor:
    found = uow.schedule.doctor(doctor_id)
    if found is None:
        raise NotFound("no such doctor", code="doctor_not_found")
    return found


def sessions_of_doctor(uow: UnitOfWork, deps: Deps, doctor_id: int, start: dt.date,
                       end: dt.date) -> list[SessionView]:
    _check_dates(start, end)
    now = deps.clock.now()
    found_doctor = doctor(uow, deps, doctor_id)
    found = uow.schedule.sessions(doctor_id, start, end)
    ids = [s.id or 0 for s in found]
    free = uow.schedule.free_counts(ids, now)
    rounds = uow.rounds.open_rounds_of_sessions(ids, now)
    return [SessionView(s, found_doctor, free[s.id or 0] if s.is_released(now) else 0,
                        s.is_released(now), rounds.get(s.id or 0)) for s in found]


def doctor_page(uow: UnitOfWork, deps: Deps, doctor_id: int, days: int) -> DoctorPage:
    """A doctor with the department, hospital and the sessions of the next ``days`` days,
    and any session whose draw round takes entries now (its visit may lie further ahead)."""
    found = doctor(uow, deps, doctor_id)
    dep, hosp = department(uow, deps, found.department_id)
    today = deps.clock.now().astimezone(deps.settings.zone).date()
    views = sessions_of_doctor(uow, deps, doctor_id, today, today + dt.timedelta(days=days - 1))
    seen = {v.session.id for v in views}
    for round_ in uow.rounds.open_rounds(deps.clock.now()):
        if round_.department_id != dep.id:
            continue
        extra = [sid for sid in uow.rounds.sessions(round_.id) if sid not in seen]
        for _sid, session in uow.schedule.sessions_by_id(extra).items():
            if session.doctor_id == doctor_id:
                views.append(SessionView(session, found, 0, False, round_.id))
    views.sort(key=lambda v: v.session.starts_at)
    return DoctorPage(found, dep, hosp, views)


def session_view(uow: UnitOfWork, deps: Deps, session_id: int,
                 now: dt.datetime | None = None) -> SessionView:
    """The session as of ``now`` (the clock's time if not given)."""
    if now is None:
        now = deps.clock.now()
    found = uow.schedule.session_at_a_glance(session_id, now)
    if found is None:
        raise NotFound("no such session", code="session_not_found")
    session, doctor, free, round_id = found
    released = session.is_released(now)
    return SessionView(session, doctor, free if released else 0, released, round_id)


def day_sessions(uow: UnitOfWork, deps: Deps, date: dt.date) -> list[DaySession]:
    """Every session of every doctor on ``date``, with free slots and bookings by status."""
    _check_dates(date, date)
    found = uow.schedule.sessions_on(date)
    counts = uow.schedule.counts([s.id or 0 for s, _, _ in found], deps.clock.now())
    return [DaySession(s, doc, dep, counts[s.id or 0]) for s, doc, dep in found]


def create_hospital(uow: UnitOfWork, deps: Deps, code: str, name: str) -> Hospital:
    existing = uow.schedule.hospital_by_code(code)
    if existing is not None:
        return existing
    hospital = Hospital(code=code, name=name)
    uow.schedule.add(hospital)
    uow.commit()
    return hospital


def create_department(uow: UnitOfWork, deps: Deps, hospital_id: int, code: str,
                      name: str) -> Department:
    if not code.strip() or not name.strip():
        raise InvalidInput("a department needs a code and a name", code="invalid_department")
    if uow.schedule.hospital(hospital_id) is None:
        raise NotFound("no such hospital", code="hospital_not_found")
    if uow.schedule.department_by_code(hospital_id, code.strip()) is not None:
        raise Conflict("a department with that code exists", code="department_exists")
    found = Department(hospital_id=hospital_id, code=code.strip(), name=name.strip())
    uow.schedule.add(found)
    uow.commit()
    return found


def create_doctor(uow: UnitOfWork, deps: Deps, department_id: int, name: str, title: str,
                  specialty: str, *, release_policy: ReleasePolicy = ReleasePolicy.FCFS,
                  hot: bool = False) -> Doctor:
    if not name.strip() or not title.strip():
        raise InvalidInput("a doctor needs a name and a title", code="invalid_doctor")
    if uow.schedule.department(department_id) is None:
        raise NotFound("no such department", code="department_not_found")
    found = Doctor(department_id=department_id, name=name.strip(), title=title.strip(),
                   specialty=specialty.strip(), release_policy=release_policy, hot=hot)
    uow.schedule.add(found)
    uow.commit()
    return found


def set_release_policy(uow: UnitOfWork, deps: Deps, doctor_id: int,
                       policy: ReleasePolicy) -> Doctor:
    """Change how a doctor's future sessions are released. Sessions already released or in
    an open round keep their policy: a change never moves the ground under entrants."""
    found = doctor(uow, deps, doctor_id)
    found.release_policy = policy
    now = deps.clock.now()
    for session in uow.schedule.sessions(doctor_id, now.date(), now.date()
                                         + dt.timedelta(days=366)):
        if session.release_at > now and uow.rounds.round_of_session(session.id or 0) is None:
            session.release_policy = policy
    uow.events.append("doctor.release_policy", now, detail={"doctor": doctor_id,
                                                            "policy": policy.value})
    uow.commit()
    return found


def schedule_sessions(uow: UnitOfWork, deps: Deps, doctor_id: int, dates: Sequence[dt.date],
                      periods: Sequence[Period], capacity: int, fee_cents: int, *,
                      release_days_before: int = 14, release_time: dt.time = dt.time(8, 0),
                      release_policy: ReleasePolicy | None = None) -> list[Session]:
    """Create sessions and their numbered slots; a (doctor, date, period) that already has a
    session is left as it is (so a schedule can be re-run safely)."""
    if not dates or not periods:
        raise InvalidInput("give at least one date and one period", code="invalid_schedule")
    if len(dates) * len(periods) > 400:
        raise InvalidInput("at most 400 sessions at a time", code="invalid_schedule")
    if any(d.year < _FIRST_YEAR or d.year > _LAST_YEAR for d in dates):
        raise InvalidInput(f"choose dates between {_FIRST_YEAR} and {_LAST_YEAR}",
                           code="invalid_schedule")
    found = doctor(uow, deps, doctor_id)
    policy = release_policy or found.release_policy
    created: list[Session] = []
    for date in sorted(set(dates)):
        for period in periods:
            if uow.schedule.session_at(doctor_id, date, period.value) is not None:
                continue
            session, slot_times = plan_session(
                doctor_id=doctor_id, date=date, period=period, capacity=capacity,
                fee_cents=fee_cents, zone=deps.settings.zone,
                release_days_before=release_days_before, release_time=release_time,
                release_policy=policy)
            uow.schedule.add(session)
            uow.flush()
            uow.schedule.add_slots(session.id or 0, slot_times)
            if (found.hot and policy is ReleasePolicy.FCFS
                    and session.release_at <= deps.clock.now()
                    and deps.settings.short_windows_enabled):
                # A hot doctor's fcfs release opens with a request window (the scheduler's
                # opening round). Scheduled after its release time, its slots are held back
                # at once: nothing can book them in the seconds before the scheduler's next
                # pass opens that window.
                uow.flush()
                uow.schedule.reserve_slots(uow.schedule.unclaimed_slots(session.id or 0),
                                           session.starts_at)
            created.append(session)
    uow.commit()
    return created

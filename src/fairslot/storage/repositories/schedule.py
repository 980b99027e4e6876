"""The hospital's schedule: hospitals, departments, doctors, sessions and their slots."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.domain.booking import SLOT_TAKEN_STATUSES
from fairslot.domain.schedule import Department, Doctor, Hospital, Session, Slot
from fairslot.storage import tables as t
from fairslot.storage.repositories.rounds import taking_entries

__all__ = ["ClaimedSlot", "ScheduleRepository", "SessionCounts"]

_TAKEN = [s.value for s in SLOT_TAKEN_STATUSES]


def _open_to_booking(now: dt.datetime | sa.BindParameter[dt.datetime]
                     ) -> sa.ColumnElement[bool]:
    """A slot a booking made ``now`` may take, if free: a first-come session's from its
    release, a draw session's only once re-opened as a leftover (``open_from``)."""
    return sa.or_(t.slots.c.open_from <= now,
                  sa.and_(t.slots.c.open_from.is_(None), t.sessions.c.release_policy == "fcfs"))


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimedSlot:
    id: int
    number: int
    freed_at: dt.datetime | None = None
    """When the slot last re-opened to the public (``slots.freed_at``), if it ever did."""


@dataclasses.dataclass(frozen=True, slots=True)
class SessionCounts:
    """A session's slots and bookings at a glance, for the desk's and operator's day."""

    free: int
    by_status: dict[str, int]

    @property
    def booked(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in _TAKEN)


class ScheduleRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def add(self, obj: Hospital | Department | Doctor | Session | Slot) -> None:
        self.db.add(obj)

    def hospitals(self) -> Sequence[Hospital]:
        return self.db.scalars(sa.select(Hospital).order_by(t.hospitals.c.id)).all()

    def hospital(self, hospital_id: int) -> Hospital | None:
        return self.db.get(Hospital, hospital_id)

    def hospital_by_code(self, code: str) -> Hospital | None:
        return self.db.scalars(sa.select(Hospital).where(t.hospitals.c.code == code)).first()

    def departments(self, hospital_id: int) -> Sequence[Department]:
        return self.db.scalars(
            sa.select(Department).where(t.departments.c.hospital_id == hospital_id)
            .order_by(t.departments.c.id)
        ).all()

    def all_departments(self) -> Sequence[Department]:
        return self.db.scalars(sa.select(Department).order_by(t.departments.c.id)).all()

    def department(self, department_id: int) -> Department | None:
        return self.db.get(Department, department_id)

    def department_by_code(self, hospital_id: int, code: str) -> Department | None:
        return self.db.scalars(sa.select(Department).where(
            t.departments.c.hospital_id == hospital_id, t.departments.c.code == code)).first()

    def doctors(self, department_id: int) -> Sequence[Doctor]:
        return self.db.scalars(
            sa.select(Doctor).where(t.doctors.c.department_id == department_id)
            .order_by(t.doctors.c.id)
        ).all()

    def doctor(self, doctor_id: int) -> Doctor | None:
        return self.db.get(Doctor, doctor_id)

    def doctors_by_id(self, doctor_ids: Sequence[int]) -> dict[int, Doctor]:
        if not doctor_ids:
            return {}
        found = self.db.scalars(sa.select(Doctor).where(t.doctors.c.id.in_(set(doctor_ids))))
        return {d.id or 0: d for d in found}

    def session(self, session_id: int) -> Session | None:
        return self.db.get(Session, session_id)

    def sessions_by_id(self, session_ids: Sequence[int]) -> dict[int, Session]:
        if not session_ids:
            return {}
        found = self.db.scalars(sa.select(Session).where(t.sessions.c.id.in_(set(session_ids))))
        return {s.id or 0: s for s in found}

    def session_at(self, doctor_id: int, date: dt.date, period: str) -> Session | None:
        return self.db.scalars(sa.select(Session).where(
            t.sessions.c.doctor_id == doctor_id, t.sessions.c.date == date,
            t.sessions.c.period == period)).first()

    def sessions(self, doctor_id: int, start: dt.date, end: dt.date) -> Sequence[Session]:
        return self.db.scalars(
            sa.select(Session).where(
                t.sessions.c.doctor_id == doctor_id,
                t.sessions.c.date >= start, t.sessions.c.date <= end,
            ).order_by(t.sessions.c.date, t.sessions.c.period)
        ).all()

    def sessions_on(self, date: dt.date) -> list[tuple[Session, Doctor, Department]]:
        """Every session of every doctor on ``date`` with its doctor and department."""
        rows = self.db.execute(
            sa.select(Session, Doctor, Department)
            .join(Doctor, t.doctors.c.id == t.sessions.c.doctor_id)
            .join(Department, t.departments.c.id == t.doctors.c.department_id)
            .where(t.sessions.c.date == date)
            .order_by(t.sessions.c.starts_at, t.departments.c.name, t.doctors.c.name)
        ).all()
        return [(s, d, dep) for s, d, dep in rows]

    def counts(self, session_ids: Sequence[int], now: dt.datetime) -> dict[int, SessionCounts]:
        """Free slots (bookable now) and bookings by status for each session."""
        if not session_ids:
            return {}
        free = self.free_counts(session_ids, now)
        by_status: dict[int, dict[str, int]] = {sid: {} for sid in session_ids}
        for sid, status, n in self.db.execute(
                sa.select(t.bookings.c.session_id, t.bookings.c.status, sa.func.count())
                .where(t.bookings.c.session_id.in_(session_ids))
                .group_by(t.bookings.c.session_id, t.bookings.c.status)).all():
            by_status[int(sid)][str(getattr(status, "value", status))] = int(n)
        return {sid: SessionCounts(free.get(sid, 0), by_status[sid]) for sid in session_ids}

    def released_between(self, start: dt.datetime, end: dt.datetime) -> list[int]:
        rows = self.db.scalars(sa.select(t.sessions.c.id).where(
            t.sessions.c.release_at > start, t.sessions.c.release_at <= end)).all()
        return [int(r) for r in rows]

    def free_counts(self, session_ids: Sequence[int], now: dt.datetime) -> dict[int, int]:
        """Slots each session can still give to a booking made now (for draw sessions: only
        leftovers already re-opened)."""
        if not session_ids:
            return {}
        s = t.sessions
        rows = self.db.execute(
            sa.select(t.slots.c.session_id, sa.func.count())
            .join(s, s.c.id == t.slots.c.session_id)
            .where(t.slots.c.session_id.in_(session_ids), t.slots.c.taken.is_(False),
                   _open_to_booking(now))
            .group_by(t.slots.c.session_id)
        ).all()
        counts = {sid: 0 for sid in session_ids}
        counts.update({int(sid): int(n) for sid, n in rows})
        return counts

    def session_at_a_glance(self, session_id: int, now: dt.datetime
                            ) -> tuple[Session, Doctor, int, int | None] | None:
        """The session, its doctor, its free slots now (as ``free_counts``) and the round
        taking entries for it now (as ``RoundRepository.open_rounds_of_sessions``), in one
        statement; None when there is no such session."""
        row = self.db.execute(_at_a_glance_statement(),
                              {"session": session_id, "now": now}).first()
        if row is None:
            return None
        return row[0], row[1], int(row[2]), None if row[3] is None else int(row[3])

    def claim_free_slot(self, session_id: int, now: dt.datetime, *,
                        leftovers_only: bool = False) -> ClaimedSlot | None:
        """Mark the lowest-numbered free slot taken and return it, or None, in one statement.

        On PostgreSQL concurrent claimers skip each other's locked rows instead of queueing,
        and the re-check of ``taken`` under the lock keeps two of them off one slot."""
        row = self.db.execute(claim_statement(leftovers_only),
                              {"session": session_id, "now": now}).first()
        return None if row is None else ClaimedSlot(int(row[0]), int(row[1]), row[2])

    def add_slots(self, session_id: int, starts: Sequence[dt.datetime]) -> None:
        """Numbered slots 1..n, in one round trip."""
        self.db.execute(sa.insert(t.slots), [
            {"session_id": session_id, "number": n, "starts_at": at, "taken": False}
            for n, at in enumerate(starts, start=1)])

    def unclaimed_slots(self, session_id: int) -> list[int]:
        """Free slots not yet given an opening time (a draw session's slots nobody won)."""
        return [int(x) for x in self.db.scalars(sa.select(t.slots.c.id).where(
            t.slots.c.session_id == session_id, t.slots.c.taken.is_(False),
            t.slots.c.open_from.is_(None))).all()]

    def fcfs_sellouts(self, released_after: dt.datetime, released_by: dt.datetime
                      ) -> list[tuple[int, int, dt.datetime, dt.datetime, dt.datetime]]:
        """(session, doctor, release time, first booking, when its last slot was first
        booked) of every sold-out fcfs session of a doctor not marked hot, released in the
        interval."""
        first = (sa.select(t.bookings.c.slot_id,
                           sa.func.min(t.bookings.c.created_at).label("at"))
                 .group_by(t.bookings.c.slot_id).subquery())
        s, d, sl = t.sessions, t.doctors, t.slots
        rows = self.db.execute(
            sa.select(s.c.id, s.c.doctor_id, s.c.release_at, sa.func.count(sl.c.id),
                      sa.func.count(first.c.at), sa.func.min(first.c.at),
                      sa.func.max(first.c.at))
            .join(d, d.c.id == s.c.doctor_id).join(sl, sl.c.session_id == s.c.id)
            .outerjoin(first, first.c.slot_id == sl.c.id)
            .where(s.c.release_policy == "fcfs", d.c.release_policy == "fcfs",
                   d.c.hot.is_(False), s.c.release_at > released_after,
                   s.c.release_at <= released_by)
            .group_by(s.c.id, s.c.doctor_id, s.c.release_at)).all()
        return [(int(sid), int(doc), at, earliest, last)
                for sid, doc, at, n, booked, earliest, last in rows
                if n and booked == n and last is not None]

    def reserve_slots(self, slot_ids: Sequence[int], until: dt.datetime) -> None:
        """Hold free slots back for a short round's draw: ``open_from`` is set to ``until``
        (the session's start), when no booking can be made any more."""
        if slot_ids:
            self.db.execute(sa.update(t.slots).where(t.slots.c.id.in_(list(slot_ids)))
                            .values(taken=False, open_from=until))

    def reserved_slots(self, session_id: int, until: dt.datetime) -> list[int]:
        """The session's free slots held back for a short round (``reserve_slots``)."""
        return [int(x) for x in self.db.scalars(sa.select(t.slots.c.id).where(
            t.slots.c.session_id == session_id, t.slots.c.taken.is_(False),
            t.slots.c.open_from == until).order_by(t.slots.c.number)).all()]

    def claim_for_draw(self, session_id: int, reserved_until: dt.datetime | None
                       ) -> ClaimedSlot | None:
        """Claim a slot for a draw winner: one nobody could book yet (``open_from`` unset),
        or, for a short round, one held back for it (``open_from`` = ``reserved_until``)."""
        opened = (t.slots.c.open_from.is_(None) if reserved_until is None
                  else t.slots.c.open_from == reserved_until)
        slot_id = self.db.scalar(
            sa.select(t.slots.c.id).where(t.slots.c.session_id == session_id,
                                          t.slots.c.taken.is_(False), opened)
            .order_by(t.slots.c.number).limit(1).with_for_update())
        if slot_id is None:
            return None
        number = self.db.execute(
            sa.update(t.slots).where(t.slots.c.id == slot_id, t.slots.c.taken.is_(False))
            .values(taken=True, open_from=None).returning(t.slots.c.number)).scalar_one()
        return ClaimedSlot(int(slot_id), int(number))

    def release_slot(self, slot_id: int, freed_at: dt.datetime, *,
                     open_from: dt.datetime | None = None) -> None:
        """Return a slot to the public pool at ``freed_at`` (bookable from ``open_from``, or
        at once when unset). Its ``freed_at`` is what a booking that takes it next reports as
        its re-opening; slots held back for a round (``reserve_slots``) or handed to the
        waitlist never come through here until they open to everyone."""
        self.db.execute(sa.update(t.slots).where(t.slots.c.id == slot_id)
                        .values(taken=False, open_from=open_from, freed_at=freed_at))

    def slot(self, slot_id: int) -> Slot | None:
        return self.db.get(Slot, slot_id)

    def slot_numbers(self, slot_ids: Sequence[int]) -> dict[int, int]:
        if not slot_ids:
            return {}
        return {int(i): int(n) for i, n in self.db.execute(
            sa.select(t.slots.c.id, t.slots.c.number)
            .where(t.slots.c.id.in_(set(slot_ids)))).all()}


@functools.cache
def _at_a_glance_statement() -> sa.Select[Session, Doctor, int, int | None]:
    """``ScheduleRepository.session_at_a_glance``'s statement, built once (its parameters
    bound at each call): the screen before every booking runs it."""
    s, slots, rs, r = t.sessions, t.slots, t.round_sessions, t.release_rounds
    now = sa.bindparam("now", type_=s.c.release_at.type)
    free = (sa.select(sa.func.count()).select_from(slots)
            .where(slots.c.session_id == s.c.id, slots.c.taken.is_(False),
                   _open_to_booking(now))
            .scalar_subquery())
    open_round = (sa.select(r.c.id).join(rs, rs.c.round_id == r.c.id)
                      .where(rs.c.session_id == s.c.id, taking_entries(now))
                      .order_by(r.c.id).limit(1).scalar_subquery())
    return (sa.select(Session, Doctor, free, open_round)
            .join(Doctor, t.doctors.c.id == s.c.doctor_id)
            .where(s.c.id == sa.bindparam("session")))


@functools.cache
def claim_statement(leftovers_only: bool) -> sa.Update:
    now = sa.bindparam("now", type_=t.slots.c.open_from.type)
    # Under the draw policy only leftovers (re-opened at their open_from) are bookable.
    opened = (t.slots.c.open_from <= now if leftovers_only else
              sa.or_(t.slots.c.open_from.is_(None), t.slots.c.open_from <= now))
    candidate = (
        sa.select(t.slots.c.id)
        .where(t.slots.c.session_id == sa.bindparam("session"), t.slots.c.taken.is_(False),
               opened)
        .order_by(t.slots.c.number)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    # ``freed_at`` is kept on the taken slot and read back here, in the claim itself: the
    # booking's event says when the slot last re-opened without another statement.
    return (sa.update(t.slots).where(t.slots.c.id == candidate, t.slots.c.taken.is_(False))
            .values(taken=True, open_from=None)
            .returning(t.slots.c.id, t.slots.c.number, t.slots.c.freed_at))

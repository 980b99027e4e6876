"""Repositories: the queries the services need, each in the hospital's words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.crypto import current_keyring
from fairslot.domain.accounts import Account, Patient, Role
from fairslot.domain.booking import ACTIVE_STATUSES, Booking, BookingStatus, Channel
from fairslot.domain.schedule import Department, Doctor, Hospital, Session, Slot
from fairslot.storage import tables as t

__all__ = [
    "AccountRepository",
    "BookingRepository",
    "EventRepository",
    "PatientRepository",
    "RoundRepository",
    "ScheduleRepository",
]


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

    def session(self, session_id: int) -> Session | None:
        return self.db.get(Session, session_id)

    def session_for_update(self, session_id: int) -> Session | None:
        return self.db.scalars(
            sa.select(Session).where(t.sessions.c.id == session_id).with_for_update()
        ).first()

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
        opened = sa.or_(
            t.slots.c.open_from <= now,
            sa.and_(t.slots.c.open_from.is_(None), s.c.release_policy == "fcfs"))
        rows = self.db.execute(
            sa.select(t.slots.c.session_id, sa.func.count())
            .join(s, s.c.id == t.slots.c.session_id)
            .where(t.slots.c.session_id.in_(session_ids), t.slots.c.taken.is_(False), opened)
            .group_by(t.slots.c.session_id)
        ).all()
        counts = {sid: 0 for sid in session_ids}
        counts.update({int(sid): int(n) for sid, n in rows})
        return counts

    def claim_free_slot(self, session_id: int, now: dt.datetime, *,
                        leftovers_only: bool = False) -> int | None:
        """Mark the lowest-numbered free slot taken and return its id, or None.

        On PostgreSQL concurrent claimers skip each other's locked rows instead of queueing,
        and the re-check of ``taken`` under the lock keeps two of them off one slot."""
        # Under the draw policy only leftovers (re-opened at their open_from) are bookable.
        opened = (t.slots.c.open_from <= now if leftovers_only else
                  sa.or_(t.slots.c.open_from.is_(None), t.slots.c.open_from <= now))
        candidate = (
            sa.select(t.slots.c.id)
            .where(t.slots.c.session_id == session_id, t.slots.c.taken.is_(False), opened)
            .order_by(t.slots.c.number)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        slot_id = self.db.execute(
            sa.update(t.slots).where(t.slots.c.id == candidate, t.slots.c.taken.is_(False))
            .values(taken=True, open_from=None).returning(t.slots.c.id)
        ).scalar()
        return None if slot_id is None else int(slot_id)

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

    def release_slot(self, slot_id: int, *, open_from: dt.datetime | None = None) -> None:
        self.db.execute(sa.update(t.slots).where(t.slots.c.id == slot_id)
                        .values(taken=False, open_from=open_from))

    def slot(self, slot_id: int) -> Slot | None:
        return self.db.get(Slot, slot_id)


class AccountRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def add(self, account: Account) -> None:
        self.db.add(account)

    def get(self, account_id: int) -> Account | None:
        return self.db.get(Account, account_id)

    def by_username(self, username: str) -> Account | None:
        return self.db.scalars(sa.select(Account).where(t.accounts.c.username == username)).first()

    def count_with_phone(self, phone: str) -> int:
        index = current_keyring().blind_index("phone", phone)
        return int(self.db.scalar(
            sa.select(sa.func.count()).where(t.accounts.c.phone_index == index)) or 0)

    def add_token(self, token_hash: str, account_id: int, now: dt.datetime,
                  expires_at: dt.datetime) -> None:
        self.db.execute(sa.insert(t.auth_tokens).values(
            token_hash=token_hash, account_id=account_id, created_at=now, expires_at=expires_at))

    def by_token(self, token_hash: str, now: dt.datetime) -> Account | None:
        return self.db.scalars(
            sa.select(Account).join(t.auth_tokens, t.auth_tokens.c.account_id == t.accounts.c.id)
            .where(t.auth_tokens.c.token_hash == token_hash, t.auth_tokens.c.expires_at > now)
        ).first()

    def drop_token(self, token_hash: str) -> None:
        self.db.execute(sa.delete(t.auth_tokens).where(t.auth_tokens.c.token_hash == token_hash))


class PatientRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def add(self, patient: Patient) -> None:
        self.db.add(patient)

    def get(self, patient_id: int) -> Patient | None:
        return self.db.get(Patient, patient_id)

    def by_id_number(self, id_number: str) -> Patient | None:
        index = current_keyring().blind_index("id_number", id_number)
        return self.db.scalars(
            sa.select(Patient).where(t.patients.c.id_number_index == index)).first()

    def of_account(self, account_id: int) -> Sequence[Patient]:
        return self.db.scalars(
            sa.select(Patient)
            .join(t.account_patients, t.account_patients.c.patient_id == t.patients.c.id)
            .where(t.account_patients.c.account_id == account_id)
            .order_by(t.account_patients.c.added_at)
        ).all()

    def is_managed_by(self, patient_id: int, account_id: int) -> bool:
        return self.db.scalar(sa.select(sa.func.count()).where(
            t.account_patients.c.account_id == account_id,
            t.account_patients.c.patient_id == patient_id)) == 1

    def link(self, account_id: int, patient_id: int, now: dt.datetime) -> None:
        self.db.execute(sa.insert(t.account_patients).values(
            account_id=account_id, patient_id=patient_id, added_at=now))

    def unlink(self, account_id: int, patient_id: int) -> int:
        result = self.db.execute(sa.delete(t.account_patients).where(
            t.account_patients.c.account_id == account_id,
            t.account_patients.c.patient_id == patient_id))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def count_of_account(self, account_id: int) -> int:
        return int(self.db.scalar(sa.select(sa.func.count()).where(
            t.account_patients.c.account_id == account_id)) or 0)

    def resident_known(self, id_index: str, name_check: str) -> bool:
        stored = self.db.scalar(sa.select(t.residents.c.name_check)
                                .where(t.residents.c.id_number_index == id_index))
        return stored is not None and stored == name_check

    def add_resident(self, id_index: str, name_check: str) -> bool:
        exists = self.db.scalar(sa.select(sa.func.count())
                                .where(t.residents.c.id_number_index == id_index))
        if exists:
            return False
        self.db.execute(sa.insert(t.residents).values(id_number_index=id_index,
                                                      name_check=name_check))
        return True


class BookingRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def add(self, booking: Booking) -> None:
        self.db.add(booking)

    def get(self, booking_id: int) -> Booking | None:
        return self.db.get(Booking, booking_id)

    def get_for_update(self, booking_id: int) -> Booking | None:
        return self.db.scalars(
            sa.select(Booking).where(t.bookings.c.id == booking_id).with_for_update()
        ).first()

    def active_for(self, patient_id: int, session_id: int) -> Booking | None:
        return self.db.scalars(sa.select(Booking).where(
            t.bookings.c.patient_id == patient_id, t.bookings.c.session_id == session_id,
            t.bookings.c.status.in_([s.value for s in ACTIVE_STATUSES]))).first()

    def of_account(self, account_id: int, limit: int = 200) -> Sequence[Booking]:
        return self.db.scalars(
            sa.select(Booking).where(t.bookings.c.account_id == account_id)
            .order_by(t.bookings.c.created_at.desc()).limit(limit)
        ).all()

    def of_session(self, session_id: int) -> Sequence[Booking]:
        return self.db.scalars(sa.select(Booking).where(t.bookings.c.session_id == session_id)
                               .order_by(t.bookings.c.id)).all()

    def desk_awaiting_payment(self, limit: int = 500) -> Sequence[Booking]:
        """Held draw wins and waitlist offers of patients a registration desk entered,
        soonest deadline first: the walk-in patients the desk has to reach."""
        desks = sa.select(t.accounts.c.id).where(t.accounts.c.role == Role.REGISTRATION.value)
        return self.db.scalars(
            sa.select(Booking).where(
                t.bookings.c.status == BookingStatus.HELD.value,
                t.bookings.c.channel.in_([Channel.DRAW.value, Channel.WAITLIST.value]),
                t.bookings.c.account_id.in_(desks))
            .order_by(t.bookings.c.pay_by, t.bookings.c.id).limit(limit)
        ).all()

    def overdue_holds(self, now: dt.datetime, limit: int = 500) -> Sequence[Booking]:
        return self.db.scalars(
            sa.select(Booking).where(t.bookings.c.status == BookingStatus.HELD.value,
                                     t.bookings.c.pay_by < now).limit(limit)
        ).all()

    def unattended(self, ended_before: dt.datetime, limit: int = 500) -> Sequence[Booking]:
        return self.db.scalars(
            sa.select(Booking).join(t.sessions, t.sessions.c.id == t.bookings.c.session_id)
            .where(t.bookings.c.status == BookingStatus.PAID.value,
                   t.sessions.c.ends_at < ended_before).limit(limit)
        ).all()

    # --- what quotas and credit rules need to know about a patient, account, phone, payer

    def active_count(self, patient_id: int, now: dt.datetime) -> int:
        return int(self.db.scalar(
            sa.select(sa.func.count()).select_from(t.bookings)
            .join(t.sessions, t.sessions.c.id == t.bookings.c.session_id)
            .where(t.bookings.c.patient_id == patient_id,
                   t.bookings.c.status.in_(["held", "paid"]), t.sessions.c.ends_at > now)
        ) or 0)

    def visits(self, patient_id: int, now: dt.datetime) -> list[tuple[str, dt.datetime]]:
        """(department id, session start) of the patient's live bookings."""
        rows = self.db.execute(
            sa.select(t.doctors.c.department_id, t.sessions.c.starts_at)
            .select_from(t.bookings)
            .join(t.sessions, t.sessions.c.id == t.bookings.c.session_id)
            .join(t.doctors, t.doctors.c.id == t.sessions.c.doctor_id)
            .where(t.bookings.c.patient_id == patient_id,
                   t.bookings.c.status.in_(["held", "paid", "checked_in"]))
        ).all()
        return [(str(d), at) for d, at in rows]

    def offences(self, patient_id: int, since: dt.datetime
                 ) -> tuple[list[dt.datetime], list[dt.datetime]]:
        """Times of the patient's no-shows and late cancellations since ``since``."""
        rows = self.db.execute(
            sa.select(t.bookings.c.status, t.bookings.c.closed_at, t.bookings.c.cancelled_at,
                      t.bookings.c.late_cancel)
            .where(t.bookings.c.patient_id == patient_id,
                   sa.or_(t.bookings.c.status == "no_show", t.bookings.c.late_cancel.is_(True)),
                   t.bookings.c.closed_at >= since)
        ).all()
        no_shows = [r.closed_at for r in rows if r.status.value == "no_show"]
        late = [r.cancelled_at for r in rows if r.late_cancel and r.cancelled_at is not None]
        return no_shows, late

    def served_by_account(self, account_id: int, since: dt.datetime
                          ) -> list[tuple[str, dt.datetime]]:
        rows = self.db.execute(
            sa.select(t.bookings.c.patient_id, t.bookings.c.created_at)
            .where(t.bookings.c.account_id == account_id, t.bookings.c.created_at >= since)
            .union_all(
                sa.select(t.entries.c.patient_id, t.entries.c.created_at)
                .where(t.entries.c.account_id == account_id, t.entries.c.created_at >= since,
                       t.entries.c.withdrawn.is_(False)))
        ).all()
        return [(str(p), at) for p, at in rows]

    def served_by_phone(self, phone_index: str, since: dt.datetime
                        ) -> list[tuple[str, dt.datetime]]:
        accounts = sa.select(t.accounts.c.id).where(t.accounts.c.phone_index == phone_index)
        rows = self.db.execute(
            sa.select(t.bookings.c.patient_id, t.bookings.c.created_at)
            .where(t.bookings.c.account_id.in_(accounts), t.bookings.c.created_at >= since)
        ).all()
        return [(str(p), at) for p, at in rows]

    def served_by_payer(self, payer_index: str, since: dt.datetime
                        ) -> list[tuple[str, dt.datetime]]:
        rows = self.db.execute(
            sa.select(t.bookings.c.patient_id, t.payments.c.paid_at)
            .join(t.bookings, t.bookings.c.id == t.payments.c.booking_id)
            .where(t.payments.c.payer_index == payer_index, t.payments.c.paid_at >= since)
        ).all()
        return [(str(p), at) for p, at in rows]

    def add_payment(self, **values: Any) -> None:
        values["payer_index"] = current_keyring().blind_index("payer", values["payer_account"])
        self.db.execute(sa.insert(t.payments).values(**values))

    def refund_payment(self, booking_id: int, now: dt.datetime) -> None:
        self.db.execute(sa.update(t.payments).where(
            t.payments.c.booking_id == booking_id, t.payments.c.refunded_at.is_(None))
            .values(refunded_at=now))


class EventRepository:
    """The append-only event log. There is deliberately no update or delete here."""

    def __init__(self, db: DbSession) -> None:
        self.db = db

    def append(self, kind: str, at: dt.datetime, **fields: Any) -> None:
        detail = fields.pop("detail", None) or {}
        self.db.execute(sa.insert(t.events).values(kind=kind, at=at, detail=detail, **fields))

    def recent(self, limit: int = 100, kind: str | None = None) -> Sequence[Any]:
        query = sa.select(t.events).order_by(t.events.c.id.desc()).limit(limit)
        if kind:
            query = query.where(t.events.c.kind == kind)
        return self.db.execute(query).all()


class RoundRepository:
    """Release rounds, their sessions and entries."""

    def __init__(self, db: DbSession) -> None:
        self.db = db

    def get(self, round_id: int, *, for_update: bool = False) -> Any:
        query = sa.select(t.release_rounds).where(t.release_rounds.c.id == round_id)
        if for_update:
            query = query.with_for_update()
        return self.db.execute(query).first()

    def joinable(self, department_id: int, closes_at: dt.datetime) -> Any:
        """An open round of this department and release time that nobody has entered yet:
        a session may still join it without changing a draw anyone is already in."""
        has_entries = sa.select(t.entries.c.id).where(
            t.entries.c.round_id == t.release_rounds.c.id).exists()
        return self.db.execute(sa.select(t.release_rounds).where(
            t.release_rounds.c.department_id == department_id,
            t.release_rounds.c.closes_at == closes_at, t.release_rounds.c.status == "open",
            ~has_entries)).first()

    def create(self, **values: Any) -> int:
        return int(self.db.execute(
            sa.insert(t.release_rounds).values(**values).returning(t.release_rounds.c.id)
        ).scalar_one())

    def update(self, round_id: int, **values: Any) -> None:
        self.db.execute(sa.update(t.release_rounds)
                        .where(t.release_rounds.c.id == round_id).values(**values))

    def add_session(self, round_id: int, session_id: int, capacity: int) -> None:
        self.db.execute(sa.insert(t.round_sessions).values(
            round_id=round_id, session_id=session_id, capacity=capacity))

    def sessions(self, round_id: int) -> list[int]:
        return list(self.capacities(round_id))

    def capacities(self, round_id: int) -> dict[int, int]:
        """Each session of the round and the slots it gives out, as published at open."""
        return {int(sid): int(cap) for sid, cap in self.db.execute(
            sa.select(t.round_sessions.c.session_id, t.round_sessions.c.capacity)
            .where(t.round_sessions.c.round_id == round_id)
            .order_by(t.round_sessions.c.session_id)).all()}

    def round_of_session(self, session_id: int) -> int | None:
        found = self.db.scalar(sa.select(t.round_sessions.c.round_id)
                               .where(t.round_sessions.c.session_id == session_id))
        return None if found is None else int(found)

    def unrounded_draw_sessions(self, opening_before: dt.datetime, now: dt.datetime,
                                window: dt.timedelta) -> list[Any]:
        """Draw sessions whose window has opened and that are in no round yet. Sessions whose
        release passed while no scheduler ran are included: their round is drawn at once
        (with no entries), so their slots become leftovers instead of staying shut."""
        s, d = t.sessions, t.doctors
        return list(self.db.execute(
            sa.select(s.c.id, s.c.release_at, d.c.department_id)
            .join(d, d.c.id == s.c.doctor_id)
            .outerjoin(t.round_sessions, t.round_sessions.c.session_id == s.c.id)
            .where(s.c.release_policy == "draw", s.c.status == "scheduled",
                   t.round_sessions.c.round_id.is_(None),
                   s.c.release_at <= opening_before, s.c.starts_at > now)
            .order_by(s.c.release_at, s.c.id)
        ).all())

    def due(self, now: dt.datetime) -> list[int]:
        return [int(x) for x in self.db.scalars(
            sa.select(t.release_rounds.c.id).where(t.release_rounds.c.status == "open",
                                                   t.release_rounds.c.closes_at <= now)
            .order_by(t.release_rounds.c.closes_at)).all()]

    def drawn_at(self, when: dt.datetime) -> list[int]:
        return [int(x) for x in self.db.scalars(
            sa.select(t.release_rounds.c.id).where(t.release_rounds.c.drawn_at == when)).all()]

    def open_rounds(self, now: dt.datetime) -> list[Any]:
        return list(self.db.execute(
            sa.select(t.release_rounds).where(t.release_rounds.c.status == "open",
                                              t.release_rounds.c.opens_at <= now)
            .order_by(t.release_rounds.c.closes_at)).all())

    # --- entries

    def entry_of(self, round_id: int, patient_id: int) -> Any:
        return self.db.execute(sa.select(t.entries).where(
            t.entries.c.round_id == round_id, t.entries.c.patient_id == patient_id)).first()

    def entry_by_key(self, account_id: int, key: str) -> Any:
        return self.db.execute(sa.select(t.entries).where(
            t.entries.c.account_id == account_id, t.entries.c.idempotency_key == key)).first()

    def entry(self, entry_id: int) -> Any:
        return self.db.execute(sa.select(t.entries).where(t.entries.c.id == entry_id)).first()

    def add_entry(self, **values: Any) -> int:
        return int(self.db.execute(
            sa.insert(t.entries).values(**values).returning(t.entries.c.id)).scalar_one())

    def update_entry(self, entry_id: int, **values: Any) -> None:
        self.db.execute(sa.update(t.entries).where(t.entries.c.id == entry_id).values(**values))

    def waitlist_ahead(self, round_id: int, position: int) -> int:
        return int(self.db.scalar(sa.select(sa.func.count()).where(
            t.entries.c.round_id == round_id, t.entries.c.outcome == "waitlist",
            t.entries.c.position < position)) or 0)

    def live_entries(self, round_id: int) -> list[Any]:
        return list(self.db.execute(
            sa.select(t.entries.c.id, t.entries.c.ref, t.entries.c.choices,
                      t.entries.c.patient_id, t.entries.c.account_id)
            .where(t.entries.c.round_id == round_id, t.entries.c.withdrawn.is_(False))
        ).all())

    def entries_of_account(self, account_id: int) -> list[Any]:
        return list(self.db.execute(
            sa.select(t.entries).where(t.entries.c.account_id == account_id)
            .order_by(t.entries.c.created_at.desc())).all())

    def open_entries_of_patient(self, patient_id: int) -> list[Any]:
        return list(self.db.execute(
            sa.select(t.entries.c.round_id, t.release_rounds.c.department_id,
                      t.release_rounds.c.closes_at)
            .join(t.release_rounds, t.release_rounds.c.id == t.entries.c.round_id)
            .where(t.entries.c.patient_id == patient_id, t.entries.c.withdrawn.is_(False),
                   t.release_rounds.c.status == "open")).all())

    def choice_counts(self, round_id: int) -> dict[int, int]:
        """First-choice counts per session, for the patient's odds while the window is open."""
        counts: dict[int, int] = {}
        for (choices,) in self.db.execute(
                sa.select(t.entries.c.choices).where(t.entries.c.round_id == round_id,
                                                     t.entries.c.withdrawn.is_(False))):
            if choices:
                counts[int(choices[0])] = counts.get(int(choices[0]), 0) + 1
        return counts

    def next_waiting(self, round_id: int, session_id: int) -> Any:
        """The first waitlisted entry, in draw order, that chose ``session_id``."""
        for row in self.db.execute(
                sa.select(t.entries).where(t.entries.c.round_id == round_id,
                                           t.entries.c.outcome == "waitlist")
                .order_by(t.entries.c.position)):
            if str(session_id) in [str(c) for c in row.choices]:
                return row
        return None

    def entry_for_booking(self, booking_id: int) -> Any:
        return self.db.execute(sa.select(t.entries)
                               .where(t.entries.c.booking_id == booking_id)).first()

    def all_entries(self, round_id: int) -> list[Any]:
        return list(self.db.execute(sa.select(t.entries).where(t.entries.c.round_id == round_id)
                                    .order_by(t.entries.c.ref)).all())

    def notify(self, account_id: int, at: dt.datetime, kind: str, text: str) -> None:
        self.db.execute(sa.insert(t.notifications).values(account_id=account_id, at=at,
                                                          kind=kind, text=text, read=False))

    def inbox(self, account_id: int, limit: int = 50) -> list[Any]:
        return list(self.db.execute(
            sa.select(t.notifications).where(t.notifications.c.account_id == account_id)
            .order_by(t.notifications.c.id.desc()).limit(limit)).all())

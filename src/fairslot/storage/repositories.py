"""Repositories: the queries the services need, each in the hospital's words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.crypto import current_keyring
from fairslot.domain.accounts import Account, Patient
from fairslot.domain.booking import ACTIVE_STATUSES, Booking, BookingStatus
from fairslot.domain.schedule import Department, Doctor, Hospital, Session, Slot
from fairslot.storage import tables as t

__all__ = [
    "AccountRepository",
    "BookingRepository",
    "EventRepository",
    "PatientRepository",
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
        """Slots each session can still give to a booking made now."""
        if not session_ids:
            return {}
        rows = self.db.execute(
            sa.select(t.slots.c.session_id, sa.func.count())
            .where(t.slots.c.session_id.in_(session_ids), t.slots.c.taken.is_(False),
                   sa.or_(t.slots.c.open_from.is_(None), t.slots.c.open_from <= now))
            .group_by(t.slots.c.session_id)
        ).all()
        counts = {sid: 0 for sid in session_ids}
        counts.update({int(sid): int(n) for sid, n in rows})
        return counts

    def claim_free_slot(self, session_id: int, now: dt.datetime) -> int | None:
        """Mark the lowest-numbered free slot taken and return its id, or None.

        On PostgreSQL concurrent claimers skip each other's locked rows instead of queueing,
        and the re-check of ``taken`` under the lock keeps two of them off one slot."""
        candidate = (
            sa.select(t.slots.c.id)
            .where(t.slots.c.session_id == session_id, t.slots.c.taken.is_(False),
                   sa.or_(t.slots.c.open_from.is_(None), t.slots.c.open_from <= now))
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

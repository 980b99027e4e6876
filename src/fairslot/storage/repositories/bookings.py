"""Bookings and their payments."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg.types.json
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session as DbSession

from fairslot.crypto import Keyring
from fairslot.domain.accounts import Patient, Role
from fairslot.domain.booking import SLOT_TAKEN_STATUSES, Booking, BookingStatus, Channel
from fairslot.domain.schedule import Department, Doctor, Session
from fairslot.storage import tables as t
from fairslot.storage.repositories import raw
from fairslot.storage.repositories.schedule import claim_statement

__all__ = ["BookingRepository", "BookingTarget", "Payment"]


@dataclasses.dataclass(frozen=True, slots=True)
class BookingTarget:
    """What a booking needs to know before it is made: the patient (managed by the booking
    account), the session and the department of its doctor."""

    patient: Patient
    session: Session
    department_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class Payment:
    id: int
    booking_id: int
    provider: str
    provider_ref: str | None
    amount_cents: int
    paid_at: dt.datetime
    refunded_at: dt.datetime | None
    payer_account: str

    @property
    def method(self) -> str:
        return self.payer_account.split(":", 1)[0]


class BookingRepository:
    def __init__(self, db: DbSession, keys: Keyring, *, postgres: bool) -> None:
        self.db = db
        self.keys = keys
        self.postgres = postgres

    def add(self, booking: Booking) -> None:
        self.db.add(booking)

    def insert(self, booking: Booking) -> None:
        """Write a new booking in one prepared statement and give it its id. The object is
        not tracked afterwards: to change it in this transaction, load it with
        ``get_for_update`` (the hot booking path never does)."""
        row = {f: getattr(booking, f) for f in _BOOKING_FIELDS}
        booking.id = int(self.db.execute(_INSERT_BOOKING, row).scalar_one())

    def hold_free_slot(self, booking: Booking, *, leftovers_only: bool,
                       event: dict[str, Any]) -> tuple[int, int, dt.datetime | None] | None:
        """PostgreSQL only: claim the session's lowest-numbered free slot (as
        ``ScheduleRepository.claim_free_slot``), insert ``booking`` on it and append its
        event, in one statement (three before: the booking path's round trips and
        per-statement costs were most of its database time). ``event`` holds the event
        row's columns except ``booking_id``; the slot's id is added to its ``detail`` as
        ``slot``, and when the slot had re-opened (``slots.freed_at``) that moment as
        ``freed_at``. Sets ``booking.slot_id`` and ``booking.id`` and returns the slot's (id,
        number, freed_at), or None (nothing written) when no slot is free."""
        params = {f"b_{f}": getattr(booking, f) for f in _BOOKING_FIELDS if f != "slot_id"}
        params.update({f"e_{k}": event.get(k) for k in _HOLD_EVENT_FIELDS})
        params["session"] = booking.session_id
        params["now"] = booking.created_at
        row = self.db.execute(_hold_statement(leftovers_only), params).first()
        if row is None:
            return None
        booking.slot_id = int(row[0])
        booking.id = int(row[2])
        return int(row[0]), int(row[1]), row[3]

    # --- PostgreSQL's fast path: two messages per booking (migration 0018's functions)

    def read_for_booking(self, lock_keys: list[int], account_id: int, patient_id: int,
                         session_id: int, facts: dict[str, Any]
                         ) -> tuple[BookingTarget | None, list[tuple[str, str | None,
                                                                    dt.datetime | None]]]:
        """PostgreSQL only: what ``target`` and then ``QuotaRepository.facts`` read (with
        ``facts`` as that method's keywords), in one message to the server: the quota
        locks, the look-up and the facts, each statement a function call whose plans the
        server keeps. Opens the transaction first when the connection is in autocommit
        (``UnitOfWork.autocommit``): the locks are held until ``hold_and_commit`` or the
        unit of work ends it. Returns the target (None: nothing found) and the fact rows."""
        params = (lock_keys, account_id, patient_id, session_id, patient_id, facts["now"],
                  facts["served_since"], facts["offences_since"], facts.get("session_id"),
                  facts.get("account_id"), facts.get("phone_index"))
        row, facts_rows = raw.read_with_facts(self.db, _FAST_READ, params)
        if row is None:
            return None, facts_rows
        dialect = self.db.get_bind().dialect
        values = dict(zip(_FAST_TARGET_COLUMNS, row, strict=True))
        patient = Patient(**{f: values[k] if decode is None else decode(values[k], dialect)
                             for f, k, decode in _PATIENT_DECODERS})
        session = Session(**{f: values[k] if decode is None else decode(values[k], dialect)
                             for f, k, decode in _SESSION_DECODERS})
        return BookingTarget(patient, session, int(values["department_id"])), facts_rows

    def hold_and_commit(self, booking: Booking, *, leftovers_only: bool,
                        event: dict[str, Any], commit: bool
                        ) -> tuple[int, int, dt.datetime | None] | None:
        """PostgreSQL only: ``hold_free_slot`` as one function call, and with ``commit`` the
        transaction's ``COMMIT`` in the same message: only for a transaction that wrote
        nothing else (when no slot is free, the hold writes nothing and the commit ends a
        transaction of reads and locks). ``event`` as for ``hold_free_slot`` (its kind is
        booking.created)."""
        assert booking.payer_account is None and booking.paid_at is None
        conn = raw.connection(self.db)
        params = (booking.session_id, booking.created_at, leftovers_only, booking.patient_id,
                  booking.account_id, booking.fee_cents, booking.pay_by,
                  booking.channel.value, booking.status.value, booking.review,
                  event.get("ip"), event.get("device_id"),
                  psycopg.types.json.Jsonb(event.get("detail") or {}))
        with raw.errors(), psycopg.ClientCursor(conn) as cur:
            cur.execute(_FAST_HOLD + ("; COMMIT" if commit else ""), params)
            row = cur.fetchone()
        if row is None:
            return None
        booking.slot_id = int(row[0])
        booking.id = int(row[2])
        return int(row[0]), int(row[1]), row[3]

    def get(self, booking_id: int) -> Booking | None:
        return self.db.get(Booking, booking_id)

    def get_for_update(self, booking_id: int) -> Booking | None:
        # populate_existing: a booking this transaction read before it took its locks is
        # re-read now, or the row's lock would guard a stale copy (a payment committed in
        # between was then cancelled as a held booking, unrefunded).
        return self.db.scalars(
            sa.select(Booking).where(t.bookings.c.id == booking_id).with_for_update()
            .execution_options(populate_existing=True)
        ).first()

    def target(self, account_id: int, patient_id: int, session_id: int,
               lock_keys: list[int]) -> BookingTarget | None:
        """The patient (if ``account_id`` manages them now), the session and its department,
        in one statement; on PostgreSQL the same statement takes ``lock_keys`` (see
        ``storage.locks``). None when the account does not manage the patient or there is
        no such session; nothing is locked then."""
        locks = lock_keys if self.postgres else []
        params: dict[str, Any] = {"account": account_id, "patient": patient_id,
                                  "session": session_id}
        params.update({f"lock{i}": key for i, key in enumerate(locks)})
        row = self.db.execute(_target_statement(len(locks)), params).first()
        if row is None:
            return None
        values = row._mapping
        patient = Patient(**{f: values[f"p_{f}"] for f in _PATIENT_FIELDS})
        session = Session(**{f: values[f"s_{f}"] for f in _SESSION_FIELDS})
        return BookingTarget(patient, session, int(values["department_id"]))

    def active_for(self, patient_id: int, session_id: int) -> Booking | None:
        """The patient's booking that holds a slot of the session, if any."""
        return self.db.scalars(sa.select(Booking).where(
            t.bookings.c.patient_id == patient_id, t.bookings.c.session_id == session_id,
            t.bookings.c.status.in_([s.value for s in SLOT_TAKEN_STATUSES]))).first()

    def of_account(self, account_id: int, limit: int = 200) -> Sequence[Booking]:
        return self.db.scalars(
            sa.select(Booking).where(t.bookings.c.account_id == account_id)
            .order_by(t.bookings.c.created_at.desc()).limit(limit)
        ).all()

    def of_patients(self, patient_ids: Sequence[int], limit: int = 200) -> Sequence[Booking]:
        if not patient_ids:
            return []
        return self.db.scalars(
            sa.select(Booking).where(t.bookings.c.patient_id.in_(set(patient_ids)))
            .order_by(t.bookings.c.created_at.desc()).limit(limit)
        ).all()

    def of_session(self, session_id: int) -> Sequence[Booking]:
        return self.db.scalars(sa.select(Booking).where(t.bookings.c.session_id == session_id)
                               .order_by(t.bookings.c.slot_id, t.bookings.c.id)).all()

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

    def under_review(self, limit: int = 500) -> Sequence[Booking]:
        """Bookings held for review by a monitoring decision, oldest first (the review
        queue)."""
        return self.db.scalars(
            sa.select(Booking).where(t.bookings.c.review == "pending",
                                     t.bookings.c.status == BookingStatus.HELD.value)
            .order_by(t.bookings.c.created_at, t.bookings.c.id).limit(limit)
        ).all()

    def overdue_holds(self, now: dt.datetime, limit: int = 500) -> Sequence[Booking]:
        return self.db.scalars(
            sa.select(Booking).where(t.bookings.c.status == BookingStatus.HELD.value,
                                     t.bookings.c.pay_by < now)
            .order_by(t.bookings.c.id).limit(limit).with_for_update(skip_locked=True)
        ).all()

    def reminders_due(self, kind: str, status: BookingStatus, column: str,
                      start: dt.datetime, end: dt.datetime, limit: int = 500
                      ) -> list[tuple[Booking, Session]]:
        """Bookings in ``status`` whose ``column`` (``pay_by`` of the booking or
        ``starts_at`` of its session) falls in [start, end) and that have no ``kind``
        event yet (a reminder is sent once)."""
        when = t.bookings.c.pay_by if column == "pay_by" else t.sessions.c.starts_at
        sent = sa.exists().where(t.events.c.kind == kind,
                                 t.events.c.booking_id == t.bookings.c.id)
        rows = self.db.execute(
            sa.select(Booking, Session).join(t.sessions, t.sessions.c.id == t.bookings.c.session_id)
            .where(t.bookings.c.status == status.value, when >= start, when < end, ~sent)
            .order_by(t.bookings.c.id).limit(limit)).all()
        return [(b, s) for b, s in rows]

    def unattended(self, ended_before: dt.datetime, limit: int = 500) -> list[
            tuple[Booking, Session]]:
        rows = self.db.execute(
            sa.select(Booking, Session).join(Session, t.sessions.c.id == t.bookings.c.session_id)
            .where(t.bookings.c.status == BookingStatus.PAID.value,
                   t.sessions.c.ends_at < ended_before)
            .order_by(t.bookings.c.id).limit(limit).with_for_update(of=t.bookings,
                                                                   skip_locked=True)
        ).all()
        return [(b, s) for b, s in rows]

    def context_of(self, bookings: Sequence[Booking]) -> tuple[
            dict[int, Session], dict[int, Patient], dict[int, int], dict[int, Doctor],
            dict[int, Department]]:
        """Sessions, patients, slot numbers, doctors and departments of ``bookings``, in
        five queries however many bookings there are."""
        if not bookings:
            return {}, {}, {}, {}, {}
        sessions = {s.id or 0: s for s in self.db.scalars(sa.select(Session).where(
            t.sessions.c.id.in_({b.session_id for b in bookings})))}
        patients = {p.id or 0: p for p in self.db.scalars(sa.select(Patient).where(
            t.patients.c.id.in_({b.patient_id for b in bookings})))}
        numbers = {int(i): int(n) for i, n in self.db.execute(
            sa.select(t.slots.c.id, t.slots.c.number)
            .where(t.slots.c.id.in_({b.slot_id for b in bookings}))).all()}
        doctors = {d.id or 0: d for d in self.db.scalars(sa.select(Doctor).where(
            t.doctors.c.id.in_({s.doctor_id for s in sessions.values()})))}
        departments = {d.id or 0: d for d in self.db.scalars(sa.select(Department).where(
            t.departments.c.id.in_({d.department_id for d in doctors.values()})))}
        return sessions, patients, numbers, doctors, departments

    # --- payments

    def add_payment(self, *, booking_id: int, provider: str, provider_ref: str | None,
                    payer_account: str, amount_cents: int, paid_at: dt.datetime,
                    payer_key: str | None = None) -> int:
        """``payer_key``: who pays as the provider identifies them (the payer index and the
        payer quota key on it); ``payer_account`` when not given."""
        return int(self.db.execute(sa.insert(t.payments).values(
            booking_id=booking_id, provider=provider, provider_ref=provider_ref,
            payer_account=payer_account,
            payer_index=self.keys.blind_index("payer", payer_key or payer_account),
            amount_cents=amount_cents, paid_at=paid_at).returning(t.payments.c.id)).scalar_one())

    def set_payment_ref(self, payment_id: int, provider_ref: str) -> None:
        self.db.execute(sa.update(t.payments).where(t.payments.c.id == payment_id)
                        .values(provider_ref=provider_ref))

    def payment(self, payment_id: int) -> Payment | None:
        row = self.db.execute(sa.select(t.payments).where(t.payments.c.id == payment_id)).first()
        return None if row is None else _payment(row)

    def payment_of(self, booking_id: int) -> Payment | None:
        row = self.db.execute(sa.select(t.payments).where(t.payments.c.booking_id == booking_id)
                              .order_by(t.payments.c.id.desc())).first()
        return None if row is None else _payment(row)

    def refund_payment(self, booking_id: int, now: dt.datetime) -> Payment | None:
        """Mark the booking's payment refunded; the refund itself goes through the payment
        provider from the outbox (see ``services.outbox``)."""
        payment = self.payment_of(booking_id)
        if payment is None or payment.refunded_at is not None:
            return None
        self.db.execute(sa.update(t.payments).where(t.payments.c.id == payment.id)
                        .values(refunded_at=now))
        return dataclasses.replace(payment, refunded_at=now)

    def served_by_payer(self, payer_index: str, since: dt.datetime
                        ) -> list[tuple[str, dt.datetime]]:
        rows = self.db.execute(
            sa.select(t.bookings.c.patient_id, t.payments.c.paid_at)
            .join(t.bookings, t.bookings.c.id == t.payments.c.booking_id)
            .where(t.payments.c.payer_index == payer_index, t.payments.c.paid_at >= since)
        ).all()
        return [(str(p), at) for p, at in rows]


_BOOKING_FIELDS = tuple(f.name for f in dataclasses.fields(Booking) if f.name != "id")
_INSERT_BOOKING = sa.insert(t.bookings).returning(t.bookings.c.id)
_PATIENT_FIELDS = tuple(f.name for f in dataclasses.fields(Patient))
_HOLD_EVENT_FIELDS = ("at", "kind", "account_id", "patient_id", "session_id", "ip",
                      "device_id", "detail")


@functools.cache
def _hold_statement(leftovers_only: bool) -> sa.Select[Any]:
    """``hold_free_slot``'s statement, built once: the slot's UPDATE, the booking's INSERT
    and the event's INSERT as data-modifying CTEs, each feeding the next (nothing is
    inserted when no slot was claimed)."""
    claimed = claim_statement(leftovers_only).cte("claimed")
    b, e = t.bookings, t.events
    booked = sa.insert(b).from_select(
        list(_BOOKING_FIELDS),
        sa.select(*[claimed.c.id if f == "slot_id" else
                    sa.bindparam(f"b_{f}", type_=b.c[f].type) for f in _BOOKING_FIELDS]),
    ).returning(b.c.id, b.c.slot_id).cte("booked")
    # The re-opening as the services write times in a detail (ISO 8601, UTC), only if any.
    freed = sa.case(
        (claimed.c.freed_at.is_(None), sa.cast(sa.literal("{}"), JSONB)),
        else_=sa.func.jsonb_build_object("freed_at", sa.func.to_char(
            sa.func.timezone("UTC", claimed.c.freed_at),
            'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')))
    detail = sa.cast(
        sa.cast(sa.bindparam("e_detail", type_=sa.JSON), JSONB).op("||")(
            sa.func.jsonb_build_object("slot", booked.c.slot_id)).op("||")(freed),
        e.c.detail.type)
    columns = [f for f in _HOLD_EVENT_FIELDS if f != "detail"]
    logged = sa.insert(e).from_select(
        [*columns, "booking_id", "detail"],
        sa.select(*[sa.bindparam(f"e_{f}", type_=e.c[f].type) for f in columns],
                  booked.c.id, detail)
        .select_from(booked.join(claimed, claimed.c.id == booked.c.slot_id)),
    ).cte("logged")
    return (sa.select(claimed.c.id, claimed.c.number, booked.c.id, claimed.c.freed_at)
            .select_from(claimed.join(booked, booked.c.slot_id == claimed.c.id))
            .add_cte(logged))
_SESSION_FIELDS = tuple(f.name for f in dataclasses.fields(Session))
_FAST_TARGET_COLUMNS = (*(f"p_{f}" for f in _PATIENT_FIELDS if f != "id"), "p_id",
                        *(f"s_{f}" for f in _SESSION_FIELDS if f != "id"), "s_id",
                        "department_id")
_FAST_READ = (
    "SELECT " + ", ".join(_FAST_TARGET_COLUMNS)
    + " FROM fairslot_booking_target(%s::bigint[], %s::integer, %s::integer, %s::integer);"
    " SELECT kind, key, at FROM fairslot_quota_facts(%s::integer, %s::timestamptz,"
    " %s::timestamptz, %s::timestamptz, %s::integer, %s::integer, %s::varchar)")
# Each parameter cast to the function's type: the call resolves to the one function
# whatever a literal looks like (a NULL, a small number).
_FAST_HOLD = (
    "SELECT slot_id, slot_number, booking_id, freed_at FROM fairslot_hold_booking("
    "%s::integer, %s::timestamptz, %s::boolean, %s::integer, %s::integer, %s::integer,"
    " %s::timestamptz, %s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::varchar,"
    " %s::jsonb)")


_PATIENT_DECODERS = raw.decoders(t.patients, _PATIENT_FIELDS, "p_")
_SESSION_DECODERS = raw.decoders(t.sessions, _SESSION_FIELDS, "s_")


@functools.cache
def _target_statement(locks: int) -> sa.Select[Any]:
    """The booking's look-up, built once per number of locks: on the hot path a booking
    pays for no query composition and no ORM loading (the rows become plain objects)."""
    ap = t.account_patients
    columns = ([t.patients.c[f].label(f"p_{f}") for f in _PATIENT_FIELDS]
               + [t.sessions.c[f].label(f"s_{f}") for f in _SESSION_FIELDS]
               + [t.doctors.c.department_id]
               + [sa.func.pg_advisory_xact_lock(sa.bindparam(f"lock{i}", type_=sa.BigInteger))
                  .label(f"lock{i}") for i in range(locks)])
    return (sa.select(*columns).select_from(t.patients)
            .join(ap, sa.and_(ap.c.patient_id == t.patients.c.id,
                              ap.c.account_id == sa.bindparam("account"),
                              ap.c.removed_at.is_(None)))
            .join(t.sessions, t.sessions.c.id == sa.bindparam("session"))
            .join(t.doctors, t.doctors.c.id == t.sessions.c.doctor_id)
            .where(t.patients.c.id == sa.bindparam("patient")))


def _payment(row: Any) -> Payment:
    return Payment(id=row.id, booking_id=row.booking_id, provider=row.provider,
                   provider_ref=row.provider_ref, amount_cents=row.amount_cents,
                   paid_at=row.paid_at, refunded_at=row.refunded_at,
                   payer_account=row.payer_account)

"""Records export in the exchange format (see docs/records.md): bookings, payments and access
rows, as CSV or Parquet. PII is pseudonymised unless clear values are asked for."""

from __future__ import annotations

import datetime as dt
import enum
import pathlib
from collections.abc import Iterator
from typing import Any

import polars as pl
import sqlalchemy as sa

from fairslot.csvsafe import neutralise, private_file
from fairslot.domain.errors import FairslotError
from fairslot.services.deps import Deps
from fairslot.storage import tables as t
from fairslot.storage.uow import UnitOfWork

__all__ = ["ExportFailed", "PiiMode", "export_records"]

BOOKING_STATUS = {"held": "booked", "expired": "cancelled"}
EXPORTED_CHANNELS = frozenset({"web", "app", "window", "draw", "waitlist"})
"""Channels written as themselves: ``draw`` and ``waitlist`` bookings are made by the
platform (a draw's winner, the next on a waitlist), so investigators must not read their
creation time as a person's reaction to a release."""


class PiiMode(enum.StrEnum):
    PSEUDONYMISED = "pseudonymised"
    """ID numbers, names, phones and payer accounts become stable ``h:`` tokens."""
    CLEAR = "clear"
    """Clear values, for an investigator handing evidence to the police."""


def _iso(value: dt.datetime | None, zone: Any) -> str | None:
    return None if value is None else value.astimezone(zone).isoformat(timespec="milliseconds")


def _freed_at(detail: Any) -> dt.datetime | None:
    """When the slot a booking took had last re-opened, from its ``booking.created`` event
    (``freed_at``, written by the claim since migration 0017; absent before and for a slot
    free since its release)."""
    value = detail.get("freed_at") if isinstance(detail, dict) else None
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _rows(uow: UnitOfWork, query: sa.Select[Any], batch: int = 5000) -> Iterator[Any]:
    result = uow.db.connection().execution_options(stream_results=True).execute(query)
    while chunk := result.fetchmany(batch):
        yield from chunk


def export_records(uow: UnitOfWork, deps: Deps, out: pathlib.Path, *,
                   since: dt.datetime | None,
                   until: dt.datetime | None, fmt: str = "csv",
                   pii: PiiMode = PiiMode.PSEUDONYMISED) -> dict[str, int]:
    zone = deps.settings.zone
    keys = deps.keyring

    def protect(kind: str, value: str | None) -> str | None:
        if value is None or pii is PiiMode.CLEAR:
            return value
        return keys.pseudonym(kind, value)

    def window(column: Any) -> list[Any]:
        conditions = []
        if since is not None:
            conditions.append(column >= since)
        if until is not None:
            conditions.append(column < until)
        return conditions

    b, s, d, p, dep = t.bookings, t.sessions, t.doctors, t.patients, t.departments
    created = sa.select(t.events.c.booking_id, t.events.c.ip, t.events.c.device_id,
                        t.events.c.detail).where(
        t.events.c.kind == "booking.created").subquery()
    hospital_code = sa.select(t.hospitals.c.code).where(
        t.hospitals.c.id == dep.c.hospital_id).scalar_subquery()
    bookings_q = (
        sa.select(b.c.id, b.c.created_at, b.c.account_id, p.c.id_number, p.c.name, p.c.phone,
                  hospital_code.label("hospital"), dep.c.code, s.c.doctor_id, s.c.starts_at,
                  s.c.release_at, b.c.channel, created.c.ip, created.c.device_id, b.c.status,
                  b.c.cancelled_at, b.c.fee_cents, created.c.detail)
        .join(s, s.c.id == b.c.session_id).join(d, d.c.id == s.c.doctor_id)
        .join(dep, dep.c.id == d.c.department_id).join(p, p.c.id == b.c.patient_id)
        .outerjoin(created, created.c.booking_id == b.c.id)
        .where(*window(b.c.created_at)).order_by(b.c.id)
    )
    bookings = [{
        "booking_id": str(r.id), "created_at": _iso(r.created_at, zone),
        "account_id": str(r.account_id), "patient_id_number": protect("id_number", r.id_number),
        # The platform registers patients by resident ID only (``normalize_id_number``).
        "patient_id_type": "resident_id",
        "patient_name": protect("name", r.name), "patient_phone": protect("phone", r.phone),
        "hospital_id": r.hospital, "department": r.code, "doctor_id": str(r.doctor_id),
        "session_start": _iso(r.starts_at, zone), "released_at": _iso(r.release_at, zone),
        "channel": r.channel.value if r.channel.value in EXPORTED_CHANNELS else "other",
        "ip": r.ip, "device_id": r.device_id,
        "status": BOOKING_STATUS.get(r.status.value, r.status.value),
        "cancelled_at": _iso(r.cancelled_at, zone), "fee": f"{r.fee_cents / 100:.2f}",
        "slot_freed_at": _iso(_freed_at(r.detail), zone),
    } for r in _rows(uow, bookings_q)]

    pay = t.payments
    payments = [{
        "payment_id": str(r.id), "booking_id": str(r.booking_id),
        "paid_at": _iso(r.paid_at, zone), "payer_account": _payer(protect, r.payer_account),
        "amount": f"{r.amount_cents / 100:.2f}", "refunded_at": _iso(r.refunded_at, zone),
    } for r in _rows(uow, sa.select(pay).where(*window(pay.c.paid_at)).order_by(pay.c.id))]

    ev = t.events
    access = [{
        "ts": _iso(r.at, zone), "ip": r.ip, "account_id": None if r.account_id is None
        else str(r.account_id), "device_id": r.device_id, "method": r.detail.get("method"),
        "path": r.detail.get("path"), "status": r.detail.get("status"),
        "user_agent": r.detail.get("user_agent"),
    } for r in _rows(uow, sa.select(ev).where(ev.c.kind == "access", *window(ev.c.at))
                     .order_by(ev.c.id))]

    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    # Each table is written to a ".partial" file first and all are renamed only when every
    # one is complete: a full disk or a crash leaves no file that looks like an export.
    written: list[tuple[pathlib.Path, pathlib.Path]] = []
    try:
        for name, rows, columns in (("bookings", bookings, BOOKING_COLUMNS),
                                    ("payments", payments, PAYMENT_COLUMNS),
                                    ("access", access, ACCESS_COLUMNS)):
            frame = pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String),
                                 orient="row") \
                if rows else pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
            path = out / f"{name}.{fmt}"
            partial = out / f".{name}.{fmt}.partial"
            written.append((partial, path))
            # Exports hold evidence (and clear PII when asked): readable by the owner only.
            private_file(partial)
            if fmt == "parquet":
                frame.write_parquet(partial)
            else:
                neutralise(frame).write_csv(partial)
            counts[name] = frame.height
    except OSError as exc:
        for partial, _ in written:
            partial.unlink(missing_ok=True)
        raise ExportFailed(f"could not write the export to {out}: "
                           f"{exc.strerror or exc}; nothing was "
                           "exported") from None
    for partial, path in written:
        partial.replace(path)
    return counts


class ExportFailed(FairslotError):
    """The export could not be written (a full disk, no permission): no file of it is
    left behind."""

    status = 507
    code = "export_failed"
    title = "Export failed"


def _payer(protect: Any, payer: str) -> str:
    # Keep the method prefix: "paid by card" is evidence even when the card is hidden.
    method = payer.partition(":")[0]
    hidden = protect("payer", payer)
    return payer if hidden == payer else f"{method}:{hidden}"


BOOKING_COLUMNS = ["booking_id", "created_at", "account_id", "patient_id_number",
                   "patient_id_type", "patient_name", "patient_phone", "hospital_id",
                   "department", "doctor_id", "session_start",
                   "released_at", "channel", "ip", "device_id", "status", "cancelled_at", "fee",
                   "slot_freed_at"]
PAYMENT_COLUMNS = ["payment_id", "booking_id", "paid_at", "payer_account", "amount",
                   "refunded_at"]
ACCESS_COLUMNS = ["ts", "ip", "account_id", "device_id", "method", "path", "status",
                  "user_agent"]

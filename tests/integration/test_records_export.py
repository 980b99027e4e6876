"""The records export writes exactly the exchange format, and protects PII by default."""

from __future__ import annotations

import csv
import datetime as dt
import pathlib

import polars as pl
import pytest
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.investigation.records import read_records
from fairslot.monitoring.replay import Pseudonyms, events_from_records
from fairslot.services.booking import book, cancel, pay
from fairslot.services.context import RequestContext
from fairslot.services.export import (
    ACCESS_COLUMNS,
    BOOKING_COLUMNS,
    PAYMENT_COLUMNS,
    PiiMode,
    export_records,
)
from fairslot.web.app import create_app
from tests.conftest import World


def _read(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_export_has_the_contract_columns_and_pseudonymises_pii(world: World,
                                                               tmp_path: pathlib.Path) -> None:
    account, (pid,), token = world.patient_account("exported")
    ctx = RequestContext(ip="198.51.100.7", device_id="dev-1")
    view = world.platform.run(book, account, pid, world.session_ids[0], ctx)
    world.platform.run(pay, account, view.booking.id or 0, "card:6222020000004321", ctx)
    with TestClient(create_app(world.platform)) as client:
        client.get("/api/v1/me/bookings", headers={"Authorization": f"Bearer {token}"})

    counts = world.platform.run(export_records, tmp_path, since=None, until=None)
    assert counts == {"bookings": 1, "payments": 1, "access": 1}
    bookings = _read(tmp_path / "bookings.csv")
    assert list(bookings[0]) == BOOKING_COLUMNS
    row = bookings[0]
    assert row["patient_id_number"].startswith("h:")
    assert view.patient.id_number not in (tmp_path / "bookings.csv").read_text()
    assert row["ip"] == "198.51.100.7" and row["status"] == "paid" and row["fee"] == "50.00"
    assert row["created_at"].endswith("+08:00")
    payments = _read(tmp_path / "payments.csv")
    assert list(payments[0]) == PAYMENT_COLUMNS
    assert payments[0]["payer_account"].startswith("card:h:")
    access = _read(tmp_path / "access.csv")
    assert list(access[0]) == ACCESS_COLUMNS
    assert access[0]["path"] == "/api/v1/me/bookings" and access[0]["status"] == "200"
    assert (tmp_path / "bookings.csv").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_clear_export_to_parquet_keeps_the_real_values(world: World,
                                                       tmp_path: pathlib.Path) -> None:
    account, (pid,), _ = world.patient_account("evidence")
    view = world.platform.run(book, account, pid, world.session_ids[0], RequestContext())
    world.platform.run(export_records, tmp_path, since=None, until=None, fmt="parquet",
                   pii=PiiMode.CLEAR)
    frame = pl.read_parquet(tmp_path / "bookings.parquet")
    assert frame["patient_id_number"].to_list() == [view.patient.id_number]
    assert frame["status"].to_list() == ["booked"]


def test_a_booking_of_a_reopened_slot_exports_when_it_reopened(world: World,
                                                             tmp_path: pathlib.Path) -> None:
    """``slot_freed_at`` (optional, docs/records.md): empty for a slot free since its
    release, the cancellation's moment for a slot taken after one; the monitor's replay of
    the export measures from it."""
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    run = world.platform.run
    holder, (held_for,), _ = world.patient_account("holder")
    poller, (caught_for,), _ = world.patient_account("poller")
    ctx = RequestContext(ip="198.51.100.7", device_id="dev-1")
    held = run(book, holder, held_for, world.session_ids[0], ctx)
    clock.advance(120)
    run(cancel, holder, held.booking.id or 0, ctx)
    freed = clock.now()
    clock.advance(0.25)
    caught = run(book, poller, caught_for, world.session_ids[0], ctx)
    assert caught.booking.slot_id == held.booking.slot_id
    run(export_records, tmp_path, since=None, until=None)
    rows = {r["booking_id"]: r for r in _read(tmp_path / "bookings.csv")}
    assert rows[str(held.booking.id)]["slot_freed_at"] == ""
    at = dt.datetime.fromisoformat(rows[str(caught.booking.id)]["slot_freed_at"])
    assert at == freed and at.utcoffset() == dt.timedelta(hours=8)
    events = events_from_records(read_records(tmp_path, zone=world.platform.settings.zone),
                                 Pseudonyms(b"k" * 32))
    created = {e.booking: e for e in events if e.kind == "booking.created"}
    assert "freed_ts" not in created[str(held.booking.id)].detail
    assert created[str(caught.booking.id)].detail["freed_ts"] == freed.timestamp()

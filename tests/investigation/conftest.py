"""Helpers to write tiny hand-made record folders for the investigation tests."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from fairslot.investigation.records import BOOKING_COLUMNS, PAYMENT_COLUMNS

VALID_IDS = ("110101198001010037", "110102199002020027", "110105197503030012",
             "310104200105050021", "110108196506060019", "120101198807070022",
             "310101199909090016", "110106197012120028", "310105198511110014",
             "310110199404040028", "12010319780808001X", "110101200203030036")


def booking(booking_id: str, **values: Any) -> dict[str, Any]:
    """A plain, genuine-looking booking; tests override what they are about."""
    row: dict[str, Any] = {
        "booking_id": booking_id, "created_at": "2025-03-01T10:00:00+08:00",
        "account_id": "acc1", "patient_id_number": VALID_IDS[0], "patient_name": "王伟",
        "patient_phone": "13800000000", "department": "心内科", "doctor_id": "d1",
        "session_start": "2025-03-16T08:00:00+08:00",
        "released_at": "2025-03-01T07:30:00+08:00", "ip": "100.1.1.1", "device_id": "dev1",
        "status": "checked_in", "fee": "50",
    }
    row.update(values)
    return row


def write_table(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


WriteRecords = Callable[..., Path]


@pytest.fixture
def write_records(tmp_path: Path) -> WriteRecords:
    """Write bookings (and payments) into a fresh folder and return it."""
    counter = iter(range(1000))

    def write(bookings: Sequence[dict[str, Any]],
              payments: Sequence[dict[str, Any]] = ()) -> Path:
        folder = tmp_path / f"records{next(counter)}"
        folder.mkdir()
        write_table(folder / "bookings.csv", [c for c, _r, _k in BOOKING_COLUMNS], bookings)
        write_table(folder / "payments.csv", [c for c, _r, _k in PAYMENT_COLUMNS], payments)
        return folder

    return write

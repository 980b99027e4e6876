"""The records readers: dirty rows are counted, never dropped silently; evidence is kept."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import polars as pl
import pytest

from fairslot.investigation.records import RecordsError, read_records

from .conftest import VALID_IDS, WriteRecords, booking


def _reasons(records: object) -> dict[str, int]:
    return {s.reason: s.rows for s in records.skipped}  # type: ignore[attr-defined]


def test_dirty_rows_are_counted_with_their_reason_not_dropped_silently(
        write_records: WriteRecords) -> None:
    rows = [
        booking("b1"),
        booking("b2", account_id=""),
        booking("b3", created_at="yesterday-ish"),
        booking("b1"),  # exact duplicate
        booking("b4", released_at="garbage"),
    ]
    folder = write_records(rows)
    with (folder / "bookings.csv").open("a", encoding="utf-8") as handle:
        # Every column of the header (the last, slot_freed_at, empty), then one more.
        handle.write("b5,2025-03-01T10:00:00+08:00,acc1,x,resident_id,y,z,h,d,d1,s,r,c,i,dv,st,"
                     "c,1,,EXTRA\n")
    records = read_records(folder)
    reasons = _reasons(records)
    assert records.rows_read["bookings"] == 6
    assert records.rows_kept["bookings"] == 2
    assert reasons["required field account_id is empty"] == 1
    assert reasons["required time created_at is unreadable"] == 1
    assert reasons["exact duplicate of an earlier row"] == 1
    assert reasons["more fields than the header (columns may be shifted)"] == 1
    # An unreadable optional time is kept as unknown, and said so.
    assert reasons["released_at unreadable, read as unknown"] == 1
    kept = records.bookings.filter(pl.col("booking_id") == "b4")
    assert kept.height == 1 and kept.item(0, "released_at") is None
    skipped = sum(s.rows for s in records.skipped if not s.kept)
    assert records.rows_kept["bookings"] + skipped == records.rows_read["bookings"]


def test_invalid_id_numbers_and_nonsense_names_are_kept_as_evidence(
        write_records: WriteRecords) -> None:
    folder = write_records([booking("b1", patient_id_number="12345", patient_name="561")])
    records = read_records(folder)
    assert records.bookings.item(0, "patient_id_number") == "12345"
    assert records.bookings.item(0, "patient_name") == "561"


def test_timestamps_without_offset_are_read_in_the_hospital_zone(
        write_records: WriteRecords) -> None:
    folder = write_records([
        booking("b1", created_at="2025-03-01 10:00:00"),
        booking("b2", created_at="2025-03-01T02:00:00Z"),
    ])
    records = read_records(folder, zone=zoneinfo.ZoneInfo("Asia/Shanghai"))
    times = records.bookings.sort("booking_id").get_column("created_at").to_list()
    assert times[0] == times[1] == dt.datetime(2025, 3, 1, 2, 0, tzinfo=dt.UTC)


def test_parquet_with_typed_columns_reads_like_csv(write_records: WriteRecords) -> None:
    csv_folder = write_records([booking("b1"), booking("b2", fee="70")])
    from_csv = read_records(csv_folder)
    parquet_folder = csv_folder.parent / "parquet"
    parquet_folder.mkdir()
    from_csv.bookings.drop("patient").write_parquet(parquet_folder / "bookings.parquet")
    from_csv.payments.write_parquet(parquet_folder / "payments.parquet")
    from_parquet = read_records(parquet_folder)
    assert from_parquet.bookings.equals(from_csv.bookings)


def test_since_and_until_keep_the_window_and_count_the_rest(
        write_records: WriteRecords) -> None:
    folder = write_records([booking("b1", created_at="2025-01-05T10:00:00+08:00"),
                            booking("b2", created_at="2025-06-05T10:00:00+08:00")])
    records = read_records(folder, since=dt.datetime(2025, 3, 1, tzinfo=dt.UTC))
    assert records.bookings.get_column("booking_id").to_list() == ["b2"]
    assert records.rows_outside_window["bookings"] == 1


def test_pseudonymised_values_are_joined_on_as_written(write_records: WriteRecords) -> None:
    folder = write_records([booking("b1", patient_id_number="h:3fa9c2e1"),
                            booking("b2", patient_id_number=VALID_IDS[1].lower())])
    patients = read_records(folder).bookings.sort("booking_id").get_column("patient").to_list()
    assert patients == ["h:3fa9c2e1", VALID_IDS[1].upper()]


def test_a_folder_without_bookings_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(RecordsError, match="no bookings"):
        read_records(tmp_path)

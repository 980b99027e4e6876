"""Readers for the records exchange format (bookings, payments, access) in CSV or Parquet.

Exports are dirty. These readers never crash on a bad row and never drop one silently: a row
that cannot be used (a required field empty, a required time unreadable, more fields than the
header, an exact duplicate) is skipped and counted with its reason; a value that is wrong but
readable (an invalid ID number, a nonsense name) is kept, because it is evidence. Every
timestamp comes out timezone-aware in UTC; one written without an offset is read in the
hospital's zone.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from fairslot.config import get_settings

__all__ = [
    "ACCESS_COLUMNS",
    "BOOKING_COLUMNS",
    "PAYMENT_COLUMNS",
    "Records",
    "RecordsError",
    "SkipCount",
    "normalise_identifier",
    "read_records",
    "read_table",
    "rows_to_csv_text",
]

# (column, required, kind) per table; kind is "str", "time" or "num".
BOOKING_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("booking_id", True, "str"),
    ("created_at", True, "time"),
    ("account_id", True, "str"),
    ("patient_id_number", True, "str"),
    ("patient_name", False, "str"),
    ("patient_phone", False, "str"),
    ("hospital_id", False, "str"),
    ("department", True, "str"),
    ("doctor_id", True, "str"),
    ("session_start", True, "time"),
    ("released_at", False, "time"),
    ("channel", False, "str"),
    ("ip", False, "str"),
    ("device_id", False, "str"),
    ("status", True, "str"),
    ("cancelled_at", False, "time"),
    ("fee", False, "num"),
)
PAYMENT_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("payment_id", True, "str"),
    ("booking_id", True, "str"),
    ("paid_at", True, "time"),
    ("payer_account", True, "str"),
    ("amount", True, "num"),
    ("refunded_at", False, "time"),
)
ACCESS_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("ts", True, "time"),
    ("ip", True, "str"),
    ("account_id", False, "str"),
    ("device_id", False, "str"),
    ("method", True, "str"),
    ("path", True, "str"),
    ("status", True, "str"),
    ("user_agent", False, "str"),
)
_TABLES = {"bookings": BOOKING_COLUMNS, "payments": PAYMENT_COLUMNS, "access": ACCESS_COLUMNS}
_TIME_FILTER = {"bookings": "created_at", "payments": "paid_at", "access": "ts"}
_EXTRA = "__extra_field__"
KNOWN_STATUSES = frozenset({"booked", "paid", "cancelled", "checked_in", "no_show", "refunded"})


class RecordsError(Exception):
    """A records folder or file that cannot be read at all (missing, unreadable, no header)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SkipCount:
    """How many rows of a table were skipped, or kept with a caveat, and why."""

    table: str
    reason: str
    rows: int
    kept: bool = False
    """True when the rows were kept (the value was set to unknown or kept as evidence)."""


@dataclasses.dataclass(slots=True)
class Records:
    """The three tables, cleaned to one schema, with the account of what was skipped."""

    bookings: pl.DataFrame
    payments: pl.DataFrame
    access: pl.DataFrame | None
    inputs: dict[str, str] = dataclasses.field(default_factory=dict)
    rows_read: dict[str, int] = dataclasses.field(default_factory=dict)
    rows_kept: dict[str, int] = dataclasses.field(default_factory=dict)
    rows_outside_window: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: list[SkipCount] = dataclasses.field(default_factory=list)


def normalise_identifier(column: pl.Expr) -> pl.Expr:
    """ID numbers are compared without spaces and with an upper-case check letter; a
    pseudonymised value (``h:`` + hex) is an opaque identifier and is kept as written."""
    stripped = column.str.strip_chars()
    return (
        pl.when(stripped.str.starts_with("h:"))
        .then(stripped)
        .otherwise(stripped.str.replace_all(" ", "", literal=True).str.to_uppercase())
    )


def _find_file(folder: Path, table: str) -> Path | None:
    for suffix in (".parquet", ".csv", ".pq", ".csv.gz"):
        candidate = folder / f"{table}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _read_csv_strings(path: Path) -> tuple[pl.DataFrame, int]:
    """Every column as text, so that no value can make the read fail; returns the frame and
    the number of rows that had more fields than the header (they are dropped, since their
    columns may be shifted)."""
    try:
        with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = next(csv.reader(handle), None)
    except OSError as exc:
        raise RecordsError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if not header:
        raise RecordsError(f"{path.name} has no header row")
    names = [name.strip() for name in header]
    try:
        frame = pl.read_csv(
            path,
            has_header=False,
            skip_rows=1,
            new_columns=[*names, _EXTRA],
            schema={name: pl.String for name in [*names, _EXTRA]},
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
            infer_schema=False,
        )
    except (pl.exceptions.PolarsError, ValueError):
        # Broken quoting can defeat the fast reader; the standard library's reader accepts
        # anything and is slow only on files too broken to be large.
        frame = _read_csv_slowly(path, names)
    long_rows = frame.filter(pl.col(_EXTRA).is_not_null()).height
    frame = frame.filter(pl.col(_EXTRA).is_null()).drop(_EXTRA)
    return frame, long_rows


def _read_csv_slowly(path: Path, names: list[str]) -> pl.DataFrame:
    width = len(names)
    rows: list[list[str | None]] = []
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for raw in reader:
            cells: list[str | None] = [cell if cell != "" else None for cell in raw[:width]]
            cells += [None] * (width - len(cells))
            cells.append("1" if len(raw) > width else None)
            rows.append(cells)
    return pl.DataFrame(rows, schema=[*names, _EXTRA], orient="row", schema_overrides=None)


def _parse_time(column: str, zone: zoneinfo.ZoneInfo) -> pl.Expr:
    """ISO 8601 text to UTC: with an offset as written, without one in the hospital's zone."""
    text = (
        pl.col(column)
        .str.strip_chars()
        .str.replace(" ", "T", literal=True)
        .str.replace(r"Z$", "+00:00")
    )
    with_offset = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="us")
    local = (
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
        .dt.replace_time_zone(zone.key, non_existent="null", ambiguous="earliest")
        .dt.convert_time_zone("UTC")
    )
    day_only = (
        text.str.to_datetime("%Y-%m-%d", strict=False, time_unit="us")
        .dt.replace_time_zone(zone.key, non_existent="null", ambiguous="earliest")
        .dt.convert_time_zone("UTC")
    )
    return pl.coalesce(with_offset, local, day_only)


def _typed_time(series: pl.Series, zone: zoneinfo.ZoneInfo) -> pl.Series | None:
    """A Parquet column that already holds timestamps: naive ones are local time."""
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return series.dt.replace_time_zone(
                zone.key, non_existent="null", ambiguous="earliest"
            ).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        return series.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.Date:
        return (
            series.cast(pl.Datetime("us"))
            .dt.replace_time_zone(zone.key, non_existent="null", ambiguous="earliest")
            .dt.convert_time_zone("UTC")
        )
    return None


def read_table(
    path: Path,
    table: str,
    *,
    zone: zoneinfo.ZoneInfo | None = None,
) -> tuple[pl.DataFrame, int, list[SkipCount]]:
    """Read one table file into the contract's schema.

    Returns the cleaned frame, the number of data rows in the file, and the skip counts."""
    zone = zone or get_settings().zone
    spec = _TABLES[table]
    skipped: list[SkipCount] = []
    long_rows = 0
    if path.suffix in (".parquet", ".pq"):
        try:
            raw = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise RecordsError(f"cannot read {path.name}: {exc}") from exc
        raw = raw.rename({name: name.strip() for name in raw.columns})
    else:
        raw, long_rows = _read_csv_strings(path)
    total = raw.height + long_rows
    if long_rows:
        skipped.append(SkipCount(table, "more fields than the header (columns may be shifted)",
                                 long_rows))
    missing = [name for name, required, _ in spec if required and name not in raw.columns]
    if missing:
        raise RecordsError(f"{path.name} lacks required column(s): {', '.join(missing)}")

    columns: list[pl.Series] = []
    for name, _required, kind in spec:
        if name not in raw.columns:
            dtype: pl.DataType = (
                pl.Datetime("us", "UTC") if kind == "time"
                else pl.Float64() if kind == "num" else pl.String()
            )
            columns.append(pl.Series(name, [None] * raw.height, dtype=dtype))
            continue
        series = raw.get_column(name)
        if kind == "time":
            typed = _typed_time(series, zone)
            if typed is None:
                parse_from = raw.select(pl.col(name).cast(pl.String))
                typed = parse_from.select(_parse_time(name, zone).alias(name)).to_series()
            columns.append(typed.alias(name))
        elif kind == "num":
            if series.dtype.is_numeric():
                columns.append(series.cast(pl.Float64))
            else:
                columns.append(
                    series.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
                )
        else:
            text = series.cast(pl.String).str.strip_chars()
            columns.append(text.replace("", None))
    frame = pl.DataFrame(columns)
    # Whether the file had any text in each typed column, to tell "empty" from "unreadable".
    raw_present = {
        name: raw.get_column(name).cast(pl.String).str.strip_chars().replace("", None)
        .is_not_null()
        for name, _req, kind in spec
        if name in raw.columns and kind != "str"
    }

    drop_mask = pl.Series([False] * frame.height)
    for name, required, kind in spec:
        if name not in raw.columns:
            continue
        present_raw = raw_present.get(name)
        value_missing = frame.get_column(name).is_null()
        if kind == "str":
            if required:
                bad = value_missing & ~drop_mask
                count = int(bad.sum())
                if count:
                    skipped.append(SkipCount(table, f"required field {name} is empty", count))
                drop_mask = drop_mask | value_missing
            continue
        assert present_raw is not None
        unreadable = value_missing & present_raw
        empty = value_missing & ~present_raw
        what = "time" if kind == "time" else "number"
        if required:
            for mask, reason in ((empty, f"required field {name} is empty"),
                                 (unreadable, f"required {what} {name} is unreadable")):
                count = int((mask & ~drop_mask).sum())
                if count:
                    skipped.append(SkipCount(table, reason, count))
                drop_mask = drop_mask | mask
        else:
            count = int((unreadable & ~drop_mask).sum())
            if count:
                skipped.append(SkipCount(table, f"{name} unreadable, read as unknown", count,
                                         kept=True))
    frame = frame.filter(~drop_mask)

    before = frame.height
    frame = frame.unique(maintain_order=True)
    if before - frame.height:
        skipped.append(SkipCount(table, "exact duplicate of an earlier row", before - frame.height))

    if table == "bookings":
        frame = frame.with_columns(
            pl.col("status").str.to_lowercase(),
            normalise_identifier(pl.col("patient_id_number")).alias("patient"),
        )
        unknown_status = frame.filter(~pl.col("status").is_in(list(KNOWN_STATUSES))).height
        if unknown_status:
            skipped.append(SkipCount(table, "status not in the contract's list, kept as written",
                                     unknown_status, kept=True))
        key = "booking_id"
    elif table == "payments":
        key = "payment_id"
    else:
        key = ""
    if key:
        before = frame.height
        frame = frame.unique(subset=[key], keep="first", maintain_order=True)
        if before - frame.height:
            skipped.append(SkipCount(
                table, f"{key} repeated with different content (first row kept)",
                before - frame.height))
    return frame, total, skipped


def read_records(
    folder: Path,
    *,
    zone: zoneinfo.ZoneInfo | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Records:
    """Read a records folder (``bookings.*``, ``payments.*``, optional ``access.*``).

    ``since``/``until`` (timezone-aware) keep rows whose own time (created_at, paid_at, ts)
    falls in ``[since, until)``; rows outside are counted, not reported as skipped."""
    if not folder.is_dir():
        raise RecordsError(f"records folder not found: {folder}")
    zone = zone or get_settings().zone
    frames: dict[str, pl.DataFrame | None] = {}
    result = Records(bookings=pl.DataFrame(), payments=pl.DataFrame(), access=None)
    for table in ("bookings", "payments", "access"):
        path = _find_file(folder, table)
        if path is None:
            if table == "access":
                frames[table] = None
                continue
            raise RecordsError(f"{folder} has no {table}.csv or {table}.parquet")
        frame, total, skipped = read_table(path, table, zone=zone)
        result.inputs[table] = path.name
        result.rows_read[table] = total
        result.skipped.extend(skipped)
        column = _TIME_FILTER[table]
        inside = pl.lit(True)
        if since is not None:
            inside = inside & (pl.col(column) >= since)
        if until is not None:
            inside = inside & (pl.col(column) < until)
        if since is not None or until is not None:
            before = frame.height
            frame = frame.filter(inside)
            result.rows_outside_window[table] = before - frame.height
        result.rows_kept[table] = frame.height
        frames[table] = frame
    bookings = frames["bookings"]
    payments = frames["payments"]
    assert bookings is not None and payments is not None
    orphans = payments.join(bookings.select("booking_id"), on="booking_id", how="anti").height
    if orphans:
        result.skipped.append(SkipCount(
            "payments", "booking_id not among the bookings read (kept; payer still counted)",
            orphans, kept=True))
    result.bookings = bookings
    result.payments = payments
    result.access = frames["access"]
    return result


def rows_to_csv_text(rows: Sequence[Sequence[object]]) -> str:
    """Small helper for tests and the synthetic writer: RFC 4180 text from rows."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()

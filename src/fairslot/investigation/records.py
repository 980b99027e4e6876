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
import tempfile
import zoneinfo
from pathlib import Path
from typing import Any

import polars as pl

from fairslot.config import get_settings

__all__ = [
    "ACCESS_COLUMNS",
    "BOOKING_COLUMNS",
    "PAYMENT_COLUMNS",
    "Records",
    "RecordsError",
    "SkipCount",
    "count_access_minutes",
    "normalise_identifier",
    "read_records",
    "read_table",
]

# (column, required, kind) per table; kind is "str", "time" or "num".
BOOKING_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("booking_id", True, "str"),
    ("created_at", True, "time"),
    ("account_id", True, "str"),
    ("patient_id_number", True, "str"),
    ("patient_id_type", False, "str"),
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
    # fairslot's optional extension (docs/records.md, "Re-opened slots"): when the slot a
    # booking took had last returned to the public pool, if it had.
    ("slot_freed_at", False, "time"),
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
    """The access rows, or None when there are none or when only their counts per account
    and minute were kept (``access_minutes``)."""
    access_minutes: pl.DataFrame | None = None
    """Out-of-core reading: requests per (``account_id``, ``minute``), only the minutes with
    at least ``access_min_clicks`` requests; the access rows themselves are not kept."""
    access_min_clicks: int = 0
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


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
            header = next(csv.reader(handle), None)
    except OSError as exc:
        raise RecordsError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if not header:
        raise RecordsError(f"{path.name} has no header row")
    return [name.strip() for name in header]


def _csv_options(names: list[str]) -> dict[str, Any]:
    """Options of the fast CSV reader (eager or lazy): every column as text, and one extra
    column that catches the fields of a row longer than the header."""
    return {
        "has_header": False,
        "skip_rows": 1,
        "new_columns": [*names, _EXTRA],
        "schema": {name: pl.String for name in [*names, _EXTRA]},
        "truncate_ragged_lines": True,
        # The extra column exists only when some row is too long; otherwise it is
        # inserted empty (without this, newer Polars refuses the read outright).
        "missing_columns": "insert",
        "encoding": "utf8-lossy",
        "infer_schema": False,
    }


def _read_csv_strings(path: Path) -> tuple[pl.DataFrame, int]:
    """Every column as text, so that no value can make the read fail; returns the frame and
    the number of rows that had more fields than the header (they are dropped, since their
    columns may be shifted)."""
    names = _csv_header(path)
    try:
        frame = pl.read_csv(path, **_csv_options(names))
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
    # Every column is text: a column empty in the first rows must not be inferred as null.
    return pl.DataFrame(rows, schema={name: pl.String for name in [*names, _EXTRA]},
                        orient="row")


def _parse_time_text(text: pl.Expr, zone: zoneinfo.ZoneInfo) -> pl.Expr:
    """ISO 8601 text to UTC: with an offset as written, without one in the hospital's zone."""
    text = text.str.replace(" ", "T", literal=True).str.replace(r"Z$", "+00:00")
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


def _typed_time(name: str, dtype: pl.DataType, zone: zoneinfo.ZoneInfo) -> pl.Expr | None:
    """A Parquet column that already holds timestamps: naive ones are local time."""
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            column = column.dt.replace_time_zone(zone.key, non_existent="null",
                                                 ambiguous="earliest")
        return column.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.Date:
        return (
            column.cast(pl.Datetime("us"))
            .dt.replace_time_zone(zone.key, non_existent="null", ambiguous="earliest")
            .dt.convert_time_zone("UTC")
        )
    return None


def _text(name: str) -> pl.Expr:
    """Trimmed text, with an empty string read as missing."""
    text = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(text.str.len_bytes() == 0).then(None).otherwise(text)


def _drop_exact_duplicates(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Exact duplicate rows removed (first kept). Rows are hashed first and only rows whose
    hash repeats are compared in full, which keeps ten million rows cheap."""
    if frame.is_empty():
        return frame, 0
    repeated = frame.hash_rows().is_duplicated()
    if not repeated.any():
        return frame, 0
    suspects = frame.filter(repeated)
    distinct = suspects.unique(maintain_order=True)
    return pl.concat([frame.filter(~repeated), distinct]), suspects.height - distinct.height


def _read_raw(path: Path, table: str) -> tuple[pl.DataFrame, int]:
    """The file's contract columns as written (CSV: all text) and the number of rows with more
    fields than the header (already dropped)."""
    wanted = {name for name, _req, _kind in _TABLES[table]}
    if path.suffix in (".parquet", ".pq"):
        try:
            names = pl.read_parquet_schema(path)
            # Only the contract's columns are read; unknown columns are ignored anyway.
            raw = pl.read_parquet(path, columns=[n for n in names if n.strip() in wanted])
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise RecordsError(f"cannot read {path.name}: {exc}") from exc
        return raw.rename({name: name.strip() for name in raw.columns}), 0
    return _read_csv_strings(path)


def read_table(
    path: Path,
    table: str,
    *,
    zone: zoneinfo.ZoneInfo | None = None,
) -> tuple[pl.DataFrame, int, list[SkipCount]]:
    """Read one table file into the contract's schema.

    Returns the cleaned frame, the number of data rows in the file, and the skip counts."""
    raw, long_rows = _read_raw(path, table)
    # Handed over in a list that the cleaning empties, so that the raw frame is freed as
    # soon as its clean columns are built.
    holder = [raw]
    del raw
    frame, total, skipped = _clean_table(holder, long_rows, table, path.name,
                                         zone or get_settings().zone)
    return frame, total, [s for s in skipped if s.rows]


def _clean_table(
    holder: list[pl.DataFrame], long_rows: int, table: str, file_name: str, zone: zoneinfo.ZoneInfo,
) -> tuple[pl.DataFrame, int, list[SkipCount]]:
    """The raw frame (as read; taken out of ``holder``) cleaned to the contract's schema.
    Every reason is listed, with zero rows when it did not occur, always in the same order
    (so that the counts of the parts of one file add up reason by reason)."""
    raw = holder.pop()
    spec = _TABLES[table]
    skipped: list[SkipCount] = []
    total = raw.height + long_rows
    skipped.append(SkipCount(table, "more fields than the header (columns may be shifted)",
                             long_rows))
    missing = [name for name, required, _ in spec if required and name not in raw.columns]
    if missing:
        raise RecordsError(f"{file_name} lacks required column(s): {', '.join(missing)}")

    # One pass builds every clean column and, for typed columns, whether the file had text.
    expressions: list[pl.Expr] = []
    for name, _required, kind in spec:
        if name not in raw.columns:
            dtype: pl.DataType = (
                pl.Datetime("us", "UTC") if kind == "time"
                else pl.Float64() if kind == "num" else pl.String()
            )
            expressions.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        source = raw.schema[name]
        if kind == "time":
            typed = _typed_time(name, source, zone)
            if typed is None:
                typed = _parse_time_text(_text(name), zone)
            expressions.append(typed.alias(name))
        elif kind == "num":
            expressions.append(
                pl.col(name).cast(pl.Float64) if source.is_numeric()
                else _text(name).cast(pl.Float64, strict=False).alias(name))
        else:
            expressions.append(_text(name).alias(name))
        if kind != "str":
            # Typed Parquet values need no text check (formatting them would be costly).
            had = _text(name) if source == pl.String else pl.col(name)
            expressions.append(had.is_not_null().alias(f"__had_{name}"))
    frame = raw.lazy().select(expressions).collect()
    del raw

    drop = pl.lit(False)
    masks: list[tuple[pl.Expr, str, bool]] = []
    for name, required, kind in spec:
        if f"__had_{name}" not in frame.columns and kind != "str":
            continue
        if kind == "str":
            if required:
                masks.append((pl.col(name).is_null(), f"required field {name} is empty", False))
            continue
        missing_value = pl.col(name).is_null()
        had = pl.col(f"__had_{name}")
        what = "time" if kind == "time" else "number"
        if required:
            masks.append((missing_value & ~had, f"required field {name} is empty", False))
            masks.append((missing_value & had, f"required {what} {name} is unreadable", False))
        else:
            masks.append((missing_value & had, f"{name} unreadable, read as unknown", True))
    if masks:
        counts = frame.select(
            (mask & ~drop_before).sum().alias(str(i))
            for i, (mask, drop_before) in enumerate(_cumulative(masks))
        ).row(0)
        for (_mask, reason, kept), count in zip(masks, counts, strict=True):
            skipped.append(SkipCount(table, reason, int(count), kept=kept))
        for mask, _reason, kept in masks:
            if not kept:
                drop = drop | mask
    frame = frame.filter(~drop).select(name for name, _req, _kind in spec)

    frame, duplicates = _drop_exact_duplicates(frame)
    skipped.append(SkipCount(table, "exact duplicate of an earlier row", duplicates))

    if table == "bookings":
        frame = frame.with_columns(
            pl.col("status").str.to_lowercase(),
            normalise_identifier(pl.col("patient_id_number")).alias("patient"),
        )
        unknown_status = frame.filter(~pl.col("status").is_in(list(KNOWN_STATUSES))).height
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
        skipped.append(SkipCount(
            table, f"{key} repeated with different content (first row kept)",
            before - frame.height))
    return frame, total, skipped


def _window(column: str, since: dt.datetime | None, until: dt.datetime | None) -> pl.Expr:
    inside = pl.lit(True)
    if since is not None:
        inside = inside & (pl.col(column) >= since)
    if until is not None:
        inside = inside & (pl.col(column) < until)
    return inside


def _minutes(access: pl.DataFrame, min_clicks: int) -> pl.DataFrame:
    """Requests per account and minute, for the minutes with at least ``min_clicks``."""
    return (
        access.filter(pl.col("account_id").is_not_null())
        .group_by("account_id", pl.col("ts").dt.truncate("1m").alias("minute"))
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") >= min_clicks)
    )


_PART = "__part__"


def count_access_minutes(
    path: Path,
    *,
    min_clicks: int,
    zone: zoneinfo.ZoneInfo | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    parts: int = 16,
    workdir: Path | None = None,
) -> tuple[pl.DataFrame, int, int, int, list[SkipCount]]:
    """The access file out of core: its requests per account and minute (only minutes with at
    least ``min_clicks``), without ever holding all its rows.

    One streaming pass splits the rows by a hash of their minute into ``parts`` Parquet files
    in a temporary folder (under ``workdir``); each part is then cleaned exactly as
    ``read_table`` cleans the whole file. A minute's requests, and any exact duplicate of a
    row, fall in the same part, so the counts, duplicates and skip counts are the ones the
    whole file gives. Memory is about one part's rows (a 16th of the file by default); the
    temporary folder holds about the file's size again.

    Returns (minutes, rows in the file, rows kept, rows outside the window, skip counts)."""
    zone = zone or get_settings().zone
    wanted = {name for name, _req, _kind in ACCESS_COLUMNS}
    csv_file = path.suffix not in (".parquet", ".pq")
    try:
        if csv_file:
            names = _csv_header(path)
            lazy = pl.scan_csv(path, **_csv_options(names))
        else:
            names = list(pl.read_parquet_schema(path))
            lazy = pl.scan_parquet(path).select(n for n in names if n.strip() in wanted)
            lazy = lazy.rename({n: n.strip() for n in names if n.strip() in wanted})
        schema = lazy.collect_schema()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise RecordsError(f"cannot read {path.name}: {exc}") from exc
    missing = [name for name, required, _ in ACCESS_COLUMNS if required and name not in schema]
    if missing:
        raise RecordsError(f"{path.name} lacks required column(s): {', '.join(missing)}")
    ts = _typed_time("ts", schema["ts"], zone)
    if ts is None:
        ts = _parse_time_text(_text("ts"), zone)
    part = (ts.dt.truncate("1m").hash(seed=17) % parts).fill_null(0).alias(_PART)

    totals: dict[tuple[str, bool], int] = {}
    rows = kept = outside = 0
    found: list[pl.DataFrame] = []
    with tempfile.TemporaryDirectory(prefix="fairslot-access-", dir=workdir) as temporary:
        try:
            lazy.with_columns(part).sink_parquet(
                pl.PartitionBy(temporary, key=_PART, include_key=False), mkdir=True,
                # Read back once, right away: fast compression beats small files.
                compression="lz4", engine="streaming")
        except (OSError, pl.exceptions.PolarsError) as exc:
            if not csv_file:
                raise RecordsError(f"cannot read {path.name}: {exc}") from exc
            # Quoting too broken for the fast reader: the slow reader reads it whole.
            frame, total, skipped = read_table(path, "access", zone=zone)
            inside = frame.filter(_window("ts", since, until))
            return (_minutes(inside, min_clicks), total, inside.height,
                    frame.height - inside.height, skipped)
        for folder in sorted(Path(temporary).iterdir()):
            raw = pl.read_parquet(sorted(folder.glob("*.parquet")), hive_partitioning=False)
            long_rows = 0
            if csv_file:
                long_rows = int(raw.get_column(_EXTRA).is_not_null().sum())
                raw = raw.filter(pl.col(_EXTRA).is_null()).drop(_EXTRA)
            holder = [raw]
            del raw
            frame, total, skipped = _clean_table(holder, long_rows, "access", path.name, zone)
            rows += total
            for count in skipped:
                key = (count.reason, count.kept)
                totals[key] = totals.get(key, 0) + count.rows
            inside = frame.filter(_window("ts", since, until))
            kept += inside.height
            outside += frame.height - inside.height
            del frame
            found.append(_minutes(inside, min_clicks))
            del inside
    minutes = pl.concat(found) if found else pl.DataFrame(
        schema={"account_id": pl.String, "minute": pl.Datetime("us", "UTC"), "n": pl.UInt32})
    skipped = [SkipCount("access", reason, count, kept=was_kept)
               for (reason, was_kept), count in totals.items() if count]
    return minutes, rows, kept, outside, skipped


def _cumulative(
    masks: list[tuple[pl.Expr, str, bool]],
) -> list[tuple[pl.Expr, pl.Expr]]:
    """Each mask with the union of the dropping masks before it, so that a row skipped for
    one reason is not counted again for the next."""
    result: list[tuple[pl.Expr, pl.Expr]] = []
    before: pl.Expr = pl.lit(False)
    for mask, _reason, kept in masks:
        result.append((mask, before))
        if not kept:
            before = before | mask
    return result


def read_records(
    folder: Path,
    *,
    zone: zoneinfo.ZoneInfo | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    access_min_clicks: int | None = None,
    workdir: Path | None = None,
) -> Records:
    """Read a records folder (``bookings.*``, ``payments.*``, optional ``access.*``).

    ``since``/``until`` (timezone-aware) keep rows whose own time (created_at, paid_at, ts)
    falls in ``[since, until)``; rows outside are counted, not reported as skipped.

    With ``access_min_clicks`` the access file is read out of core (``count_access_minutes``,
    temporary files under ``workdir``): ``access`` stays None and ``access_minutes`` holds the
    requests per account and minute for the minutes with at least that many, which is all
    the rules read of it (``rules.click_rate``; the threshold must not be below it)."""
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
        if table == "access" and access_min_clicks is not None:
            minutes, total, kept, outside, skipped = count_access_minutes(
                path, min_clicks=access_min_clicks, zone=zone, since=since, until=until,
                workdir=workdir)
            result.inputs[table] = path.name
            result.rows_read[table] = total
            result.skipped.extend(skipped)
            if since is not None or until is not None:
                result.rows_outside_window[table] = outside
            result.rows_kept[table] = kept
            result.access_minutes, result.access_min_clicks = minutes, access_min_clicks
            frames[table] = None
            continue
        frame, total, skipped = read_table(path, table, zone=zone)
        result.inputs[table] = path.name
        result.rows_read[table] = total
        result.skipped.extend(skipped)
        if since is not None or until is not None:
            before = frame.height
            frame = frame.filter(_window(_TIME_FILTER[table], since, until))
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

"""Reading the access rows out of core (counts per account and minute, never the whole
file) gives the same skip counts, findings and scores as reading them into memory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from fairslot.investigation.records import ACCESS_COLUMNS, read_records
from fairslot.investigation.rules import Thresholds
from fairslot.investigation.scoring import investigate
from fairslot.investigation.synth import write_synthetic

from .conftest import write_table

_UTC = dt.UTC


def _access_rows() -> list[dict[str, object]]:
    """Ordinary browsing over many minutes, two auto-clicker minutes, and dirt: exact
    duplicates, an unreadable and an empty time, an empty IP, rows without an account."""
    base = dt.datetime(2025, 3, 1, 2, 0, tzinfo=_UTC)
    rows: list[dict[str, object]] = []
    for i in range(3000):
        rows.append({"ts": (base + dt.timedelta(seconds=37 * i)).isoformat(),
                     "ip": f"10.0.{i % 7}.{i % 200}", "account_id": f"acc{i % 50}",
                     "device_id": f"dev{i % 50}", "method": "GET", "path": "/doctors",
                     "status": "200", "user_agent": "Mozilla/5.0"})
    for n, minute in ((150, 10), (130, 500)):  # the clicker, at or above 120 a minute
        start = base + dt.timedelta(minutes=minute)
        rows += [{"ts": (start + dt.timedelta(seconds=50 * k / n)).isoformat(),
                  "ip": "100.2.3.4", "account_id": "clicker", "device_id": "bot",
                  "method": "POST", "path": "/api/bookings", "status": "201",
                  "user_agent": "curl"} for k in range(n)]
    # 119 requests in one minute plus an exact duplicate of one of them: 119 after cleaning.
    start = base + dt.timedelta(minutes=900)
    near: list[dict[str, object]] = [
        {"ts": (start + dt.timedelta(seconds=k / 3)).isoformat(), "ip": "100.9.9.9",
         "account_id": "almost", "device_id": "d", "method": "GET", "path": "/",
         "status": "200", "user_agent": "x"} for k in range(119)]
    rows += [*near, near[5], rows[7], rows[8], rows[8]]
    rows += [{**rows[20], "ts": "not a time"}, {**rows[21], "ts": ""},
             {**rows[22], "ip": ""}, {**rows[23], "account_id": ""},
             {**rows[24], "account_id": None, "ts": "2025-03-01 10:30:00"}]
    return rows


def _folder(tmp_path: Path, *, parquet: bool) -> Path:
    folder = tmp_path / "records"
    write_synthetic(folder, seed=4, scale=0.1)
    access = folder / "access.csv"
    access.unlink()
    columns = [name for name, _r, _k in ACCESS_COLUMNS]
    write_table(access, columns, _access_rows())
    with access.open("a", encoding="utf-8") as handle:
        handle.write("2025-03-01T03:00:00Z,1.1.1.1,acc1,dev1,GET,/,200,ua,surplus\n")
    if parquet:
        frame = pl.read_csv(access, infer_schema=False, truncate_ragged_lines=True)
        typed = pl.col("ts").str.to_datetime(strict=False, time_zone="UTC")
        frame.with_columns(typed).write_parquet(folder / "access.parquet")
        access.unlink()
    return folder


@pytest.mark.parametrize("parquet", [False, True])
def test_out_of_core_access_gives_the_in_memory_results(tmp_path: Path,
                                                        parquet: bool) -> None:
    folder = _folder(tmp_path, parquet=parquet)
    since = dt.datetime(2025, 1, 1, tzinfo=_UTC)
    until = dt.datetime(2025, 3, 1, 9, tzinfo=_UTC)
    for window in ({}, {"since": since, "until": until}):
        memory = read_records(folder, **window)  # type: ignore[arg-type]
        summed = read_records(folder, access_min_clicks=100, **window)  # type: ignore[arg-type]
        assert memory.access is not None and summed.access is None
        assert summed.skipped == memory.skipped
        assert (summed.rows_read, summed.rows_kept, summed.rows_outside_window) == (
            memory.rows_read, memory.rows_kept, memory.rows_outside_window)
        reasons = {s.reason: s.rows for s in summed.skipped if s.table == "access"}
        assert reasons.get("exact duplicate of an earlier row") == 4
        if not parquet:
            assert reasons["more fields than the header (columns may be shifted)"] == 1
        first, second = investigate(memory), investigate(summed)
        clicks = first.findings.filter(pl.col("code") == "click_rate")
        assert clicks.get_column("entity_id").to_list() == ["clicker"]
        assert f"in {1 if window else 2} minute(s)" in clicks.item(0, "detail")
        assert second.findings.filter(pl.col("code") == "click_rate").equals(clicks)
        assert second.suspects.equals(first.suspects)
        assert second.scores.sort("entity_type", "entity_id").equals(
            first.scores.sort("entity_type", "entity_id"))
        assert second.rings.sort(pl.all()).equals(first.rings.sort(pl.all()))
    # A threshold below what the counts kept would miss minutes: refused, not guessed.
    with pytest.raises(ValueError, match="at least 100"):
        investigate(summed, Thresholds(clicks_per_minute=90))

"""fairslot's own export of the demo hospital, which has no scalpers, investigated as a
new user would (seed the demo, `fairslot records export`, `fairslot investigate`): its draw
bookings are the platform's, not anybody's fast hands, and nobody is a ring."""

from __future__ import annotations

import pathlib

import polars as pl
import pytest

from fairslot.bootstrap import Platform
from fairslot.investigation.records import read_records
from fairslot.investigation.scoring import investigate
from fairslot.services.demo import DEMO_USERS, seed_demo
from fairslot.services.export import export_records


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_scalper_free_demo_has_no_ring_and_almost_no_suspect(
        platform: Platform, tmp_path: pathlib.Path) -> None:
    # The demo as `fairslot demo seed` makes it: 60 families, a month of draws and bookings.
    report = seed_demo(platform.units, platform.deps, dict.fromkeys(DEMO_USERS, "pw-demo-1"))
    assert report.created and report.bookings > 100
    platform.run(export_records, tmp_path, since=None, until=None)

    records = read_records(tmp_path)
    channels = set(records.bookings.get_column("channel").drop_nulls().to_list())
    assert "draw" in channels  # the export names the platform's own bookings
    result = investigate(records)
    accounts = result.scores.filter(pl.col("entity_type") == "account")
    flagged = accounts.filter(pl.col("flagged"))
    assert result.rings.is_empty()
    assert flagged.height <= 0.01 * accounts.height, flagged.select("entity_id", "reasons")
    assert result.suspects.filter(pl.col("entity_type") == "account").height == flagged.height

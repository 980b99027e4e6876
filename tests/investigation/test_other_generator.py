"""The investigation on records from a second, independent generator (``othergen``): other
formats, schedules, hard cases and ring kinds than fairslot's own generator, so that the
quality targets are not only met on the records the detectors were written alongside."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from fairslot.investigation.evaluate import Quality, evaluate, read_labels
from fairslot.investigation.records import read_records
from fairslot.investigation.scoring import Investigation, investigate
from tests.investigation.othergen import write_other_year

Run = tuple[Investigation, pl.DataFrame, Quality]


def _run(folder: Path) -> Run:
    result = investigate(read_records(folder))
    labels = read_labels(folder / "labels.csv")
    return result, labels, evaluate(result.scores, labels)


# Each year is its own xdist group, so that one worker generates and investigates it once
# for all the tests reading it (ungrouped, both workers would build both years).
@pytest.fixture(scope="module", params=[
    pytest.param((10, 0.3), id="seed10", marks=pytest.mark.xdist_group("other-year-10")),
    pytest.param((13, 0.3), id="seed13", marks=pytest.mark.xdist_group("other-year-13"))])
def full_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    seed, scale = request.param
    return _run(write_other_year(tmp_path_factory.mktemp("other"), seed=seed, scale=scale))


def test_the_quality_targets_hold_on_another_generator(full_run: Run) -> None:
    _result, _labels, quality = full_run
    accounts = quality.of("account")
    assert accounts is not None
    assert accounts.precision >= 0.95
    assert accounts.recall >= 0.90
    assert quality.true_rings >= 8  # one of each ring kind (the credential broker has none:
    # its accounts are its customers')
    assert quality.ring_recovery >= 0.95
    assert quality.hard_cases > 300
    assert quality.hard_case_rate < 0.01


def test_no_institutional_hard_case_is_flagged(full_run: Run) -> None:
    """The window clerk, the nursing home's carer, the company NAT and the university
    terminal each look like a ring on one axis; none of them is flagged."""
    result, labels, _quality = full_run
    kinds = ("window_clerk", "nursing_home_carer", "company_nat", "university_terminal")
    hard = labels.filter(pl.col("role").is_in([f"hard_case:{kind}" for kind in kinds]))
    flagged = result.scores.filter((pl.col("entity_type") == "account") & pl.col("flagged"))
    assert hard.height > 100
    assert hard.join(flagged, on="entity_id").is_empty()


def test_each_ring_kind_is_found(full_run: Run) -> None:
    result, labels, _quality = full_run
    flagged = set(result.scores.filter(
        (pl.col("entity_type") == "account") & pl.col("flagged")).get_column("entity_id"))
    rings = labels.filter((pl.col("entity_type") == "account") & pl.col("ring_id").is_not_null())
    for ring, members in rings.group_by("ring_id"):
        found = len(set(members.get_column("entity_id")) & flagged)
        assert found >= 0.5 * members.height, f"ring {ring[0]}: {found} of {members.height}"


def test_another_generators_files_are_read_and_their_dirt_counted(tmp_path: Path) -> None:
    folder = write_other_year(tmp_path, seed=3, scale=0.05, access=False)
    records = read_records(folder)
    reasons = {s.reason for s in records.skipped}
    assert "exact duplicate of an earlier row" in reasons
    assert "required field account_id is empty" in reasons
    assert "required time created_at is unreadable" in reasons
    assert "more fields than the header (columns may be shifted)" in reasons
    bookings = records.bookings
    # Upper-case statuses are read as the contract's; times without an offset are local.
    assert set(bookings.get_column("status").unique()) <= {
        "booked", "paid", "cancelled", "checked_in", "no_show", "refunded"}
    releases = bookings.get_column("released_at").drop_nulls().dt.hour().unique().to_list()
    assert set(releases) == {7, 23}  # 15:00 and 07:00 in Shanghai, in UTC


def test_a_sparse_export_still_finds_most_rings_without_false_alarms(tmp_path: Path) -> None:
    """Without release times, device ids, names and an access log, the timing rules,
    grab devices, dense blocks and nonsense names are blind: credential brokers, the hand
    grabbing crowd and (at this small scale) the auto-clicker broker go unseen. These are
    the measured lower bounds (recall 0.54-0.60 and 6 of 9 rings over seeds 10-15 at this
    scale; 0.474 and 5 of 9 at seed 12 since issue 12, when being paid by a shared hub
    stopped making a suspect alone; 4 of 8 since an unlinked laundering pair stopped tying
    two accounts in the link graph, which splits the virtual-number farm when no device
    ids are exported), kept so that a regression shows; precision and hard cases keep the
    targets."""
    folder = write_other_year(tmp_path, seed=12, scale=0.3, access=False,
                              drop_columns=("released_at", "device_id", "patient_name"))
    _result, _labels, quality = _run(folder)
    accounts = quality.of("account")
    assert accounts is not None
    assert accounts.precision >= 0.95
    assert accounts.recall >= 0.45
    assert quality.rings_recovered >= 4
    assert quality.hard_case_rate < 0.01

"""End to end on synthetic years: the issue's quality targets, on two seeds and two scales
so that no threshold fits one draw only."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from fairslot.investigation.evaluate import evaluate, read_labels
from fairslot.investigation.records import read_records
from fairslot.investigation.scoring import investigate
from fairslot.investigation.synth import generate, write_synthetic


@pytest.mark.parametrize(("seed", "scale"), [(11, 0.25), (12, 0.4)])
def test_a_synthetic_year_meets_the_quality_targets(tmp_path: Path, seed: int,
                                                    scale: float) -> None:
    write_synthetic(tmp_path, seed=seed, scale=scale)
    records = read_records(tmp_path)
    quality = evaluate(investigate(records).scores, read_labels(tmp_path / "labels.csv"))
    accounts = quality.of("account")
    assert accounts is not None
    assert accounts.precision >= 0.95
    assert accounts.recall >= 0.90
    assert quality.true_rings >= 3
    assert quality.ring_recovery >= 0.95
    assert quality.hard_cases > 100
    assert quality.hard_case_rate < 0.01


def test_the_same_seed_gives_the_same_records() -> None:
    first, second = generate(seed=5, scale=0.1), generate(seed=5, scale=0.1)
    assert first.bookings.equals(second.bookings)
    assert first.labels.equals(second.labels)
    assert not generate(seed=6, scale=0.1).bookings.equals(first.bookings)


def test_synthetic_records_are_dirty_and_the_reader_says_so(tmp_path: Path) -> None:
    write_synthetic(tmp_path, seed=7, scale=0.1)
    records = read_records(tmp_path)
    reasons = {s.reason for s in records.skipped}
    assert "exact duplicate of an earlier row" in reasons
    assert "required field account_id is empty" in reasons


def test_evaluation_counts_a_missed_ring_and_a_false_alarm() -> None:
    scores = pl.DataFrame({
        "entity_type": ["account"] * 5, "entity_id": ["a", "b", "c", "x", "y"],
        "score": [0.9, 0.8, 0.1, 0.7, 0.0], "flagged": [True, True, False, True, False],
        "ring_id": ["r", "r", None, "q", None],
    })
    labels = pl.DataFrame({
        "entity_type": ["account"] * 4, "entity_id": ["a", "b", "c", "y"],
        "ring_id": ["T", "T", "T", None], "role": ["holder", "holder", "booker",
                                                   "hard_case:carer"],
    })
    quality = evaluate(scores, labels)
    accounts = quality.of("account")
    assert accounts is not None
    assert accounts.precision == pytest.approx(2 / 3)
    assert accounts.recall == pytest.approx(2 / 3)
    assert quality.true_rings == 1 and quality.rings_recovered == 1  # Jaccard 2/3
    assert quality.hard_cases == 1 and quality.hard_cases_flagged == 0

"""Scoring a run against known truth (``--labels``): how well the rings were found.

``labels.csv`` has entity_type, entity_id, ring_id, role. Rows with a ring_id are ring
members; rows without one are genuine entities worth watching (role ``hard_case:<kind>``).
Every entity in the records that the labels do not name as a ring member is genuine.

- Per entity type: precision, recall and F1 of the flagged set, and average precision of the
  ranking by score over every entity of that type in the records.
- Ring recovery: the share of true rings with three or more member accounts that some
  predicted ring matches with Jaccard similarity >= 0.5 over member accounts.
- Hard cases: the share of labelled hard-case genuine accounts that were flagged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score

__all__ = ["CurvePoint", "Quality", "TypeQuality", "evaluate", "read_labels",
           "threshold_curve"]

CURVE_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclasses.dataclass(frozen=True, slots=True)
class TypeQuality:
    entity_type: str
    positives: int
    flagged: int
    precision: float
    recall: float
    f1: float
    average_precision: float


@dataclasses.dataclass(frozen=True, slots=True)
class CurvePoint:
    """Accounts flagged, precision and recall if the flag line were at ``threshold``."""

    threshold: float
    flagged: int
    precision: float
    recall: float


@dataclasses.dataclass(frozen=True, slots=True)
class Quality:
    by_type: list[TypeQuality]
    true_rings: int
    rings_recovered: int
    hard_cases: int
    hard_cases_flagged: int
    curve: list[CurvePoint] = dataclasses.field(default_factory=list)
    """Account precision and recall against the score threshold."""

    @property
    def ring_recovery(self) -> float:
        return self.rings_recovered / self.true_rings if self.true_rings else 1.0

    @property
    def hard_case_rate(self) -> float:
        return self.hard_cases_flagged / self.hard_cases if self.hard_cases else 0.0

    def of(self, entity_type: str) -> TypeQuality | None:
        return next((q for q in self.by_type if q.entity_type == entity_type), None)


def read_labels(path: Path) -> pl.DataFrame:
    """Read a labels file; every column as text, an empty ring_id meaning genuine."""
    frame = pl.read_csv(path, infer_schema=False)
    missing = {"entity_type", "entity_id", "ring_id"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path.name} lacks column(s): {', '.join(sorted(missing))}")
    if "role" not in frame.columns:
        frame = frame.with_columns(pl.lit("").alias("role"))
    return frame.select(
        pl.col("entity_type").str.strip_chars(), pl.col("entity_id").str.strip_chars(),
        pl.col("ring_id").str.strip_chars().replace("", None), pl.col("role").fill_null(""))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def evaluate(scores: pl.DataFrame, labels: pl.DataFrame) -> Quality:
    """Compare a run's ``scores`` (all entities, with ``flagged`` and ``ring_id``)."""
    truth = labels.filter(pl.col("ring_id").is_not_null())
    by_type: list[TypeQuality] = []
    for kind in sorted(set(truth.get_column("entity_type").to_list())):
        seen = scores.filter(pl.col("entity_type") == kind).select(
            "entity_id", "score", "flagged")
        positives = set(truth.filter(pl.col("entity_type") == kind)
                        .get_column("entity_id").to_list())
        predicted = set(seen.filter(pl.col("flagged")).get_column("entity_id").to_list())
        hits = len(predicted & positives)
        precision = hits / len(predicted) if predicted else 0.0
        recall = hits / len(positives) if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        y_true = np.array([e in positives for e in seen.get_column("entity_id").to_list()])
        # Ring members missing from the records entirely count as ranked last.
        missing = len(positives - set(seen.get_column("entity_id").to_list()))
        y_score = seen.get_column("score").to_numpy()
        if missing:
            y_true = np.concatenate([y_true, np.ones(missing, dtype=bool)])
            y_score = np.concatenate([y_score, np.full(missing, -1.0)])
        ap = float(average_precision_score(y_true, y_score)) if y_true.any() else 0.0
        by_type.append(TypeQuality(kind, len(positives), len(predicted), precision, recall,
                                   f1, ap))

    true_rings: dict[str, set[str]] = {}
    for ring, entity in truth.filter(pl.col("entity_type") == "account").select(
            "ring_id", "entity_id").iter_rows():
        true_rings.setdefault(ring, set()).add(entity)
    predicted_rings: dict[str, set[str]] = {}
    for ring, entity in scores.filter(
            (pl.col("entity_type") == "account") & pl.col("ring_id").is_not_null()).select(
            "ring_id", "entity_id").iter_rows():
        predicted_rings.setdefault(ring, set()).add(entity)
    big = [members for members in true_rings.values() if len(members) >= 3]
    recovered = sum(
        1 for members in big
        if any(_jaccard(members, found) >= 0.5 for found in predicted_rings.values()))

    hard = set(labels.filter(pl.col("ring_id").is_null()
                             & pl.col("role").str.starts_with("hard_case")
                             & (pl.col("entity_type") == "account"))
               .get_column("entity_id").to_list())
    flagged_accounts = set(scores.filter((pl.col("entity_type") == "account")
                                         & pl.col("flagged")).get_column("entity_id").to_list())
    return Quality(by_type, len(big), recovered, len(hard), len(hard & flagged_accounts),
                   threshold_curve(scores, labels))


def threshold_curve(scores: pl.DataFrame, labels: pl.DataFrame,
                    thresholds: tuple[float, ...] = CURVE_THRESHOLDS) -> list[CurvePoint]:
    """How account precision and recall trade as the score threshold moves."""
    positives = set(labels.filter((pl.col("entity_type") == "account")
                                  & pl.col("ring_id").is_not_null())
                    .get_column("entity_id").to_list())
    accounts = scores.filter(pl.col("entity_type") == "account").select("entity_id", "score")
    points = []
    for threshold in thresholds:
        chosen = set(accounts.filter(pl.col("score") >= threshold).get_column("entity_id")
                     .to_list())
        hits = len(chosen & positives)
        points.append(CurvePoint(threshold, len(chosen),
                                 hits / len(chosen) if chosen else 0.0,
                                 hits / len(positives) if positives else 0.0))
    return points

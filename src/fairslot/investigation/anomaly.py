"""Unsupervised anomaly scores on per-account behaviour (pyod's ECOD), each explained by the
features that made the account rare.

ECOD scores an account by how deep in the tails of each feature's empirical distribution it
sits. The explanation names the features whose right tail is thinnest for that account
(e.g. "patients 37, in the top 0.1%"). An anomaly is a prompt to look, not evidence: a
wealthy family or a chronic patient is rare too, so the anomaly finding is weak by design
and never flags an account alone. Its strength (0.05) only orders accounts for review: a
busy honest family is rare on exactly the volume features the other rules already count,
so the anomaly must not be what carries an account over the flag line.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from pyod.models.ecod import ECOD

__all__ = ["FEATURES", "account_features", "anomaly_findings"]

FEATURES = (
    "bookings", "patients", "departments", "doctors", "cancel_rate", "no_show_rate",
    "fast_share", "ips", "devices", "payers", "release_share",
)


def account_features(bookings: pl.DataFrame, payments: pl.DataFrame,
                     fast_seconds: float = 2.0) -> pl.DataFrame:
    """One row per account with the columns in ``FEATURES``."""
    after = (pl.col("created_at") - pl.col("released_at")).dt.total_milliseconds() / 1000.0
    payers = (
        payments.join(bookings.select("booking_id", "account_id"), on="booking_id")
        .group_by("account_id").agg(pl.col("payer_account").n_unique().alias("payers"))
    )
    features = bookings.group_by("account_id").agg(
        pl.len().alias("bookings"),
        pl.col("patient").n_unique().alias("patients"),
        pl.col("department").n_unique().alias("departments"),
        pl.col("doctor_id").n_unique().alias("doctors"),
        (pl.col("status") == "cancelled").mean().alias("cancel_rate"),
        (pl.col("status") == "no_show").mean().alias("no_show_rate"),
        ((after >= 0) & (after < fast_seconds)).fill_null(False).mean().alias("fast_share"),
        pl.col("ip").n_unique().alias("ips"),
        pl.col("device_id").n_unique().alias("devices"),
        ((after >= 0) & (after < 600)).fill_null(False).mean().alias("release_share"),
    )
    return features.join(payers, on="account_id", how="left").with_columns(
        pl.col("payers").fill_null(0)).select("account_id", *FEATURES)


def anomaly_findings(features: pl.DataFrame, *, top_share: float = 0.01,
                     strength: float = 0.05) -> pl.DataFrame:
    """Findings for the ``top_share`` most anomalous accounts (at least 50 accounts are
    needed for tails to mean anything), each explained by its three rarest features."""
    schema = {"entity_type": pl.String, "entity_id": pl.String, "code": pl.String,
              "strength": pl.Float64, "detail": pl.String}
    if features.height < 50:
        return pl.DataFrame(schema=schema)
    matrix = features.select(FEATURES).to_numpy().astype(np.float64)
    # A feature every account shares (no cancellations anywhere, say) has no tail to be
    # rare in; it is left out rather than fed to ECOD's skewness estimate.
    varied = [j for j in range(matrix.shape[1]) if np.ptp(matrix[:, j]) > 0]
    if not varied:
        return pl.DataFrame(schema=schema)
    detector = ECOD()
    with warnings.catch_warnings():
        # scipy warns of precision loss in the skewness of near-constant columns; ECOD only
        # uses the skewness's sign to pick a tail, so the warning does not matter here.
        warnings.filterwarnings("ignore", message="Precision loss occurred",
                                category=RuntimeWarning)
        detector.fit(matrix[:, varied])
    scores = np.asarray(detector.decision_scores_, dtype=np.float64)
    cutoff = float(np.quantile(scores, 1.0 - top_share))
    chosen = np.flatnonzero(scores > cutoff)
    # Right-tail share per feature: how many accounts have at least this value.
    ranks = np.empty_like(matrix)
    for column in range(matrix.shape[1]):
        sorted_values = np.sort(matrix[:, column])
        at_least = len(sorted_values) - np.searchsorted(sorted_values, matrix[:, column], "left")
        ranks[:, column] = at_least / len(sorted_values)
    rows = []
    ids = features.get_column("account_id").to_list()
    for i in chosen:
        rarest = np.argsort(ranks[i])[:3]
        parts = [f"{FEATURES[j]} {matrix[i, j]:.3g} (top {100 * ranks[i, j]:.1f}%)"
                 for j in rarest]
        rows.append(("account", ids[i], "anomaly", strength,
                     "unusual behaviour: " + ", ".join(parts)))
    return pl.DataFrame(rows, schema=schema, orient="row")

"""Fit the investigation's account-score calibration (Platt scaling) on fairslot's own
synthetic years, and print the two coefficients for ``fairslot.investigation.calibration``.

Only ``fairslot records synth`` data is used: the third generator stays held out, so the
tests that assert the quality targets on it measure records the calibration never saw.

    PYTHONPATH=src python scripts/calibrate_investigation.py [--seeds 21 22 23] [--scale 0.5]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression

from fairslot.investigation.calibration import raw_logit
from fairslot.investigation.evaluate import read_labels
from fairslot.investigation.records import read_records
from fairslot.investigation.scoring import investigate
from fairslot.investigation.synth import write_synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[21, 22, 23])
    parser.add_argument("--scale", type=float, default=0.5)
    args = parser.parse_args()
    xs, ys = [], []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder)
            write_synthetic(path, seed=seed, scale=args.scale)
            result = investigate(read_records(path), calibrated=False)
            truth = read_labels(path / "labels.csv").filter(
                (pl.col("entity_type") == "account") & pl.col("ring_id").is_not_null())
            accounts = result.scores.filter(pl.col("entity_type") == "account")
            members = set(truth.get_column("entity_id").to_list())
            xs.extend(accounts.get_column("score").to_list())
            ys.extend(e in members for e in accounts.get_column("entity_id").to_list())
    x = raw_logit(np.asarray(xs, dtype=np.float64)).reshape(-1, 1)
    y = np.asarray(ys, dtype=bool)
    # Regularised (C=1): fairslot's generator separates rings from households almost
    # perfectly, and an unregularised fit would answer that with a step.
    model = LogisticRegression(C=1.0).fit(x, y)
    slope, intercept = float(model.coef_[0][0]), float(model.intercept_[0])
    print(f"accounts {len(y)}, ring members {int(y.sum())}")
    print(f"SLOPE = {slope:.4f}\nINTERCEPT = {intercept:.4f}")
    for raw in (0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9):
        p = 1.0 / (1.0 + np.exp(-(slope * raw_logit(np.array([raw]))[0] + intercept)))
        print(f"raw {raw:.2f} -> {p:.3f}")


if __name__ == "__main__":
    main()

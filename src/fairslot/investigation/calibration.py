"""Calibration of account scores: the rules' noisy-OR turned into an estimated probability
that the account is part of a ring (Platt scaling).

The raw score ``r`` is mapped by ``p = 1 / (1 + exp(-(SLOPE * logit(r) + INTERCEPT)))``.
The two coefficients were fitted by ``scripts/calibrate_investigation.py`` (scikit-learn's
logistic regression on ``logit(r)``, regularised) on fairslot's own synthetic years only
(seeds 21-23, scale 0.5); no record of the third generator was used, so the quality figures
measured on it are out of sample. The mapping is monotone: it changes what a score means,
not the order of suspects.

``THRESHOLD`` is the documented flag line: an account is a suspect when its calibrated
score is at least 0.5, i.e. when it is estimated more likely than not to be a ring member.
``fairslot investigate --min-score`` lists entities below it for review; the report's
precision/recall table (with ``--labels``) shows what each line would trade.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = ["INTERCEPT", "SLOPE", "THRESHOLD", "calibrate", "raw_logit"]

SLOPE = 4.3178
INTERCEPT = 0.8880
THRESHOLD = 0.5
_EPS = 1e-4


def raw_logit(raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    clipped = np.clip(raw, _EPS, 1.0 - _EPS)
    return np.asarray(np.log(clipped / (1.0 - clipped)), dtype=np.float64)


def calibrate(raw: pl.Expr) -> pl.Expr:
    """The calibrated probability for a raw noisy-OR score expression."""
    clipped = raw.clip(_EPS, 1.0 - _EPS)
    logit = (clipped / (1.0 - clipped)).log()
    return 1.0 / (1.0 + (-(SLOPE * logit + INTERCEPT)).exp())

"""The verifiable draw of a release round.

The byte-level definition lives in ``docs/draw.md``; this package is its reference
implementation, so the two change together. One module per job:

- ``seed``: the hospital's secret seed and its published commitment;
- ``entries``: entry tokens and choices, and the checks that make a list drawable;
- ``allocation``: draw keys, the draw order, random serial dictatorship;
- ``document``: the round document of format ``fairslot-round/1`` (export, load, verify).

Everything here is a pure function of its arguments; ``from fairslot.domain import draw``
gives the whole public API.
"""

from __future__ import annotations

from fairslot.domain.draw.allocation import (
    Award,
    DrawResult,
    draw_keys,
    draw_order,
    next_in_line,
    run_draw,
)
from fairslot.domain.draw.document import (
    FORMAT,
    Round,
    Verification,
    export_round,
    load_round,
    verify_round,
)
from fairslot.domain.draw.entries import (
    MAX_CHOICES,
    Entry,
    MalformedRound,
    canonical_entries,
    entries_digest,
    validate_entries,
)
from fairslot.domain.draw.seed import SEED_BYTES, commitment, new_seed, round_key

__all__ = [
    "FORMAT",
    "MAX_CHOICES",
    "SEED_BYTES",
    "Award",
    "DrawResult",
    "Entry",
    "MalformedRound",
    "Round",
    "Verification",
    "canonical_entries",
    "commitment",
    "draw_keys",
    "draw_order",
    "entries_digest",
    "export_round",
    "load_round",
    "new_seed",
    "next_in_line",
    "round_key",
    "run_draw",
    "validate_entries",
    "verify_round",
]

"""Dense blocks come out the same whatever order the records were read in: the same year
read twice must name the same accounts (a report goes to the police)."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl

from fairslot.investigation.density import dense_blocks


def _bookings(seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    base = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    rows = []
    for day in range(30):
        released = base + dt.timedelta(days=day)
        for doctor in range(12):
            start = released + dt.timedelta(days=7)
            # Three crews of five grabbing the same doctors' sessions together, some days.
            for crew in range(3):
                if rng.random() < 0.5 and doctor % 3 == crew:
                    for member in range(5):
                        rows.append((f"crew{crew}-{member}", doctor, start, released,
                                     released + dt.timedelta(seconds=rng.uniform(0, 9))))
            for _ in range(25):  # patients, at a person's pace
                rows.append((f"p{rng.randrange(2500)}", doctor, start, released,
                             released + dt.timedelta(seconds=rng.uniform(0, 590))))
    return pl.DataFrame(rows, schema=["account_id", "doctor_id", "session_start",
                                      "released_at", "created_at"], orient="row")


def _named(frame: pl.DataFrame) -> list[tuple[tuple[str, ...], int, float]]:
    return [(tuple(sorted(b.accounts)), b.columns, round(b.density, 9))
            for b in dense_blocks(frame)]


def test_the_blocks_do_not_depend_on_the_records_order() -> None:
    bookings = _bookings(3)
    first = _named(bookings)
    assert any(all(a.startswith("crew") for a in accounts) for accounts, _, _ in first)
    for seed in range(6):
        assert _named(bookings.sample(fraction=1.0, shuffle=True, seed=seed)) == first

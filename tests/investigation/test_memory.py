"""The province-scale memory measures: the identifiers counted kind by kind, and the
allocator's options set by the package."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl

from fairslot.investigation import ALLOCATOR_CONF, ALLOCATOR_VARIABLE
from fairslot.investigation.graph import account_identifiers


def _stacked(bookings: pl.DataFrame, payments: pl.DataFrame) -> pl.DataFrame:
    """The former way: every kind's projection stacked, then counted at once."""
    parts = [
        bookings.select("account_id", pl.lit(kind).alias("entity_type"),
                        pl.col(column).alias("entity_id"))
        for kind, column in (("patient", "patient"), ("phone", "patient_phone"),
                             ("device", "device_id"), ("ip", "ip"))
    ]
    parts.append(
        payments.join(bookings.select("booking_id", "account_id"), on="booking_id")
        .select("account_id", pl.lit("payer").alias("entity_type"),
                pl.col("payer_account").alias("entity_id")))
    return (pl.concat(parts).drop_nulls()
            .group_by("account_id", "entity_type", "entity_id").agg(pl.len().alias("bookings")))


def test_identifiers_counted_by_kind_match_the_stacked_count() -> None:
    bookings = pl.DataFrame({
        "booking_id": ["b1", "b2", "b3", "b4", "b5"],
        "account_id": ["a1", "a1", "a2", "a3", None],
        "patient": ["p1", "p1", "p1", None, "p9"],
        "patient_phone": ["t1", "t2", "t1", "t3", "t9"],
        "device_id": ["d1", "d1", None, "d1", "d9"],
        "ip": ["1.1.1.1", "1.1.1.1", "2.2.2.2", "2.2.2.2", "9.9.9.9"],
    })
    payments = pl.DataFrame({"booking_id": ["b1", "b2", "b3", "b9"],
                             "payer_account": ["w1", "w1", None, "w9"]})
    keys = ["account_id", "entity_type", "entity_id"]
    got = account_identifiers(bookings, payments)
    want = _stacked(bookings, payments)
    assert got.schema == want.schema
    assert got.sort(keys).equals(want.sort(keys))
    assert got.filter(pl.col("entity_type") == "payer").rows() == [("a1", "payer", "w1", 2)]


def test_the_package_sets_the_allocator_unless_told_otherwise() -> None:
    code = ("import os, fairslot.investigation.graph; "
            f"print(os.environ.get({ALLOCATOR_VARIABLE!r}))")
    environment = {k: v for k, v in os.environ.items() if k != ALLOCATOR_VARIABLE}
    out = subprocess.run([sys.executable, "-c", code], env=environment, check=True,
                         capture_output=True, text=True).stdout.strip()
    # Polars puts its own options first and ours after them: the later ones win.
    assert out.endswith("," + ALLOCATOR_CONF)
    environment[ALLOCATOR_VARIABLE] = "dirty_decay_ms:5000"
    out = subprocess.run([sys.executable, "-c", code], env=environment, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out.endswith(",dirty_decay_ms:5000")
    assert ALLOCATOR_CONF not in out

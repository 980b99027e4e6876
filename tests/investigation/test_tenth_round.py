"""The tenth round (issue 12): the third generator's held-out seed 12, spent on tuning. A
family crowd racing two doctors by hand, each member on its own phone, wallet and device,
came out as two pieces and a loner, one piece in an auto-clicker ring it shared a customer
with. Its members hold a slot they raced and hand it to a buyer, or race for strangers;
what they share is the doctors and the place. Hand-made records, with look-alikes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from fairslot.investigation.evaluate import evaluate, read_labels
from fairslot.investigation.records import read_records
from fairslot.investigation.rules import FINDING_SCHEMA, Thresholds, without_platform_timing
from fairslot.investigation.scoring import crowd_operations, investigate
from tests.investigation import thirdgen

from .conftest import WriteRecords, booking

PLAN = {
    # The crowd: the same two doctors, each from its own home and once from one hall.
    "h1": ("D1", "D2"), "h2": ("D2", "D1"), "h3": ("D1", "D2"), "h4": ("D1", "D2"),
    # Look-alikes: an auto-clicker ring holding raced slots in the same hall, on other
    # doctors; a holder racing the same doctors in the hall, strongly tied to its partner
    # in another ring; a holder in the hall whose holds were booked days after release.
    "clicker1": ("D7", "D8"), "clicker2": ("D8", "D7"), "tied": ("D1", "D2"),
    "slow": ("D1", "D2"),
}


def _crowds(write_records: WriteRecords) -> list[set[str]]:
    rows = []
    for n, (account, doctors) in enumerate(PLAN.items()):
        for i in range(6):
            rows.append(booking(
                f"{account}-{i}", account_id=account, doctor_id=doctors[i % 2],
                patient_id_number=f"G{26800000 + 100 * n + i}", patient_name="Li Hua",
                ip="10.9.9.9" if i == 0 else f"60.1.{n}.1",
                session_start=f"2025-03-{10 + i}T08:00:00+08:00",
                created_at=(f"2025-02-{10 + i}T07:30:0{3 + i % 5}+08:00" if account != "slow"
                            else f"2025-02-{12 + i}T10:00:00+08:00"),
                released_at=f"2025-02-{10 + i}T07:30:00+08:00"))
    records = read_records(write_records(rows))
    own = [(a, "launder_pair", 0.6) for a in PLAN if a != "h4"] + [
        ("h4", "release_strangers", 0.25)]
    findings = pl.DataFrame([("account", a, code, s, "") for a, code, s in own],
                            schema=FINDING_SCHEMA, orient="row")
    # Each holder's first booking is a hold it cancelled and rebooked for a buyer.
    pairs = pl.DataFrame({"holder_account": [a for a in PLAN if a != "h4"],
                          "held_booking": [f"{a}-0" for a in PLAN if a != "h4"]})
    # h1 and h2 are a ring of their own (tied strongly); h3 sits in the clickers' ring by
    # one shared customer; "tied" shares a wallet with its partner.
    ring_of = {"h1": 1, "h2": 1, "h3": 2, "clicker1": 2, "clicker2": 2, "tied": 3,
               "partner": 3}
    links = pl.DataFrame({
        "a": ["h1", "clicker1", "h3", "tied"], "b": ["h2", "clicker2", "clicker1", "partner"],
        "weight": [1.2, 2.0, 0.125, 1.0], "via": ["ip,phone", "device", "buyer", "payer"]})
    return crowd_operations(findings, without_platform_timing(records.bookings), ring_of,
                            set(PLAN) | {"partner"}, Thresholds(), pairs=pairs, links=links)


def test_a_crowd_holding_raced_slots_is_one_ring_whatever_weak_ring_held_it(
        write_records: WriteRecords) -> None:
    """Holders of slots raced by hand and a racer for strangers, on the same doctors from
    one hall, are one crowd: the ring of two made of crowd members alone, and the member an
    auto-clicker ring held by one shared customer, go with it. The clickers (other doctors),
    the member strongly tied to a partner outside the crowd, and the holder whose holds
    were booked days after release, stay out."""
    assert _crowds(write_records) == [{"h1", "h2", "h3", "h4"}]


@pytest.mark.slow
def test_the_third_generators_seed_12_recovers_every_ring(tmp_path: Path) -> None:
    """Seed 12 (scale 0.2), held out until this round and now a tuning year: its family
    crowd was found at Jaccard 0.27 (8 of 9 rings); with the crowd's holders grouped it is
    found at 0.55 (6 of its 11 accounts flagged, the others with no evidence of their
    own), and nothing is flagged that was not before."""
    thirdgen.generate(tmp_path, seed=12, scale=0.2)
    quality = evaluate(investigate(read_records(tmp_path)).scores,
                       read_labels(tmp_path / "labels.csv"))
    accounts = quality.of("account")
    assert accounts is not None and accounts.precision == 1.0 and accounts.recall > 0.93
    assert (quality.rings_recovered, quality.true_rings) == (9, 9)

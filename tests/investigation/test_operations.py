"""One operation's hands (issue 12): wallets or grabbing devices whose flagged accounts
book at the same release moments, release after release, or wallets paying for the same
flagged accounts, make one ring of the rings their accounts form; two rings racing for the
same releases at chance rate, and a household's wallet, stay apart."""

from __future__ import annotations

import polars as pl

from fairslot.investigation.records import read_records
from fairslot.investigation.rules import FINDING_SCHEMA, Thresholds
from fairslot.investigation.scoring import merge_rings, release_operations, wallet_operations

from .conftest import WriteRecords, booking


def _at(moment: int, seconds: str = "00.300") -> tuple[str, str]:
    clock = f"2025-03-01T{7 + moment // 60:02d}:{moment % 60:02d}"
    return f"{clock}:{seconds}+08:00", f"{clock}:00+08:00"


def _grabs(account: str, moments: range, *, device: str, payer: str, seconds: str = "00.300"
           ) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rows, payments = [], []
    for m in moments:
        created, released = _at(m, seconds)
        row = booking(f"{account}-{m}", account_id=account, device_id=device,
                      created_at=created, released_at=released)
        rows.append(row)
        payments.append({"payment_id": f"p{row['booking_id']}", "booking_id": row["booking_id"],
                         "paid_at": created, "payer_account": payer, "amount": "50"})
    return rows, payments


def _hands(kind: str, code: str, entities: list[str]) -> pl.DataFrame:
    return pl.DataFrame([(kind, e, code, 0.6, "") for e in entities], schema=FINDING_SCHEMA,
                        orient="row")


def _records(write_records: WriteRecords,
             plan: list[tuple[str, range, str, str]], seconds: str = "00.300"
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows: list[dict[str, object]] = []
    payments: list[dict[str, object]] = []
    for account, moments, device, payer in plan:
        r, p = _grabs(account, moments, device=device, payer=payer, seconds=seconds)
        rows += r
        payments += p
    records = read_records(write_records(rows, payments))
    return records.bookings, records.payments


def test_wallets_paying_at_the_same_release_moments_are_one_operation(
        write_records: WriteRecords) -> None:
    """Two wallets each pay for three thin accounts (no account shared) that all book at the
    same ten release moments: one operation. Two other rings' wallets overlap on ten moments
    too, but each takes twenty of the forty, which is chance: apart. A household's wallet
    booking at the operation's moments, with no fan-out of its own, is nobody's hand."""
    plan = [(f"w1a{i}", range(10), f"d1{i}", "w1") for i in range(3)]
    plan += [(f"w2a{i}", range(10), f"d2{i}", "w2") for i in range(3)]
    plan += [(f"x1a{i}", range(10, 30), f"e1{i}", "x1") for i in range(2)]
    plan += [(f"x2a{i}", range(20, 40), f"e2{i}", "x2") for i in range(2)]
    plan += [(f"home{i}", range(10), f"h{i}", "family") for i in range(2)]
    bookings, payments = _records(write_records, plan)
    findings = _hands("payer", "payer_fanout", ["w1", "w2", "x1", "x2"])
    flagged = {account for account, *_ in plan}
    operations = release_operations(findings, bookings, payments, flagged, Thresholds())
    assert operations == [{f"w{w}a{i}" for w in (1, 2) for i in range(3)}]


def test_wallets_paying_for_the_same_accounts_are_one_operation(
        write_records: WriteRecords) -> None:
    """Two fan-out wallets that both paid for two of the same flagged accounts' instant
    bookings are one operation; a third that shares one account with them is not."""
    plan = [("s0", range(0, 2), "d0", "w3"), ("s0", range(2, 4), "d0", "w4"),
            ("s1", range(4, 6), "d1", "w3"), ("s1", range(6, 8), "d1", "w4"),
            ("s2", range(8, 10), "d2", "w5"), ("s2", range(10, 12), "d2", "w3"),
            ("s3", range(12, 14), "d3", "w5")]
    bookings, payments = _records(write_records, plan)
    findings = _hands("payer", "payer_fanout", ["w3", "w4", "w5"])
    operations = release_operations(findings, bookings, payments, {"s0", "s1", "s2", "s3"},
                                    Thresholds())
    assert operations == [{"s0", "s1", "s2"}]


def test_phones_grabbing_at_the_same_release_moments_are_one_farm(
        write_records: WriteRecords) -> None:
    """Four grabbing phones, three accounts each, all at the same ten release moments, three
    seconds after release (a grab, if not an instant one): one farm. Two other grabbing
    devices overlapping at chance rate stay apart, and so do accounts on a phone without
    ``grab_device`` (fast typists) at the farm's moments."""
    plan = [(f"f{p}a{i}", range(10), f"phone{p}", f"own-f{p}{i}")
            for p in range(4) for i in range(3)]
    plan += [(f"q1a{i}", range(10, 30), "q1", f"own-q1{i}") for i in range(2)]
    plan += [(f"q2a{i}", range(20, 40), "q2", f"own-q2{i}") for i in range(2)]
    plan += [(f"typist{i}", range(10), "typing", f"own-t{i}") for i in range(2)]
    bookings, payments = _records(write_records, plan, seconds="03.000")
    findings = _hands("device", "grab_device", ["phone0", "phone1", "phone2", "phone3",
                                                "q1", "q2"])
    flagged = {account for account, *_ in plan}
    operations = release_operations(findings, bookings, payments, flagged, Thresholds())
    assert operations == [{f"f{p}a{i}" for p in range(4) for i in range(3)}]


def test_slow_bookings_and_unflagged_accounts_tie_nothing(
        write_records: WriteRecords) -> None:
    """The same phones booking half a minute after release, or for unflagged accounts, are
    not an operation: the tie reads flagged accounts' release-instant bookings only."""
    rows: list[dict[str, object]] = []
    for p in range(2):
        for i in range(2):
            for m in range(10):
                created, released = _at(m, "30.000")
                rows.append(booking(f"b{p}{i}{m}", account_id=f"f{p}a{i}",
                                    device_id=f"phone{p}", created_at=created,
                                    released_at=released))
    records = read_records(write_records(rows))
    findings = _hands("device", "grab_device", ["phone0", "phone1"])
    accounts = {f"f{p}a{i}" for p in range(2) for i in range(2)}
    assert release_operations(findings, records.bookings, records.payments, accounts,
                              Thresholds()) == []


def test_merge_rings_joins_only_rings_that_are_mostly_the_operation() -> None:
    ring_of = {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2, "f": 3, "g": 3, "x": 3,
               "h": 4, "i": 4, "j": 4, "k": 4, "l": 4}
    flagged = set(ring_of)
    merge_rings(ring_of, flagged, {"a", "b", "c", "d", "e", "f", "h", "i"})
    assert ring_of["d"] == ring_of["e"] == ring_of["a"]
    # One member of ring 3 and two of five of ring 4 are the operation's: they stay apart.
    assert ring_of["f"] == ring_of["g"] == 3
    assert ring_of["h"] == ring_of["l"] == 4


def test_rings_mostly_paid_by_one_fan_out_wallet_are_one_ring(
        write_records: WriteRecords) -> None:
    """A farm's hub wallet pays for every account, whatever device it books from, at any
    speed: the two rings its devices made are one. A ring of which it paid one member only
    stays apart, and a wallet without fan-out of its own ties nobody."""
    plan = [(f"f{i}", range(3), f"dev{i % 2}", "hub") for i in range(6)]
    plan += [("o0", range(3), "odev", "hub"), ("o1", range(3), "odev", "own1"),
             ("o2", range(3), "odev", "own2")]
    plan += [("h0", range(3), "hdev0", "home"), ("h1", range(3), "hdev1", "home")]
    bookings, payments = _records(write_records, plan, seconds="04.000")
    flagged = {a for a, _m, _d, _p in plan}
    operations = wallet_operations(_hands("payer", "payer_fanout", ["hub"]), bookings,
                                   payments, flagged)
    assert operations == [{f"f{i}" for i in range(6)} | {"o0"}]
    ring_of = {f"f{i}": i % 2 for i in range(6)} | {"o0": 2, "o1": 2, "o2": 2,
                                                    "h0": 3, "h1": 4}
    for accounts in operations:
        merge_rings(ring_of, flagged, accounts)
    assert len({ring_of[f"f{i}"] for i in range(6)}) == 1
    assert ring_of["o1"] == 2 and ring_of["f0"] != 2
    assert ring_of["h0"] != ring_of["h1"]

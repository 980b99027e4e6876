"""The fifth outside generator's first-sight misses (issue 12): buyer-facing brokers who race
releases by hand for genuine patients paying for themselves, customers' own accounts tied
to a ring through the one person it sold them, slot-holding accounts whose bookings are
mostly grabs let go unpaid, and an insider desk's broker left alone when the desk was taken
into a ring of its own. Each on a hand-made record set, with its look-alike."""

from __future__ import annotations

from typing import Any

import polars as pl

from fairslot.investigation.records import read_records
from fairslot.investigation.rules import FINDING_SCHEMA, Thresholds, run_rules
from fairslot.investigation.scoring import Investigation, desk_operations, investigate

from .conftest import WriteRecords, booking


def _codes(findings: pl.DataFrame, entity: str) -> dict[str, float]:
    rows = findings.filter(pl.col("entity_id") == entity)
    return dict(rows.select("code", "strength").iter_rows())


def _account(result: Investigation, account: str) -> dict[str, Any]:
    rows = result.scores.filter((pl.col("entity_type") == "account")
                                & (pl.col("entity_id") == account))
    assert rows.height == 1
    return rows.row(0, named=True)


def _race(booking_id: str, account: str, day: int, *, patient: str, phone: str,
          seconds: int = 25, **values: Any) -> dict[str, Any]:
    """A booking raced by hand ``seconds`` after an 08:00 release on a day of 2025, for a
    session a month later with a doctor of the account's own (no two accounts race the
    same sessions: that would be ``lockstep``)."""
    month, mday = 1 + day // 28, 1 + day % 28
    return booking(
        booking_id, account_id=account, patient_id_number=patient, patient_name="Li Hua",
        patient_phone=phone, doctor_id=f"{account}-doc{day % 7}",
        released_at=f"2025-{month:02d}-{mday:02d}T08:00:00+08:00",
        created_at=f"2025-{month:02d}-{mday:02d}T08:00:{seconds:02d}+08:00",
        session_start=f"2025-{month + 1:02d}-{mday:02d}T14:00:00+08:00",
        device_id=f"dev-{account}", ip=f"61.{len(account)}.{day % 200}.1", **values)


def _paid(rows: list[dict[str, Any]], payer: str | None = None) -> list[dict[str, Any]]:
    """Each booking paid by its patient's own wallet (or by ``payer``)."""
    return [{"payment_id": f"p-{r['booking_id']}", "booking_id": r["booking_id"],
             "paid_at": r["created_at"], "payer_account": payer or f"wx:{r['patient_id_number']}",
             "amount": "50"} for r in rows]


def _broker(account: str, people: int, *, first: int = 0) -> list[dict[str, Any]]:
    """``people`` different people, each booked once, raced 25 s after their release."""
    return [_race(f"{account}-{i}", account, i, patient=f"G{26864100 + first + i}",
                  phone=f"139{first + i:08d}") for i in range(people)]


def _household(account: str, races: int) -> list[dict[str, Any]]:
    """Three people of one household, raced for again and again."""
    return [_race(f"{account}-{i}", account, i, patient=f"H{58892600 + i % 3}",
                  phone="13800000000") for i in range(races)]


def test_a_broker_racing_releases_for_thirty_different_people_is_flagged(
        write_records: WriteRecords) -> None:
    """Thirty people, each raced for once by hand and each paying for themselves: a
    buyer-facing broker's trade, flagged on its own bookings. A household racing the same
    three people's releases thirty times is not; nor is a helper racing for twelve."""
    rows = _broker("broker", 30) + _household("family", 30) + _broker("helper", 12, first=100)
    records = read_records(write_records(rows, _paid(rows)))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    assert _codes(findings, "broker")["release_strangers"] >= 0.4
    assert "release_strangers" not in _codes(findings, "family")
    assert _codes(findings, "helper")["release_strangers"] < 0.4
    result = investigate(records)
    assert _account(result, "broker")["flagged"]
    assert not _account(result, "family")["flagged"]
    assert not _account(result, "helper")["flagged"]


def _customer_case(write_records: WriteRecords, *, shares_device: bool) -> Investigation:
    """Two brokers who both sold slots to the same 30 people, one of whom (``P``) also has
    an account of her own, where she booked herself three times (with her own phone) and a
    relative once under a mistyped number (her own clue, 0.25). With ``shares_device`` she
    also booked once on the first broker's device."""
    customer, phone = "G99990001", "13700000001"
    rows = []
    for broker in ("broker1", "broker2"):
        rows += _broker(broker, 30)
        rows.append(_race(f"{broker}-p", broker, 60, patient=customer, phone=phone))
    own = [booking(f"own-{i}", account_id="customer", patient_id_number=customer,
                   patient_name="Li Hua", patient_phone=phone, device_id="dev-home",
                   ip="120.1.1.1", created_at=f"2025-05-{10 + i}T10:00:00+08:00",
                   released_at=f"2025-05-{1 + i}T08:00:00+08:00",
                   session_start=f"2025-05-{20 + i}T08:00:00+08:00") for i in range(3)]
    own.append(booking("own-typo", account_id="customer", patient_id_number="11010119900307123",
                       patient_name="赵敏", patient_phone=phone, device_id="dev-home",
                       ip="120.1.1.1", created_at="2025-06-10T10:00:00+08:00"))
    if shares_device:
        own[0]["device_id"] = "dev-broker1"
    rows += own
    return investigate(read_records(write_records(rows, _paid(rows))))


def test_a_customers_own_account_is_tied_to_the_ring_by_one_person_only(
        write_records: WriteRecords) -> None:
    """The customer's account shares her, her phone and (paying for herself) her wallet with
    both brokers: one person, not three ties, so it joins no ring, however the link weight
    adds up. The brokers are a ring. An account that shares the same person and, besides,
    a broker's own device has two independent ties and joins the ring."""
    result = _customer_case(write_records, shares_device=False)
    brokers = {_account(result, b)["ring_id"] for b in ("broker1", "broker2")}
    assert len(brokers) == 1 and None not in brokers
    customer = _account(result, "customer")
    assert customer["ring_id"] is None
    assert "ring_link" not in customer["reasons"]
    assert not customer["flagged"]

    tied = _customer_case(write_records, shares_device=True)
    member = _account(tied, "customer")
    assert "ring_link" in member["reasons"]
    assert member["ring_id"] == _account(tied, "broker1")["ring_id"]


def _grabs(account: str, holds: int, used: int) -> list[dict[str, Any]]:
    """``holds`` slots grabbed 3 s after release and cancelled unpaid, and ``used`` grabbed
    the same way, paid and attended."""
    rows = [_race(f"{account}-h{i}", account, i, patient="H58892624", phone="13800000009",
                  seconds=3, status="cancelled") for i in range(holds)]
    rows += [_race(f"{account}-u{i}", account, 50 + i, patient="H58892624",
                   phone="13800000009", seconds=3) for i in range(used)]
    return rows


def test_release_grabs_mostly_let_go_unpaid_are_holds(write_records: WriteRecords) -> None:
    """An account whose bookings are mostly slots grabbed at the release and dropped unpaid
    is holding them; a fast typist who drops three grabs among a year of visits it paid for
    and came to is not."""
    holder = _grabs("holder", holds=4, used=1)
    typist = _grabs("typist", holds=3, used=7)
    records = read_records(write_records(
        holder + typist, _paid([r for r in holder + typist if r["status"] != "cancelled"])))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    assert _codes(findings, "holder")["unused_holds"] >= 0.5
    assert "unused_holds" not in _codes(findings, "typist")
    result = investigate(records)
    assert _account(result, "holder")["flagged"]
    assert _account(result, "holder")["role"] == "holder"
    assert not _account(result, "typist")["flagged"]


def test_dropped_grabs_that_were_paid_are_no_holds(write_records: WriteRecords) -> None:
    """Cancelled after paying (a refund) is a patient changing plans, not a hold."""
    rows = _grabs("payer", holds=4, used=0)
    records = read_records(write_records(rows, _paid(rows)))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    assert "unused_holds" not in _codes(findings, "payer")


def test_the_desks_wallet_keeps_its_broker_with_the_desk() -> None:
    """A registration desk selling releases to a wallet, and a broker whose own bookings the
    same wallet paid, were one community; the desk is taken into a ring of its own and the
    broker goes with it. A helper in that community whose bookings its own wallet paid, and
    a broker of another ring the wallet paid twice, stay where they were."""
    findings = pl.DataFrame(
        [("account", "desk", "staff_release_wallet", 0.9, ""),
         ("payer", "wx:till", "staff_release_wallet", 0.9, "")],
        schema=FINDING_SCHEMA, orient="row")
    who = {"d": "desk", "b": "broker", "h": "helper", "o": "other"}
    paid_by = {"d": "wx:till", "b": "wx:till", "h": "wx:helper", "o": "wx:till"}
    counts = {"d": 5, "b": 3, "h": 4, "o": 2}
    ids = [f"{k}{i}" for k, n in counts.items() for i in range(n)]
    bookings = pl.DataFrame({"booking_id": ids, "account_id": [who[i[0]] for i in ids]})
    payments = pl.DataFrame({"booking_id": ids, "payer_account": [paid_by[i[0]] for i in ids]})
    ring_of = {"desk": 1, "broker": 1, "helper": 1, "helper2": 1, "other": 2, "other2": 2}
    flagged = set(ring_of)
    empty = pl.DataFrame(schema={"a": pl.String, "b": pl.String, "weight": pl.Float64,
                                 "via": pl.String})
    rings = desk_operations(findings, empty, ring_of, flagged, bookings=bookings,
                            payments=payments)
    assert rings == {ring_of["desk"]} and ring_of["desk"] not in (1, 2)
    assert ring_of["broker"] == ring_of["desk"]
    assert ring_of["helper"] == ring_of["helper2"] == 1
    assert ring_of["other"] == 2

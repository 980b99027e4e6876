"""The third outside generator's failure report (issue 12): thin accounts booking instantly
for a ring wallet, carrier pools, repeated holder-broker handovers, carers, fast typists
and a clerk's typos, each on a hand-made record set, with its honest look-alike."""

from __future__ import annotations

import polars as pl
import pytest

from fairslot.investigation.graph import account_links
from fairslot.investigation.records import read_records
from fairslot.investigation.rules import (
    REPEATED_PAIRS,
    Thresholds,
    ordinary_addresses,
    repeated_launder_ties,
    run_rules,
)
from fairslot.investigation.scoring import ASSOCIATION, account_scores, investigate

from .conftest import VALID_IDS, WriteRecords, booking


def _codes(findings: pl.DataFrame, entity: str) -> dict[str, float]:
    rows = findings.filter(pl.col("entity_id") == entity)
    return dict(rows.select("code", "strength").iter_rows())


def _payment(row: dict[str, object], payer: str) -> dict[str, object]:
    return {"payment_id": f"p{row['booking_id']}", "booking_id": row["booking_id"],
            "paid_at": "2025-03-01T07:35:00+08:00", "payer_account": payer, "amount": "50"}


def test_thin_accounts_booking_instantly_for_a_shared_wallet_are_suspects(
        write_records: WriteRecords) -> None:
    """Six accounts book twice each, every booking 0.3 s after release, paid by one wallet
    that pays for all of them: each is a suspect on its own speed and its own payments.
    An account as fast, twice, paying for itself is luck, not a finding."""
    thin = [booking(f"t{i}", account_id=f"thin{i // 2}", patient_id_number=VALID_IDS[i],
                    patient_phone=f"1390000{i:04d}", device_id=f"phone{i // 2}",
                    ip=f"61.1.{i}.1", session_start=f"2025-03-{10 + i}T08:00:00+08:00",
                    created_at=f"2025-03-0{1 + i % 2}T07:30:00.300+08:00",
                    released_at=f"2025-03-0{1 + i % 2}T07:30:00+08:00")
            for i in range(12)]
    lucky = [booking(f"l{i}", account_id="lucky", patient_id_number=VALID_IDS[i],
                     device_id="own", ip="62.1.1.1",
                     created_at=f"2025-03-0{1 + i}T07:30:00.400+08:00",
                     released_at=f"2025-03-0{1 + i}T07:30:00+08:00") for i in range(2)]
    payments = [_payment(row, "alipay:ring") for row in thin]
    payments += [_payment(row, "wechat:lucky") for row in lucky]
    result = investigate(read_records(write_records(thin + lucky, payments)))
    flagged = set(result.scores.filter(pl.col("flagged")).get_column("entity_id").to_list())
    for i in range(6):
        assert _codes(result.findings, f"thin{i}")["instant_hub_paid"] >= 0.5
        assert f"thin{i}" in flagged
    assert "instant_hub_paid" not in _codes(result.findings, "lucky")
    assert "lucky" not in flagged


def _rows(account: str, ip: str, patient: str, phone: str, device: str) -> dict[str, str]:
    return {"account_id": account, "ip": ip, "patient": patient, "patient_phone": phone,
            "device_id": device}


def test_a_carrier_pool_shared_by_a_few_strangers_per_address_ties_nobody() -> None:
    """Sixty strangers on one carrier's /16: each address shared by two of them over the
    year, under the 50-account crowd cutoff, yet the pool as a whole is a crowd. Ten
    households on a home broadband /16 share an address each between two accounts that
    also share their patient: those addresses still tie."""
    rows = [_rows(f"m{i}", f"39.144.{i % 30}.7", f"P{i}", f"139{i:08d}", f"dev{i}")
            for i in range(60)]
    rows += [_rows(f"h{i}-{j}", f"114.222.{i}.9", f"H{i}", f"138{i:08d}", f"hd{i}-{j}")
             for i in range(10) for j in range(2)]
    ordinary = ordinary_addresses(pl.DataFrame(rows))
    assert {f"39.144.{i}.7" for i in range(30)} <= ordinary
    assert not any(ip.startswith("114.222.") for ip in ordinary)
    # A smaller pool (a ring's rented proxies) is not a crowd.
    assert ordinary_addresses(pl.DataFrame(rows[:40])) == set()


def test_a_holder_feeding_one_broker_again_and_again_is_tied_to_it() -> None:
    def pairs(holder: str, broker: str, n: int, linked: bool) -> list[dict[str, object]]:
        return [{"holder_account": holder, "rebook_account": broker, "linked": linked}
                for _ in range(n)]
    frame = pl.DataFrame(pairs("holder", "broker", REPEATED_PAIRS, False)
                         + pairs("rival", "catcher", REPEATED_PAIRS - 2, False)
                         + pairs("home", "spare", REPEATED_PAIRS, True))
    ties = repeated_launder_ties(frame)
    assert ties.select("a", "b").rows() == [("holder", "broker")]
    assert ties.get_column("via").to_list() == ["launder_repeat"]


def test_one_phone_feeding_another_again_and_again_ties_their_accounts() -> None:
    """A farm's phones: the accounts on phone A cancel, the accounts on phone B rebook,
    each account pair only once or twice but the two phones every week."""
    rows = [{"holder_account": f"a{i % 3}", "rebook_account": f"b{i % 4}", "linked": False,
             "d1": "phoneA", "d2": "phoneB"} for i in range(REPEATED_PAIRS)]
    rows += [{"holder_account": "x", "rebook_account": "y", "linked": False,
              "d1": "phoneX", "d2": "phoneY"} for _ in range(REPEATED_PAIRS - 2)]
    ties = repeated_launder_ties(pl.DataFrame(rows))
    assert set(ties.select("a", "b").rows()) == {
        (f"a{i % 3}", f"b{i % 4}") for i in range(REPEATED_PAIRS)}


def _many(write_records: WriteRecords, seconds: str) -> float:
    rows = [booking(f"c{i}", account_id="helper", patient_id_number=f"G{26864100 + i}",
                    patient_name="Li Hua", session_start=f"2025-03-{10 + i}T08:00:00+08:00",
                    created_at=f"2025-03-01T07:{seconds}+08:00") for i in range(13)]
    records = read_records(write_records(rows))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    return _codes(findings, "helper")["many_patients"]


def test_booking_for_many_patients_at_a_persons_pace_stays_under_the_flag_line(
        write_records: WriteRecords) -> None:
    """A carer booking thirteen elders a minute or two after releases is not racing: a weak
    clue (under 0.3, counted once with the other weak clues). The same count grabbed
    within seconds of release is a scalper's."""
    assert _many(write_records, "31:30") < 0.3
    assert _many(write_records, "30:04") >= 0.5


def test_being_in_a_dense_block_is_association_not_evidence() -> None:
    """A fast typist booking at the same release moments as a ring, on the same carrier,
    has done nothing of its own: dense block and ring link alone make no suspect."""
    assert "dense_block" in ASSOCIATION
    findings = pl.DataFrame([
        ("account", "typist", "dense_block", 0.4, "in a dense block"),
        ("account", "typist", "ring_link", 0.55, "tied to 2 ring members"),
    ], schema={"entity_type": pl.String, "entity_id": pl.String, "code": pl.String,
               "strength": pl.Float64, "detail": pl.String}, orient="row")
    assert account_scores(findings).get_column("score").to_list() == [0.0]


def test_one_weak_clue_lets_ties_count_but_not_a_dense_block() -> None:
    """A fast typist racing releases for a parent, a child and itself has one weak clue of
    its own (``release_strangers``); beside a crowd at those releases on a carrier's network
    it stays under the flag line. The same clue with a tie through an identifier or money
    (``ring_link``) counts, as a crowd member's does; a second clue of its own lets the dense
    block count too."""
    schema = {"entity_type": pl.String, "entity_id": pl.String, "code": pl.String,
              "strength": pl.Float64, "detail": pl.String}
    findings = pl.DataFrame([
        ("account", "typist", "release_strangers", 0.25, "raced 3 releases"),
        ("account", "typist", "dense_block", 0.4, "in a dense block"),
        ("account", "member", "release_strangers", 0.25, "raced 3 releases"),
        ("account", "member", "ring_link", 0.55, "tied to 2 ring members"),
        ("account", "crowd", "release_strangers", 0.3, "raced 5 releases"),
        ("account", "crowd", "many_patients", 0.25, "booked for 7 patients"),
        ("account", "crowd", "dense_block", 0.4, "in a dense block"),
    ], schema=schema, orient="row")
    scores = dict(account_scores(findings, calibrated=False)
                  .select("entity_id", "score").iter_rows())
    assert scores["typist"] == pytest.approx(0.25)
    assert scores["member"] == pytest.approx(1 - 0.75 * 0.45)
    assert scores["crowd"] == pytest.approx(1 - 0.7 * 0.75 * 0.6)


def test_a_clerks_typo_for_a_patient_who_came_is_a_weak_clue(
        write_records: WriteRecords) -> None:
    typed = "110101198001010030"  # a wrong check digit
    rows = [booking("w", account_id="window", patient_id_number=typed, channel="window"),
            booking("a", account_id="app", patient_id_number="110101198001010031",
                    channel="app")]
    records = read_records(write_records(rows))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    assert _codes(findings, typed)["invalid_id_number"] < 0.5
    assert _codes(findings, "110101198001010031")["invalid_id_number"] >= 0.5


def test_links_come_out_the_same_whatever_the_order_of_the_identifiers() -> None:
    identifiers = pl.DataFrame({
        "account_id": [f"a{i}" for i in range(40)],
        "entity_type": ["payer", "ip", "device", "phone"] * 10,
        "entity_id": [f"e{i % 7}" for i in range(40)],
        "bookings": [1] * 40})
    first = account_links(identifiers)
    assert first.equals(account_links(identifiers.reverse()))
    assert first.equals(account_links(identifiers.sample(fraction=1.0, shuffle=True, seed=3)))

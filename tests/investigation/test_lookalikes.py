"""Honest look-alikes an outside generator found flagged, and the ring conduct they were
confused with, each on a tiny hand-made record set: a household's one swap, waitlist
refills, passports and permits, typists at exactly 1 s, a carer's typos, a broker catching
cancellations at ordinary hours, and a clerk racing releases for a ring's wallet."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from stdnum.cn import ric

from fairslot.investigation.records import read_records
from fairslot.investigation.rules import (
    Thresholds,
    institutional_accounts,
    launder_pairs,
    run_rules,
    valid_id_number,
    without_platform_timing,
)
from fairslot.investigation.scoring import investigate

from .conftest import VALID_IDS, WriteRecords, booking

BASE = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _at(seconds: float) -> str:
    return (BASE + dt.timedelta(seconds=seconds)).isoformat()


def _id(n: int) -> str:
    """A valid resident ID number, different for each n."""
    body = f"110101{dt.date(1950, 1, 1) + dt.timedelta(days=97 * n):%Y%m%d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def _findings(folder: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    records = read_records(folder)  # type: ignore[arg-type]
    return run_rules(without_platform_timing(records.bookings), records.payments, None,
                     Thresholds())


def _codes(findings: pl.DataFrame, entity: str) -> dict[str, float]:
    rows = findings.filter(pl.col("entity_id") == entity)
    return dict(rows.select("code", "strength").iter_rows())


def _score(folder: object, account: str) -> tuple[float, str]:
    result = investigate(read_records(folder))  # type: ignore[arg-type]
    row = result.scores.filter((pl.col("entity_type") == "account")
                               & (pl.col("entity_id") == account))
    return float(row.get_column("score")[0]), str(row.get_column("reasons")[0])


def test_one_household_swap_in_a_year_does_not_flag(write_records: WriteRecords) -> None:
    # The mother cannot go; the father, never booked before and with his own phone, takes
    # her slot on the family's account a few seconds later.
    rows = [
        booking("m", account_id="fam", patient_id_number=VALID_IDS[0], status="cancelled",
                cancelled_at=_at(0)),
        booking("f", account_id="fam", patient_id_number=VALID_IDS[1], created_at=_at(6),
                patient_name="李强", patient_phone="13900000001"),
    ]
    folder = write_records(rows)
    findings, pairs = _findings(folder)
    assert pairs.height == 1
    strength = _codes(findings, "fam").get("launder_pair", 0.0)
    assert strength < 0.3  # one pair: counted once, a weak clue
    score, _reasons = _score(folder, "fam")
    assert score < 0.5


def _self_swaps(count: int) -> list[dict[str, Any]]:
    """``count`` cancel-then-rebook pairs inside one account, each for a new relative."""
    rows = []
    for i in range(count):
        session = f"2025-03-1{i}T08:00:00+08:00"
        rows.append(booking(f"h{i}", account_id="holder", patient_id_number=VALID_IDS[0],
                            session_start=session, status="cancelled",
                            cancelled_at=_at(100 * i)))
        rows.append(booking(f"r{i}", account_id="holder", patient_id_number=_id(700 + i),
                            session_start=session, created_at=_at(100 * i + 10),
                            patient_phone=f"1390000000{i}"))
    return rows


def test_two_self_swaps_in_one_household_account_do_not_flag(
        write_records: WriteRecords) -> None:
    # A family hands its held slot to a relative (own phone, never booked before) twice in
    # a year: two swaps inside one account, no ring wallet paying, make no suspect.
    folder = write_records(_self_swaps(2))
    findings, _pairs = _findings(folder)
    assert _codes(findings, "holder")["launder_pair"] < 0.3
    score, reasons = _score(folder, "holder")
    assert score < 0.5, reasons


def test_a_habit_of_same_account_pairs_is_still_laundering(write_records: WriteRecords
                                                           ) -> None:
    findings, _pairs = _findings(write_records(_self_swaps(4)))
    assert _codes(findings, "holder")["launder_pair"] >= 0.6


def test_two_same_account_pairs_paid_by_a_ring_wallet_are_laundering(
        write_records: WriteRecords) -> None:
    rows = _self_swaps(2)
    payments = [{"payment_id": f"p{i}{j}", "booking_id": f"r{i}" if j == 0 else f"o{i}{j}",
                 "paid_at": _at(100 * i + 60), "amount": "50", "payer_account": "alipay:hub"}
                for i in range(2) for j in range(6)]
    for i in range(2):
        for j in range(1, 6):
            rows.append(booking(f"o{i}{j}", account_id=f"other{j}",
                                patient_id_number=_id(800 + 10 * i + j),
                                created_at=_at(5000 + 10 * i + j)))
    findings, _pairs = _findings(write_records(rows, payments))
    assert _codes(findings, "holder")["launder_pair"] >= 0.6


def test_a_large_family_swapping_among_its_own_people_on_one_phone_is_no_pair(
        write_records: WriteRecords) -> None:
    """Three generations and the relatives they book for (seven people, over the household
    limit) on one family phone: four times a year one cancels and another the account booked
    before takes the slot. A household's swaps, not holds."""
    phone = "13900000009"
    rows = [booking(f"k{n}", account_id="big", patient_id_number=_id(900 + n),
                    patient_phone=phone, created_at="2025-01-05T10:00:00+08:00",
                    session_start=f"2025-01-{10 + n}T08:00:00+08:00") for n in range(7)]
    for i in range(4):
        session = f"2025-03-1{i}T08:00:00+08:00"
        rows.append(booking(f"h{i}", account_id="big", patient_id_number=_id(900 + i),
                            patient_phone=phone, session_start=session, status="cancelled",
                            cancelled_at=_at(100 * i)))
        rows.append(booking(f"r{i}", account_id="big", patient_id_number=_id(904 + i % 3),
                            patient_phone=phone, session_start=session,
                            created_at=_at(100 * i + 10)))
    findings, pairs = _findings(write_records(rows))
    assert pairs.is_empty()
    assert "launder_pair" not in _codes(findings, "big")


def test_self_swaps_of_holds_grabbed_at_release_are_laundering(
        write_records: WriteRecords) -> None:
    """Two self-swaps whose holds were grabbed two seconds after release, under an identity
    the account never brought to a clinic: slots held for sale, not a family's weak clue."""
    rows = _self_swaps(2)
    for row in rows:
        if row["booking_id"].startswith("h"):
            row["released_at"] = "2025-03-01T07:30:00+08:00"
            row["created_at"] = "2025-03-01T07:30:02+08:00"
    findings, _pairs = _findings(write_records(rows))
    assert _codes(findings, "holder")["launder_pair"] >= 0.6


def test_a_waitlist_refill_is_not_the_receiving_half_of_a_laundering_pair(
        write_records: WriteRecords) -> None:
    rows = []
    # A chronic patient cancels five times; each slot goes to the next on the waitlist.
    for i in range(5):
        session = f"2025-03-1{i}T08:00:00+08:00"
        rows.append(booking(f"c{i}", account_id="chronic", patient_id_number=VALID_IDS[0],
                            session_start=session, status="cancelled",
                            cancelled_at=_at(1000 * i)))
        rows.append(booking(f"w{i}", account_id="waiter" if i < 4 else f"other{i}",
                            patient_id_number=VALID_IDS[i + 1], session_start=session,
                            created_at=_at(1000 * i + 8 + 3 * i), channel="waitlist",
                            device_id=f"dw{i}", ip=f"10.0.0.{i}"))
    folder = write_records(rows)
    findings, pairs = _findings(folder)
    assert pairs.is_empty()
    assert "launder_pair" not in _codes(findings, "chronic")
    assert "launder_pair" not in _codes(findings, "waiter")
    # The same refills booked by hand through the app are a pattern worth a finding.
    for row in rows:
        row.pop("channel", None)
    findings, pairs = _findings(write_records(rows))
    assert pairs.height == 5
    assert "launder_pair" in _codes(findings, "chronic")


def test_passports_and_permits_are_other_documents_not_invalid_numbers(
        write_records: WriteRecords) -> None:
    for number in ("G26864141", "H58892624", "M3152181", "E12345678", "12345678"):
        assert valid_id_number(number), number
    # Resident-ID shapes that fail, and numbers of no document, are still invalid.
    for number in ("110101198001010030", "110101198013450037", "1101011980", "561", "x!"):
        assert not valid_id_number(number), number
    # The optional document-type column decides when present.
    assert valid_id_number("110101198001010030", "passport")
    assert not valid_id_number("G26864141", "resident_id")
    rows = [booking("p1", account_id="household", patient_id_number="G26864141",
                    patient_name="John Smith"),
            booking("p2", account_id="household", patient_id_number="H58892624",
                    patient_name="陈美玲"),
            booking("p3", account_id="household", patient_id_number=VALID_IDS[0])]
    findings, _pairs = _findings(write_records(rows))
    assert _codes(findings, "household") == {}
    rows = [booking("q1", account_id="declared", patient_id_number="110101198001010030",
                    patient_id_type="passport"),
            booking("q2", account_id="declared", patient_id_number="110101198001010031",
                    patient_id_type="Passport")]
    findings, _pairs = _findings(write_records(rows))
    assert "invalid_id_number" not in _codes(findings, "declared")


def test_exactly_one_second_after_release_is_not_under_one_second(
        write_records: WriteRecords) -> None:
    typist = [booking(f"t{i}", account_id="typist", released_at=_at(86400 * i),
                      created_at=_at(86400 * i + 1.0)) for i in range(4)]
    tool = [booking(f"b{i}", account_id="tool", released_at=_at(86400 * i),
                    created_at=_at(86400 * i + 0.999)) for i in range(4)]
    findings, _pairs = _findings(write_records(typist + tool))
    assert "fast_after_release" not in _codes(findings, "typist")
    assert _codes(findings, "tool")["fast_after_release"] >= 0.6


def test_a_mistyped_number_typed_right_another_time_is_one_person(
        write_records: WriteRecords) -> None:
    # A family of five; two of them once had two neighbouring digits swapped (checksum
    # fails), another once a digit wrong and the same name.
    family = [_id(n) for n in range(5)]
    swapped = family[1][:8] + family[1][9] + family[1][8] + family[1][10:]
    wrong = family[2][:15] + str((int(family[2][15]) + 1) % 10) + family[2][16:]
    assert not valid_id_number(swapped) and not valid_id_number(wrong)
    names = ["张伟", "张丽", "张强", "王芳", "张敏"]
    rows = [booking(f"f{i}", account_id="carer", patient_id_number=number,
                    patient_name=names[i], created_at=_at(86400 * i))
            for i, number in enumerate(family)]
    rows += [booking("x1", account_id="carer", patient_id_number=swapped,
                     patient_name="张丽", created_at=_at(86400 * 9)),
             booking("x2", account_id="carer", patient_id_number=wrong,
                     patient_name="张强", created_at=_at(86400 * 10))]
    # A holder's fabricated numbers belong to nobody it booked correctly.
    rows += [booking("h1", account_id="holder", patient_id_number="110101198001010030",
                     patient_name="刘洋"),
             booking("h2", account_id="holder", patient_id_number="310104200105050022",
                     patient_name="赵磊")]
    findings, _pairs = _findings(write_records(rows))
    carer = _codes(findings, "carer")
    assert "invalid_id_number" not in carer
    assert "many_patients" not in carer  # five people, not seven
    assert _codes(findings, "holder")["invalid_id_number"] >= 0.7


def _broker_rows() -> list[dict[str, Any]]:
    """Three holder accounts cancel; an API account books a different buyer into each
    freed slot within a second, at ordinary hours (long after the release)."""
    rows: list[dict[str, Any]] = []
    for i in range(20):
        session = (BASE + dt.timedelta(days=10 + i)).isoformat()
        cancel = 3600.0 * i
        rows.append(booking(f"h{i}", account_id=f"holder{i % 3}", session_start=session,
                            patient_id_number=_id(100 + i % 3), status="cancelled",
                            device_id=f"hd{i % 3}", ip=f"10.1.0.{i % 3}",
                            created_at=_at(cancel - 86400), cancelled_at=_at(cancel)))
        rows.append(booking(f"r{i}", account_id="api", session_start=session,
                            patient_id_number=_id(200 + i), patient_name="王建国",
                            patient_phone=f"137{i:08d}", device_id="api-dev",
                            ip="10.2.0.1", created_at=_at(cancel + 0.05 + 0.07 * i)))
    return rows


def test_a_broker_rebooking_seconds_after_cancellations_is_not_an_institution(
        write_records: WriteRecords) -> None:
    folder = write_records(_broker_rows())
    records = read_records(folder)
    bookings = without_platform_timing(records.bookings)
    t = Thresholds()
    _laundering, pairs = launder_pairs(bookings, t)
    assert pairs.filter(pl.col("rebook_account") == "api").height == 20
    # Without the pairs (20 patients at ordinary hours) it would read as a call centre.
    assert "api" in institutional_accounts(bookings, t).get_column("account_id").to_list()
    assert "api" not in institutional_accounts(bookings, t, pairs).get_column(
        "account_id").to_list()
    score, reasons = _score(folder, "api")
    assert score >= 0.5
    assert "institutional" not in reasons and "launder_pair" in reasons


def test_a_call_centre_booking_at_ordinary_hours_is_still_an_institution(
        write_records: WriteRecords) -> None:
    rows = [booking(f"c{i}", account_id="callcentre", patient_id_number=_id(300 + i),
                    session_start=(BASE + dt.timedelta(days=10 + i)).isoformat(),
                    patient_phone=f"136{i:08d}", created_at=_at(3600.0 * i + 77))
            for i in range(20)]
    folder = write_records(rows)
    records = read_records(folder)
    bookings = without_platform_timing(records.bookings)
    t = Thresholds()
    _laundering, pairs = launder_pairs(bookings, t)
    assert "callcentre" in institutional_accounts(bookings, t, pairs).get_column(
        "account_id").to_list()


def _clerk_rows(payer: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A window clerk books hot slots seconds after release for six patients; a tout's
    online accounts book six more strangers; ``payer`` pays for the clerk's bookings."""
    rows: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    for i in range(6):
        release = 86400.0 * i
        rows.append(booking(f"k{i}", account_id="clerk", channel="window",
                            patient_id_number=_id(400 + i), patient_phone=f"135{i:08d}",
                            session_start=(BASE + dt.timedelta(days=14 + i)).isoformat(),
                            released_at=_at(release), created_at=_at(release + 2 + i)))
        payments.append({"payment_id": f"pk{i}", "booking_id": f"k{i}",
                         "paid_at": _at(release + 60), "amount": "50",
                         "payer_account": payer if payer != "own" else f"wechat:own{i}"})
        for j in range(2):
            rows.append(booking(f"t{i}{j}", account_id=f"tout{j}",
                                patient_id_number=_id(500 + 2 * i + j),
                                patient_phone=f"134{i:04d}{j:04d}",
                                created_at=_at(release + 3600)))
            payments.append({"payment_id": f"pt{i}{j}", "booking_id": f"t{i}{j}",
                             "paid_at": _at(release + 3700), "amount": "50",
                             "payer_account": "alipay:hub"})
    return rows, payments


def test_a_clerk_racing_releases_for_a_ring_wallets_buyers_is_evidence(
        write_records: WriteRecords) -> None:
    rows, payments = _clerk_rows("alipay:hub")
    folder = write_records(rows, payments)
    findings, _pairs = _findings(folder)
    assert _codes(findings, "clerk")["staff_release_for_hub"] >= 0.7
    score, reasons = _score(folder, "clerk")
    assert score >= 0.5, reasons


def test_a_clerk_whose_walk_ins_pay_for_themselves_is_not(
        write_records: WriteRecords) -> None:
    rows, payments = _clerk_rows("own")
    findings, _pairs = _findings(write_records(rows, payments))
    assert "staff_release_for_hub" not in _codes(findings, "clerk")


def _window_rows(catchers: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A registration window books a hot slot 5 s after each of six releases, for a day
    ahead, and cancels it a day later; 3 s after each cancellation another account rebooks
    the slot for a new patient. ``catchers``: ``ring`` (two accounts, one wallet),
    ``strangers`` (a different person each time, paying for themselves) or ``waitlist``."""
    rows: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    for i in range(6):
        release = 86400.0 * i
        session = (BASE + dt.timedelta(days=14 + i)).isoformat()
        rows.append(booking(f"k{i}", account_id="window", channel="window",
                            patient_id_number=_id(400 + i), patient_phone=f"135{i:08d}",
                            session_start=session, released_at=_at(release),
                            created_at=_at(release + 5), status="cancelled",
                            cancelled_at=_at(release + 86400)))
        catcher = {"ring": f"catcher{i % 2}", "strangers": f"stranger{i}",
                   "waitlist": f"waiting{i}"}[catchers]
        rows.append(booking(f"c{i}", account_id=catcher, patient_id_number=_id(500 + i),
                            patient_phone=f"136{i:08d}", session_start=session,
                            released_at=_at(release), created_at=_at(release + 86403),
                            channel="waitlist" if catchers == "waitlist" else "app"))
        payments.append({"payment_id": f"pc{i}", "booking_id": f"c{i}",
                         "paid_at": _at(release + 86460), "amount": "50",
                         "payer_account": "alipay:wallet" if catchers == "ring"
                         else f"wechat:own{i}"})
    return rows, payments


def test_a_window_whose_releases_one_wallets_accounts_catch_is_an_insider(
        write_records: WriteRecords) -> None:
    rows, payments = _window_rows("ring")
    folder = write_records(rows, payments)
    result = investigate(read_records(folder))
    scores = dict(result.scores.select("entity_id", "score").iter_rows())
    assert scores["window"] >= 0.5
    assert scores["catcher0"] >= 0.5 and scores["catcher1"] >= 0.5
    assert scores["alipay:wallet"] >= 0.5
    reasons = result.scores.filter(pl.col("entity_id") == "window").get_column("reasons")[0]
    assert "staff_release_caught" in reasons
    ring = result.scores.filter(pl.col("entity_id").is_in(["window", "catcher0", "catcher1"])
                                ).get_column("ring_id").unique().to_list()
    assert len(ring) == 1 and ring[0] is not None


def test_a_window_whose_cancellations_strangers_or_the_waitlist_take_is_not(
        write_records: WriteRecords) -> None:
    for catchers in ("strangers", "waitlist"):
        rows, payments = _window_rows(catchers)
        result = investigate(read_records(write_records(rows, payments)))
        assert not result.scores.filter(pl.col("flagged")).height, catchers


def _kiosk_rows(buyers: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A kiosk books ``buyers`` different patients 5 s after releases, for days ahead, all
    paid by one wallet, besides walk-ins paying for themselves at ordinary hours."""
    rows: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    for i in range(buyers):
        release = 86400.0 * i
        rows.append(booking(f"k{i}", account_id="kiosk", channel="kiosk",
                            patient_id_number=_id(600 + i), patient_phone=f"137{i:08d}",
                            session_start=(BASE + dt.timedelta(days=14 + i)).isoformat(),
                            released_at=_at(release), created_at=_at(release + 5)))
        payments.append({"payment_id": f"pk{i}", "booking_id": f"k{i}",
                         "paid_at": _at(release + 60), "amount": "50",
                         "payer_account": "alipay:wallet"})
    for i in range(12):
        rows.append(booking(f"w{i}", account_id="kiosk", channel="kiosk",
                            patient_id_number=_id(900 + i), patient_phone=f"138{i:08d}",
                            created_at=_at(3600 + 86400.0 * i)))
        payments.append({"payment_id": f"pw{i}", "booking_id": f"w{i}",
                         "paid_at": _at(3660 + 86400.0 * i), "amount": "50",
                         "payer_account": f"wechat:walkin{i}"})
    return rows, payments


def test_one_wallet_buying_a_kiosks_release_time_bookings_is_a_finding(
        write_records: WriteRecords) -> None:
    rows, payments = _kiosk_rows(12)
    result = investigate(read_records(write_records(rows, payments)))
    scores = dict(result.scores.select("entity_id", "score").iter_rows())
    assert scores["kiosk"] >= 0.5
    assert scores["alipay:wallet"] >= 0.5


def test_a_family_paying_a_kiosks_release_time_bookings_with_one_wallet_is_not(
        write_records: WriteRecords) -> None:
    rows, payments = _kiosk_rows(4)
    result = investigate(read_records(write_records(rows, payments)))
    assert not result.scores.filter(pl.col("flagged")).height


def test_a_desks_own_till_paying_for_everything_it_sells_is_not_a_wallet(
        write_records: WriteRecords) -> None:
    # The call centre books twelve callers at releases and many more at ordinary hours;
    # the hospital's till is recorded as the payer of all of them.
    rows, payments = _kiosk_rows(12)
    for i in range(30):
        rows.append(booking(f"x{i}", account_id="kiosk", channel="kiosk",
                            patient_id_number=_id(1000 + i), patient_phone=f"133{i:08d}",
                            created_at=_at(7200 + 3600.0 * i)))
    payments = [dict(p, payer_account="cash:till") for p in payments]
    payments += [{"payment_id": f"px{i}", "booking_id": f"x{i}", "paid_at": _at(7300 + 3600.0 * i),
                  "amount": "50", "payer_account": "cash:till"} for i in range(30)]
    result = investigate(read_records(write_records(rows, payments)))
    assert not result.scores.filter(pl.col("flagged")).height

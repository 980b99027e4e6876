"""Each rule on a tiny hand-made record set: it fires on the pattern and not on its honest
look-alike."""

from __future__ import annotations

import polars as pl

from fairslot.investigation.records import read_records
from fairslot.investigation.rules import (
    Thresholds,
    fronts_for_software,
    run_rules,
    valid_id_number,
)
from fairslot.investigation.scoring import investigate

from .conftest import VALID_IDS, WriteRecords, booking


def _findings(folder: object, payments: bool = True) -> pl.DataFrame:
    records = read_records(folder)  # type: ignore[arg-type]
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    return findings


def _codes(findings: pl.DataFrame, entity: str) -> dict[str, float]:
    rows = findings.filter(pl.col("entity_id") == entity)
    return dict(rows.select("code", "strength").iter_rows())


def test_invalid_id_numbers_are_kept_and_flagged(write_records: WriteRecords) -> None:
    folder = write_records([
        booking("b1", account_id="bad", patient_id_number="110101198001010030"),
        booking("b2", account_id="bad", patient_id_number="1101011980"),
        booking("b3", account_id="good", patient_id_number=VALID_IDS[0]),
    ])
    findings = _findings(folder)
    assert _codes(findings, "bad")["invalid_id_number"] >= 0.7
    assert "invalid_id_number" in _codes(findings, "1101011980")
    assert _codes(findings, "good") == {}


def test_one_mistyped_id_number_is_a_weak_clue_only(write_records: WriteRecords) -> None:
    folder = write_records([booking("b1", account_id="typo",
                                    patient_id_number="110101198001010030")])
    assert _codes(_findings(folder), "typo")["invalid_id_number"] < 0.5


def test_pseudonymised_id_numbers_and_names_are_not_called_invalid(
        write_records: WriteRecords) -> None:
    folder = write_records([booking("b1", patient_id_number="h:9a8b7c",
                                    patient_name="h:00ff11")])
    assert _findings(folder).is_empty()
    assert valid_id_number("h:9a8b7c")


def test_nonsense_names_are_flagged_and_minority_and_latin_names_are_not(
        write_records: WriteRecords) -> None:
    folder = write_records([
        booking("b1", account_id="farm", patient_name="561", patient_id_number=VALID_IDS[1]),
        booking("b2", account_id="farm", patient_name="789", patient_id_number=VALID_IDS[2]),
        booking("b3", account_id="ok", patient_name="阿卜杜拉·买买提",
                patient_id_number=VALID_IDS[3]),
        booking("b4", account_id="ok", patient_name="John Smith", patient_id_number=VALID_IDS[4]),
    ])
    findings = _findings(folder)
    assert _codes(findings, "farm")["nonsense_name"] >= 0.7
    assert _codes(findings, "ok") == {}


def test_one_identity_across_many_departments_in_a_week_is_flagged(
        write_records: WriteRecords) -> None:
    # Booked, paid for, and never seen at a clinic (the week's visits are still ahead).
    spread = [booking(f"s{i}", account_id="spread", department=dept, doctor_id=f"d{i}",
                      created_at=f"2025-03-0{i + 2}T10:00:00+08:00", status="paid")
              for i, dept in enumerate(("心内科", "骨科", "眼科"))]
    # The same three departments spread over three months is a patient's ordinary year.
    slow = [booking(f"t{i}", account_id="slow", patient_id_number=VALID_IDS[5],
                    department=dept, doctor_id=f"d{i}", created_at=f"2025-0{i + 3}-01T10:00:00")
            for i, dept in enumerate(("心内科", "骨科", "眼科"))]
    # The same week for a person who came to the clinics: an elder's bad week, booked by
    # her community centre's helpers, is illness, not a held name.
    seen = [booking(f"c{i}", account_id=f"helper{i % 2}", patient_id_number=VALID_IDS[6],
                    department=dept, doctor_id=f"d{i}",
                    created_at=f"2025-03-0{i + 2}T10:00:00+08:00")
            for i, dept in enumerate(("心内科", "骨科", "眼科"))]
    findings = _findings(write_records(spread + slow + seen))
    assert "identity_spread" in _codes(findings, VALID_IDS[0])
    assert "identity_spread" in _codes(findings, "spread")
    assert "identity_spread" not in _codes(findings, VALID_IDS[5])
    assert "identity_spread" not in _codes(findings, VALID_IDS[6])
    assert "identity_spread" not in _codes(findings, "helper0")


def test_a_payer_paying_for_more_patients_than_a_household_is_a_hub(
        write_records: WriteRecords) -> None:
    bookings = [booking(f"b{i}", account_id=f"a{i % 3}", patient_id_number=VALID_IDS[i])
                for i in range(12)]
    bookings += [booking("f1", account_id="fam", patient_id_number=VALID_IDS[0])]
    payments = [{"payment_id": f"p{i}", "booking_id": f"b{i}",
                 "paid_at": "2025-03-01T10:05:00+08:00", "payer_account": "alipay:hub",
                 "amount": "50"} for i in range(12)]
    payments += [{"payment_id": "pf", "booking_id": "f1", "paid_at": "2025-03-01T10:05:00",
                  "payer_account": "wechat:family", "amount": "50"}]
    findings = _findings(write_records(bookings, payments))
    assert _codes(findings, "alipay:hub")["payer_fanout"] >= 0.6
    assert _codes(findings, "wechat:family") == {}


def test_one_ip_booking_many_ids_in_an_hour_for_few_accounts_is_flagged(
        write_records: WriteRecords) -> None:
    fanout = [booking(f"b{i}", account_id=f"a{i % 2}", patient_id_number=VALID_IDS[i],
                      ip="9.9.9.9", created_at=f"2025-03-01T10:{i:02d}:00+08:00")
              for i in range(10)]
    # A campus NAT: as many patients in the hour, but each from its own account.
    nat = [booking(f"n{i}", account_id=f"student{i}", patient_id_number=VALID_IDS[i],
                   ip="8.8.8.8", created_at=f"2025-03-01T10:{i:02d}:00+08:00")
           for i in range(10)]
    findings = _findings(write_records(fanout + nat))
    assert "ip_fanout" in _codes(findings, "9.9.9.9")
    assert _codes(findings, "8.8.8.8") == {}


def test_devices_and_phones_shared_beyond_a_household_are_noted(
        write_records: WriteRecords) -> None:
    rows = [booking(f"b{i}", account_id=f"a{i}", patient_id_number=VALID_IDS[i],
                    device_id="kiosk", patient_phone="17000000000") for i in range(6)]
    findings = _findings(write_records(rows))
    assert _codes(findings, "kiosk")["shared_device"] < 0.5  # a clinic terminal does this too
    assert "shared_phone" in _codes(findings, "17000000000")


def test_bookings_within_two_seconds_of_release_are_flagged_when_habitual(
        write_records: WriteRecords) -> None:
    bot = [booking(f"b{i}", account_id="bot", created_at=f"2025-03-0{i + 1}T07:30:00.800+08:00",
                   released_at=f"2025-03-0{i + 1}T07:30:00+08:00") for i in range(5)]
    person = [booking(f"p{i}", account_id="person",
                      created_at=f"2025-03-0{i + 1}T07:30:25+08:00",
                      released_at=f"2025-03-0{i + 1}T07:30:00+08:00") for i in range(5)]
    findings = _findings(write_records(bot + person))
    assert _codes(findings, "bot")["fast_after_release"] >= 0.6
    assert "fast_after_release" not in _codes(findings, "person")


def test_cancel_then_rebook_for_another_patient_is_laundering(
        write_records: WriteRecords) -> None:
    # Four pairs: two swaps inside one household-sized account are a family handing its
    # slot to relatives (test_lookalikes); a habit of them is a holder's.
    rows = []
    for i in range(4):
        session = f"2025-03-1{i}T08:00:00+08:00"
        rows.append(booking(f"h{i}", account_id="holder", patient_id_number=VALID_IDS[0],
                            session_start=session, status="cancelled",
                            cancelled_at=f"2025-03-02T12:00:0{i}+08:00"))
        # The buyers are strangers: their own phones.
        rows.append(booking(f"r{i}", account_id="holder", patient_id_number=VALID_IDS[i + 1],
                            patient_phone=f"1390000000{i}", session_start=session,
                            created_at=f"2025-03-02T12:00:1{i}+08:00"))
    # An honest cancellation whose slot a stranger takes an hour later.
    rows.append(booking("c", account_id="honest", patient_id_number=VALID_IDS[5],
                        session_start="2025-03-20T08:00:00+08:00", status="cancelled",
                        cancelled_at="2025-03-02T12:00:00+08:00"))
    rows.append(booking("s", account_id="stranger", patient_id_number=VALID_IDS[6],
                        session_start="2025-03-20T08:00:00+08:00",
                        created_at="2025-03-02T13:00:00+08:00"))
    records = read_records(write_records(rows))
    findings, pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    assert _codes(findings, "holder")["launder_pair"] >= 0.6
    assert "launder_pair" not in _codes(findings, "honest")
    assert set(pairs.get_column("buyer").to_list()) == set(VALID_IDS[1:5])


def test_a_family_giving_its_slot_to_another_relative_is_not_laundering(
        write_records: WriteRecords) -> None:
    """The mother cannot go, the father takes her slot: the same account, a household's
    size, the family's one phone. Twice in a year is still a family, not a holder."""
    rows = []
    for i in range(2):
        session = f"2025-03-1{i}T08:00:00+08:00"
        rows.append(booking(f"h{i}", account_id="family", patient_id_number=VALID_IDS[0],
                            session_start=session, status="cancelled",
                            cancelled_at=f"2025-03-02T12:00:0{i}+08:00"))
        rows.append(booking(f"r{i}", account_id="family", patient_id_number=VALID_IDS[i + 1],
                            session_start=session, created_at=f"2025-03-02T12:00:1{i}+08:00"))
    records = read_records(write_records(rows))
    findings, pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    assert "launder_pair" not in _codes(findings, "family")
    assert pairs.is_empty()


def test_repeated_no_shows_are_flagged_and_one_is_not(write_records: WriteRecords) -> None:
    rows = [booking(f"n{i}", account_id="hoarder", status="no_show") for i in range(3)]
    rows += [booking("o1", account_id="forgetful", status="no_show"),
             booking("o2", account_id="forgetful")]
    findings = _findings(write_records(rows))
    assert "repeated_no_show" in _codes(findings, "hoarder")
    assert _codes(findings, "forgetful") == {}


def test_a_device_grabbing_at_release_for_many_accounts_is_a_broker_not_a_clinic(
        write_records: WriteRecords) -> None:
    """The device is the broker's hands and is flagged on its own conduct; the customers
    whose logins it used are its buyers, named in the evidence but never suspects."""
    broker = [booking(f"g{i}", account_id=f"customer{i}", patient_id_number=VALID_IDS[i],
                      device_id="reseller-phone", created_at="2025-03-01T07:30:01+08:00",
                      released_at="2025-03-01T07:30:00+08:00") for i in range(5)]
    # A clinic's shared terminal: as many accounts, booking at ordinary times.
    clinic = [booking(f"c{i}", account_id=f"elder{i}", patient_id_number=VALID_IDS[i + 5],
                      device_id="clinic-kiosk", created_at=f"2025-03-0{i + 2}T10:00:00+08:00",
                      released_at="2025-03-01T07:30:00+08:00") for i in range(5)]
    findings = _findings(write_records(broker + clinic))
    assert "grab_device" in _codes(findings, "reseller-phone")
    assert _codes(findings, "customer0")["grab_device"] == 0.0
    assert "grab_device" not in _codes(findings, "clinic-kiosk")
    assert _codes(findings, "elder0") == {}
    scores = investigate(read_records(write_records(broker + clinic))).scores
    flagged = set(scores.filter(pl.col("flagged")).get_column("entity_id").to_list())
    assert "reseller-phone" in flagged
    assert not flagged & {f"customer{i}" for i in range(5)}


def test_booking_strangers_with_a_shared_wallets_money_is_resale(
        write_records: WriteRecords) -> None:
    """Two accounts each book six strangers, paid by one wallet paying for both: resellers.
    A carer booking six neighbours and paying for them is not; neither is an account
    only paid by the wallet now and then."""
    resale = [booking(f"r{i}", account_id=f"reseller{i // 6}", patient_id_number=VALID_IDS[i])
              for i in range(12)]
    carer = [booking(f"c{i}", account_id="carer", patient_id_number=VALID_IDS[i])
             for i in range(6)]
    paid = [{"payment_id": f"p{b['booking_id']}", "booking_id": b["booking_id"],
             "paid_at": "2025-03-01T10:05:00+08:00", "amount": "50",
             "payer_account": "alipay:hub" if b in resale else "wechat:carer"}
            for b in resale + carer]
    result = investigate(read_records(write_records(resale + carer, paid)))
    codes = {account: _codes(result.findings, account)
             for account in ("reseller0", "reseller1", "carer")}
    assert codes["reseller0"]["hub_resale"] > 0 and codes["reseller1"]["hub_resale"] > 0
    assert "hub_resale" not in codes["carer"]
    flagged = set(result.scores.filter(pl.col("flagged")).get_column("entity_id").to_list())
    assert {"reseller0", "reseller1"} <= flagged
    assert "carer" not in flagged


def _desk_rows(account: str, seconds_after_release: int) -> list[dict[str, object]]:
    """An account on the contract's 'other' channel booking for 20 people, one each; four
    of the bookings made ``seconds_after_release`` after the slot's release."""
    from tests.investigation.thirdgen import id_check_char

    rows = []
    for i in range(20):
        body = f"11010119700101{i:03d}"
        made = (f"2025-03-02T07:30:{seconds_after_release:02d}+08:00"
                if i < 4 and seconds_after_release < 60 else
                f"2025-03-02T{7 + seconds_after_release // 3600:02d}:"
                f"{30 + seconds_after_release % 3600 // 60:02d}:00+08:00" if i < 4 else
                f"2025-03-0{2 + i % 5}T14:{10 + i:02d}:00+08:00")
        rows.append(booking(f"{account}-{i}", account_id=account, channel="other",
                            patient_id_number=body + id_check_char(body),
                            patient_phone=f"1380000{i:04d}", created_at=made,
                            released_at="2025-03-02T07:30:00+08:00",
                            session_start=f"2025-03-{16 + i % 10}T08:00:00+08:00"))
    return rows


def test_a_desk_whose_visitors_come_minutes_after_a_release_is_an_institution(
        write_records: WriteRecords) -> None:
    from fairslot.investigation.rules import institutional_accounts

    records = read_records(write_records(_desk_rows("kiosk", 240) + _desk_rows("racer", 2)))
    institutions = institutional_accounts(records.bookings, Thresholds())
    # A fifth of the kiosk's bookings fall 4 minutes after a release: nobody raced.
    assert institutions.get_column("account_id").to_list() == ["kiosk"]


def _software_rows(prefix: str, phone: str, ids: range, *, account: str | None = None,
                   device: str = "bot-phone") -> list[dict[str, object]]:
    """Bookings made 0.3 s after release (software) for the patients ``VALID_IDS[ids]``,
    each giving ``phone``; by ``account``, or each in its own customer's account."""
    return [booking(f"{prefix}{i}", account_id=account or f"{prefix}-customer{i}",
                    patient_id_number=VALID_IDS[i], patient_phone=phone, device_id=device,
                    created_at=f"2025-03-{i + 1:02d}T07:30:00.300+08:00",
                    released_at=f"2025-03-{i + 1:02d}T07:30:00+08:00")
            for i in ids]


def _payments(rows: list[dict[str, object]], payer: str) -> list[dict[str, object]]:
    return [{"payment_id": f"p{row['booking_id']}", "booking_id": row["booking_id"],
             "paid_at": "2025-03-20T10:05:00+08:00", "amount": "50", "payer_account": payer}
            for row in rows]


def test_a_tout_whose_phone_and_wallet_stand_behind_a_bots_bookings_is_a_front(
        write_records: WriteRecords) -> None:
    """A tout books a client or two by hand with its own phone and wallet; the same phone
    and wallet are on the bookings a bot account makes for five strangers. A buyer whose
    phone and wallet are on the bot's bookings for two relatives is not a front: that is a
    family buying once."""
    fronted = _software_rows("t", "13900000001", range(5), account="bot")
    tout = [booking("own-t", account_id="tout", patient_id_number=VALID_IDS[10],
                    patient_phone="13900000001", device_id="tout-phone",
                    created_at="2025-04-02T15:00:00+08:00")]
    bought = _software_rows("f", "13700000002", range(6, 8), account="bot")
    buyer = [booking("own-b", account_id="buyer", patient_id_number=VALID_IDS[11],
                     patient_phone="13700000002", device_id="buyer-phone",
                     created_at="2025-04-03T15:00:00+08:00")]
    payments = (_payments(fronted + tout, "wechat:tout")
                + _payments(bought + buyer, "wechat:buyer"))
    records = read_records(write_records(fronted + tout + bought + buyer, payments))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    fronts, ties = fronts_for_software(records.bookings, records.payments, findings,
                                       Thresholds())
    assert _codes(fronts, "tout")["fronts_for_software"] >= 0.6
    assert "fronts_for_software" not in _codes(fronts, "buyer")
    assert "fronts_for_software" not in _codes(fronts, "bot")
    assert set(ties.select("account_id", "booker").iter_rows()) == {("tout", "bot")}
    result = investigate(records)
    scores = result.scores.filter(pl.col("entity_type") == "account")
    ring = dict(scores.select("entity_id", "ring_id").iter_rows())
    flagged = set(scores.filter(pl.col("flagged")).get_column("entity_id").to_list())
    assert {"tout", "bot"} <= flagged and "buyer" not in flagged
    assert ring["tout"] is not None and ring["tout"] == ring["bot"]


def test_a_customers_lent_account_is_not_a_front_for_the_bookings_made_in_it(
        write_records: WriteRecords) -> None:
    """A broker's grabbing device books five customers in their own accounts, giving the
    tout's phone. The tout, whose own booking carries that phone, fronts for the device;
    the customers, whose accounts hold the broker's bookings with the tout's phone, do
    not: a number on bookings made by software in one's account is not one's own."""
    grabbed = _software_rows("g", "13900000003", range(5))
    tout = [booking("own-t", account_id="tout", patient_id_number=VALID_IDS[10],
                    patient_phone="13900000003", device_id="tout-phone",
                    created_at="2025-04-02T15:00:00+08:00")]
    own = [booking(f"own-c{i}", account_id=f"g-customer{i}", patient_id_number=VALID_IDS[i],
                   patient_phone=f"1360000000{i}", device_id=f"customer-phone{i}",
                   created_at="2025-05-02T15:00:00+08:00") for i in range(5)]
    records = read_records(write_records(grabbed + tout + own))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    fronts, ties = fronts_for_software(records.bookings, records.payments, findings,
                                       Thresholds())
    assert set(fronts.get_column("entity_id").to_list()) == {"tout"}
    assert set(ties.select("account_id", "booker", "device_id").iter_rows()) == {
        ("tout", None, "bot-phone")}


def test_racing_releases_by_hand_for_different_one_off_people_is_a_clue_of_ones_own(
        write_records: WriteRecords) -> None:
    """A crowd's member grabs at three releases, 4-9 s after each, for three people it never
    books again: a weak clue of its own (enough to be judged on its ties, never to flag). A
    household racing for the same two parents again and again has none; a bot's sub-second
    bookings (``fast_after_release``'s) and ordinary-hour bookings do not count."""
    def race(prefix: str, account: str, ids: list[int], seconds: str) -> list[dict[str, object]]:
        return [booking(f"{prefix}{n}", account_id=account, patient_id_number=VALID_IDS[i],
                        created_at=f"2025-03-{n + 1:02d}T07:30:{seconds}+08:00",
                        released_at=f"2025-03-{n + 1:02d}T07:30:00+08:00")
                for n, i in enumerate(ids)]
    crowd = race("c", "crowd", [0, 1, 2], "06")
    family = race("f", "family", [3, 4, 3, 4, 3], "05")
    bot = race("b", "bot", [5, 6, 7], "00.300")
    calm = [booking(f"o{n}", account_id="calm", patient_id_number=VALID_IDS[8 + n],
                    created_at=f"2025-03-{n + 1:02d}T14:00:00+08:00") for n in range(3)]
    findings = _findings(write_records(crowd + family + bot + calm))
    assert 0.25 <= _codes(findings, "crowd")["release_strangers"] < 0.3
    for honest in ("family", "bot", "calm"):
        assert "release_strangers" not in _codes(findings, honest)
    scores = investigate(read_records(write_records(crowd + family + calm))).scores
    assert not scores.filter(pl.col("entity_id") == "crowd").get_column("flagged").item()

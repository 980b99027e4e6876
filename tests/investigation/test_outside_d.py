"""The fourth outside generator's failure report (issue 12): community helpers racing for
their own elders, draw wins taken for ordinary hours, a hub paying for more accounts than
the crowd cutoff, a farm shattered by modularity and an extended family's swap, each on a
hand-made record set, with its look-alike."""

from __future__ import annotations

import polars as pl

from fairslot.investigation.graph import communities
from fairslot.investigation.records import read_records
from fairslot.investigation.rules import (
    FINDING_SCHEMA,
    Thresholds,
    institutional_accounts,
    run_rules,
    without_platform_timing,
)
from fairslot.investigation.scoring import crowd_operations, desk_operations, investigate

from .conftest import WriteRecords, booking


def _codes(findings: pl.DataFrame, entity: str) -> dict[str, float]:
    rows = findings.filter(pl.col("entity_id") == entity)
    return dict(rows.select("code", "strength").iter_rows())


def _helper(write_records: WriteRecords, regulars: bool) -> float:
    """Sixteen people booked a few seconds after release: the same people twice each, who
    came (a helper's elders), or sixteen people booked once each (a reseller's buyers)."""
    rows = []
    for i in range(16):
        for visit in range(2 if regulars else 1):
            rows.append(booking(
                f"h{i}-{visit}", account_id="helper", patient_id_number=f"G{26864100 + i}",
                patient_name="Li Hua", session_start=f"2025-0{3 + visit}-{10 + i}T08:00:00+08:00",
                created_at=f"2025-0{2 + visit}-{10 + i}T07:30:04+08:00",
                released_at=f"2025-0{2 + visit}-{10 + i}T07:30:00+08:00"))
    records = read_records(write_records(rows))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    return _codes(findings, "helper")["many_patients"]


def test_racing_a_release_for_ones_own_regulars_is_no_resale(
        write_records: WriteRecords) -> None:
    """A helper racing hot releases for the elders it books all year: the patient count is
    a weak clue. The same race for sixteen one-off people is a reseller's."""
    assert _helper(write_records, regulars=True) < 0.3
    assert _helper(write_records, regulars=False) >= 0.5


def test_draw_wins_for_strangers_are_no_institutions_ordinary_hours(
        write_records: WriteRecords) -> None:
    """An account whose bookings are sixteen draw wins for sixteen people is not a kiosk; an
    account booking sixteen people at ordinary hours through the app still is one."""
    draws = [booking(f"d{i}", account_id="farm", channel="draw",
                     patient_id_number=f"G{26864100 + i}", patient_name="Li Hua",
                     created_at=f"2025-03-{10 + i}T20:00:00+08:00",
                     released_at=f"2025-03-{10 + i}T20:00:00+08:00") for i in range(16)]
    kiosk = [booking(f"k{i}", account_id="kiosk", channel="app",
                     patient_id_number=f"G{26865100 + i}", patient_name="Li Hua",
                     created_at=f"2025-03-{10 + i}T10:15:00+08:00") for i in range(16)]
    records = read_records(write_records(draws + kiosk))
    bookings = without_platform_timing(records.bookings)
    found = set(institutional_accounts(bookings, Thresholds())
                .get_column("account_id").to_list())
    assert found == {"kiosk"}


def test_a_wallet_paying_for_more_accounts_than_the_crowd_cutoff_still_ties_them(
        write_records: WriteRecords) -> None:
    """Fifty-five accounts, each with its own phone, device and address, booking strangers
    under a second after release, all paid by one wallet: one ring. An address shared by
    so many ties nobody; a wallet is one person's money."""
    rows, payments = [], []
    for a in range(55):
        for i in range(6):
            row = booking(f"b{a}-{i}", account_id=f"bot{a}", device_id=f"dev{a}",
                          ip=f"61.{a}.1.1", patient_phone=f"1390{a:03d}{i:04d}",
                          patient_id_number=f"G{27000000 + 10 * a + i}", patient_name="Li Hua",
                          session_start=f"2025-04-{1 + i}T08:00:00+08:00",
                          created_at=f"2025-03-{10 + i}T07:30:00.300+08:00",
                          released_at=f"2025-03-{10 + i}T07:30:00+08:00")
            rows.append(row)
            payments.append({"payment_id": f"p{row['booking_id']}",
                             "booking_id": row["booking_id"],
                             "paid_at": f"2025-03-{10 + i}T07:35:00+08:00",
                             "payer_account": "alipay:hub", "amount": "50"})
    result = investigate(read_records(write_records(rows, payments)))
    rings = result.scores.filter(pl.col("entity_type") == "account").get_column("ring_id")
    assert rings.null_count() == 0
    assert rings.n_unique() == 1


def _clique(names: list[str], weight: float) -> list[tuple[str, str, float, str]]:
    return [(a, b, weight, "device") for i, a in enumerate(names) for b in names[i + 1:]]


def test_an_evenly_tied_farm_holding_most_of_the_graph_stays_one_community() -> None:
    """Thirty accounts each weakly tied to all the others (a farm's shared devices and
    wallets) beside a tight ring of four: the farm holds most of the graph's weight and is
    one community, not Leiden's pairs and single accounts."""
    farm = [f"f{i:02d}" for i in range(30)]
    ring = [f"r{i}" for i in range(4)]
    links = pl.DataFrame(_clique(farm, 0.05) + _clique(ring, 1.0),
                         schema=["a", "b", "weight", "via"], orient="row").sort("a", "b")
    found = communities(links, sorted(farm + ring))
    assert len({found[a] for a in farm}) == 1
    assert found["f00"] != found["r0"]


def test_two_tight_groups_joined_by_one_weak_tie_stay_two() -> None:
    """Fifteen and fifteen accounts tightly tied among themselves, joined by one shared
    buyer: two communities."""
    left = [f"l{i:02d}" for i in range(15)]
    right = [f"q{i:02d}" for i in range(15)]
    rows = _clique(left, 1.0) + _clique(right, 1.0) + [("l00", "q00", 0.5, "buyer")]
    links = pl.DataFrame(rows, schema=["a", "b", "weight", "via"], orient="row").sort("a", "b")
    found = communities(links, sorted(left + right))
    assert len({found[a] for a in left}) == 1
    assert len({found[a] for a in right}) == 1
    assert found["l00"] != found["q00"]


def _family(write_records: WriteRecords, relative: bool) -> dict[str, float]:
    """A family of seven on one account and one phone cancels the grandmother's slot and
    books the same session for the grandfather 40 s later (booked before), or for a
    stranger with another phone."""
    rows = [booking(f"f{i}", account_id="family", patient_id_number=f"G{26864100 + i}",
                    patient_name="Li Hua", patient_phone="13800000000",
                    session_start=f"2025-03-{10 + i}T08:00:00+08:00",
                    created_at=f"2025-03-0{1 + i % 5}T10:00:00+08:00") for i in range(7)]
    rows.append(booking("held", account_id="family", patient_id_number="G26864100",
                        patient_name="Li Hua", patient_phone="13800000000",
                        session_start="2025-04-20T08:00:00+08:00",
                        created_at="2025-04-10T10:00:00+08:00",
                        released_at="2025-04-05T07:30:00+08:00",
                        status="cancelled", cancelled_at="2025-04-18T09:00:00+08:00"))
    rows.append(booking("swap", account_id="family",
                        patient_id_number="G26864101" if relative else "G29999999",
                        patient_name="Li Hua",
                        patient_phone="13800000000" if relative else "13912345678",
                        session_start="2025-04-20T08:00:00+08:00",
                        created_at="2025-04-18T09:00:40+08:00",
                        released_at="2025-04-05T07:30:00+08:00"))
    records = read_records(write_records(rows))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    return _codes(findings, "family")


def test_an_extended_familys_swap_between_its_own_members_is_no_hold(
        write_records: WriteRecords) -> None:
    """Seven relatives on one account: handing the grandmother's slot to the grandfather
    is no laundering pair; handing it to a stranger is one."""
    assert "launder_pair" not in _family(write_records, relative=True)
    assert _family(write_records, relative=False)["launder_pair"] >= 0.6


# Eighth round: generator D again (a centre's helpers, a desk alone, a hand-grabbing crowd).


def _centre(write_records: WriteRecords, patient: bool) -> dict[str, float]:
    """A community centre's helper books twenty elders (each with a phone of her own); the
    elders also come to clinics on a second helper's bookings. The helper cancels one
    elder's slot and books the same session for another elder 40 s later (somebody the
    clinics have seen twice), or for a stranger nobody ever saw."""
    rows = []
    for i in range(20):
        for visit in range(2):
            rows.append(booking(
                f"e{i}-{visit}", account_id="helper" if visit == 0 else "helper2",
                patient_id_number=f"G{26864100 + i}", patient_name="Li Hua",
                patient_phone=f"139{10000000 + i}",
                session_start=f"2025-0{3 + visit}-{10 + i % 15}T08:00:00+08:00",
                created_at=f"2025-0{2 + visit}-{10 + i % 15}T10:00:00+08:00"))
    rows.append(booking("held", account_id="helper", patient_id_number="G26864100",
                        patient_name="Li Hua", patient_phone="13910000000",
                        session_start="2025-06-20T08:00:00+08:00",
                        created_at="2025-06-10T10:00:00+08:00",
                        released_at="2025-06-05T07:30:00+08:00",
                        status="cancelled", cancelled_at="2025-06-18T09:00:00+08:00"))
    rows.append(booking("swap", account_id="helper",
                        patient_id_number="G26864105" if patient else "G29999999",
                        patient_name="Li Hua",
                        patient_phone="13910000005" if patient else "13912345678",
                        session_start="2025-06-20T08:00:00+08:00",
                        created_at="2025-06-18T09:00:40+08:00",
                        released_at="2025-06-05T07:30:00+08:00"))
    records = read_records(write_records(rows))
    findings, _pairs = run_rules(records.bookings, records.payments, None, Thresholds())
    return _codes(findings, "helper")


def test_a_helpers_slot_handed_from_one_patient_to_another_is_no_hold(
        write_records: WriteRecords) -> None:
    """Handing an elder's slot to another elder the clinics know is no laundering pair, on
    an account of twenty people; handing it to a stranger is one."""
    assert "launder_pair" not in _centre(write_records, patient=True)
    assert _centre(write_records, patient=False)["launder_pair"] >= 0.6


def _account_findings(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [("account", a, code, s, "") for a, code, s in rows],
        schema=FINDING_SCHEMA, orient="row")


def test_a_desk_selling_releases_is_a_ring_of_its_own() -> None:
    """A desk whose release-time bookings one wallet paid for, put by the link graph into
    a ring with two helpers whose elders walked in at it, is taken out into a ring of its
    own; with accounts that caught its freed holds it keeps them."""
    findings = _account_findings([("desk", "staff_release_wallet", 0.9)])
    ring_of = {"desk": 1, "helper": 1, "helper2": 1}
    flagged = {"desk", "helper", "helper2"}
    empty = pl.DataFrame(schema={"a": pl.String, "b": pl.String, "weight": pl.Float64,
                                 "via": pl.String})
    rings = desk_operations(findings, empty, ring_of, flagged)
    assert rings == {ring_of["desk"]} and ring_of["desk"] != 1
    assert ring_of["helper"] == ring_of["helper2"] == 1
    ties = pl.DataFrame({"a": ["desk"], "b": ["catcher"], "weight": [1.0],
                         "via": ["insider"]})
    ring_of = {"desk": 1, "catcher": 1}
    assert desk_operations(findings, ties, ring_of, {"desk", "catcher"}) == {1}
    assert ring_of == {"desk": 1, "catcher": 1}


def test_racers_of_the_same_doctors_from_one_place_are_one_crowd(
        write_records: WriteRecords) -> None:
    """Four flagged racers, each booking strangers 4 s after release from its own home
    and now and then from the hospital's Wi-Fi, on the same two doctors: one crowd. A
    fifth on the same Wi-Fi racing other doctors, and a sixth racing the same doctors from
    home only, are not in it."""
    rows = []
    plan = {"g1": ("D1", "D2"), "g2": ("D1", "D2"), "g3": ("D2", "D1"), "g4": ("D1", "D2"),
            "other": ("D7", "D8"), "home": ("D1", "D2")}
    for n, (account, doctors) in enumerate(plan.items()):
        for i in range(8):
            rows.append(booking(
                f"{account}-{i}", account_id=account, doctor_id=doctors[i % 2],
                patient_id_number=f"G{26800000 + 100 * n + i}", patient_name="Li Hua",
                ip="10.9.9.9" if i == 0 and account != "home" else f"60.1.{n}.1",
                session_start=f"2025-03-{10 + i}T08:00:00+08:00",
                created_at=f"2025-02-{10 + i}T07:30:04+08:00",
                released_at=f"2025-02-{10 + i}T07:30:00+08:00"))
    records = read_records(write_records(rows))
    findings = _account_findings([(a, "release_strangers", 0.3) for a in plan])
    crowds = crowd_operations(findings, without_platform_timing(records.bookings), {},
                              set(plan), Thresholds())
    assert crowds == [{"g1", "g2", "g3", "g4"}]

"""The third generator writes the records contract, the same files for the same seed, and a
truth whose every ring kind and look-alike kind is present and whose every entity occurs."""

from __future__ import annotations

import csv
import datetime as dt
import pathlib
from collections.abc import Iterator

import pytest
from stdnum.cn import ric

from tests.investigation import thirdgen

# One group: the year below is generated once, on one worker, for every test reading it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("thirdgen-year")]

SCALE = 0.2

# Where each kind of labelled entity can be found in the records.
ENTITY_COLUMNS = {
    "account": (("bookings", "account_id"), ("access", "account_id")),
    "patient": (("bookings", "patient_id_number"),),
    "phone": (("bookings", "patient_phone"),),
    "ip": (("bookings", "ip"), ("access", "ip")),
    "device": (("bookings", "device_id"), ("access", "device_id")),
    "payer": (("payments", "payer_account"),),
}


def read(path: pathlib.Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    out = tmp_path_factory.mktemp("thirdgen")
    counts = thirdgen.generate(out, seed=7, scale=SCALE)
    assert counts["bookings"] > 0
    yield out


def test_the_same_seed_writes_byte_identical_files(records: pathlib.Path,
                                                   tmp_path: pathlib.Path) -> None:
    again = thirdgen.generate(tmp_path, seed=7, scale=SCALE)
    for name in ("bookings", "payments", "access", "labels", "rings"):
        assert (tmp_path / f"{name}.csv").read_bytes() == (records / f"{name}.csv").read_bytes()
    assert again["bookings"] == len(read(records / "bookings.csv")[1])


def test_another_seed_writes_another_world(records: pathlib.Path, tmp_path: pathlib.Path) -> None:
    thirdgen.generate(tmp_path, seed=8, scale=0.05)
    assert (tmp_path / "bookings.csv").read_bytes() != (records / "bookings.csv").read_bytes()


@pytest.mark.parametrize(("name", "columns"), [
    ("bookings", thirdgen.BOOKING_COLUMNS),
    ("payments", thirdgen.PAYMENT_COLUMNS),
    ("access", thirdgen.ACCESS_COLUMNS),
    ("labels", thirdgen.LABEL_COLUMNS),
])
def test_every_file_has_the_documented_columns_and_few_ragged_rows(
        records: pathlib.Path, name: str, columns: tuple[str, ...]) -> None:
    header, rows = read(records / f"{name}.csv")
    assert tuple(header) == columns
    ragged = [row for row in rows if len(row) != len(columns)]
    assert all(len(row) == len(columns) + 1 for row in ragged)
    assert len(ragged) <= 5
    assert len(rows) > 100


def test_timestamps_are_iso_with_an_offset_except_for_a_little_dirt(
        records: pathlib.Path) -> None:
    header, rows = read(records / "bookings.csv")
    created = header.index("created_at")
    with_offset = naive = broken = 0
    for row in rows:
        try:
            moment = dt.datetime.fromisoformat(row[created].replace("Z", "+00:00"))
        except ValueError:
            broken += 1
            continue
        if moment.tzinfo is None:
            naive += 1
        else:
            with_offset += 1
    assert with_offset > 0.9 * len(rows)
    assert naive > 0
    assert 0 < broken < 0.01 * len(rows)


def test_bookings_carry_the_statuses_and_channels_of_the_contract(records: pathlib.Path) -> None:
    header, rows = read(records / "bookings.csv")
    statuses = {row[header.index("status")] for row in rows}
    channels = {row[header.index("channel")] for row in rows}
    assert statuses - {""} == {"booked", "paid", "cancelled", "checked_in", "no_show",
                               "refunded"}
    assert channels - {""} == {"app", "web", "wechat", "window", "phone", "other"}


def test_every_ring_kind_is_planted_with_members_in_the_records(records: pathlib.Path) -> None:
    _, rings = read(records / "rings.csv")
    _, labels = read(records / "labels.csv")
    kinds = {row[1] for row in rings}
    assert kinds == set(thirdgen.RING_KINDS)
    accounts = {row[2] for row in labels if row[0] == "account" and row[2]}
    assert {row[0] for row in rings} <= accounts


def test_every_look_alike_kind_is_present_and_never_a_ring_member(
        records: pathlib.Path) -> None:
    _, labels = read(records / "labels.csv")
    roles = {row[3] for row in labels if not row[2]}
    for kind in thirdgen.LOOKALIKE_KINDS:
        assert f"hard_case:{kind}" in roles, kind
    assert all(row[3].startswith("hard_case:") for row in labels if not row[2])
    assert not any(row[3].startswith("hard_case:") for row in labels if row[2])


def test_every_labelled_entity_occurs_in_the_records(records: pathlib.Path) -> None:
    seen: dict[tuple[str, str], set[str]] = {}
    for name in ("bookings", "payments", "access"):
        header, rows = read(records / f"{name}.csv")
        for etype, places in ENTITY_COLUMNS.items():
            for where, column in places:
                if where == name:
                    k = header.index(column)
                    seen.setdefault((etype, where), set()).update(
                        row[k] for row in rows if len(row) > k)
    _, labels = read(records / "labels.csv")
    missing = [row for row in labels
               if not any(row[1] in seen.get((row[0], where), set())
                          for where, _ in ENTITY_COLUMNS[row[0]])]
    assert missing == []


def test_honest_typos_fail_the_checksum_and_fabricated_identities_can_pass_it(
        records: pathlib.Path) -> None:
    _, labels = read(records / "labels.csv")
    typos = [row[1] for row in labels if row[3] == "hard_case:id_typo"]
    assert typos and not any(ric.is_valid(number) for number in typos)
    fabricated = [row[1] for row in labels if row[3] == "fake_identity"]
    assert any(ric.is_valid(number) for number in fabricated)
    assert any(not ric.is_valid(number) for number in fabricated)


def test_a_buyer_identity_is_booked_by_a_ring_but_labelled_genuine(
        records: pathlib.Path) -> None:
    header, rows = read(records / "bookings.csv")
    _, labels = read(records / "labels.csv")
    ring_accounts = {row[1] for row in labels if row[0] == "account" and row[2]}
    buyers = {row[1] for row in labels if row[0] == "patient"
              and row[3] == "hard_case:scalper_customer"}
    account, patient = header.index("account_id"), header.index("patient_id_number")
    assert any(row[account] in ring_accounts and row[patient] in buyers for row in rows)


def test_scale_must_be_positive(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        thirdgen.generate(tmp_path, scale=0)

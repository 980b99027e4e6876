"""Replaying records through the monitor: what the converted events carry (and never carry),
and what the scenarios raise on a labelled synthetic year."""

from __future__ import annotations

import pathlib
import zoneinfo

import pytest

from fairslot.investigation.evaluate import read_labels
from fairslot.investigation.records import read_records
from fairslot.investigation.synth import write_synthetic
from fairslot.monitoring.events import MonitorEvent, encode
from fairslot.monitoring.replay import Pseudonyms, evaluate, events_from_records, replay
from tests.monitoring.conftest import settings

ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")

BOOKINGS = """booking_id,created_at,account_id,patient_id_number,patient_name,department,\
doctor_id,session_start,released_at,channel,ip,device_id,status,cancelled_at
b1,2025-03-01T07:30:25+08:00,a1,110101199003071233,张伟,心内科,d1,2025-03-16T08:00:00+08:00,\
2025-03-01T07:30:00+08:00,app,198.51.100.1,dev1,paid,
b2,2025-03-01T07:30:00.400+08:00,a2,11010119900307123X,561,心内科,d1,\
2025-03-16T08:00:00+08:00,2025-03-01T07:30:00+08:00,window,198.51.100.2,dev2,cancelled,\
2025-03-02T09:00:00+08:00
"""
PAYMENTS = """payment_id,booking_id,paid_at,payer_account,amount
pay1,b1,2025-03-01T07:35:00+08:00,alipay:GangPay01,50
"""
ACCESS = """ts,ip,account_id,device_id,method,path,status,user_agent
2025-03-01T07:30:12+08:00,198.51.100.1,a1,dev1,GET,/doctors/d1,200,Mozilla/5.0
2025-03-01T07:30:25+08:00,198.51.100.1,a1,dev1,POST,/api/bookings,201,Mozilla/5.0
2025-03-01T07:30:00.390+08:00,198.51.100.2,a2,dev2,POST,/api/bookings,201,okhttp/4.9
"""


@pytest.fixture
def records(tmp_path: pathlib.Path) -> pathlib.Path:
    for name, text in (("bookings", BOOKINGS), ("payments", PAYMENTS), ("access", ACCESS)):
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    return tmp_path


def test_records_become_the_events_the_platform_would_publish(records: pathlib.Path) -> None:
    events = events_from_records(read_records(records, zone=ZONE), Pseudonyms(b"k" * 32))
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    by_id = {e.id: e for e in events}
    b1, b2 = by_id["b:b1"], by_id["b:b2"]
    assert b1.detail == {"screen_age_s": 13.0}
    assert b2.detail == {"screen_age_s": 0.0, "no_screen": True}
    assert b1.ts - (b1.release_ts or 0) == pytest.approx(25.0)
    assert (b1.channel, b2.channel) == ("app", "desk")
    assert by_id["c:b2"].kind == "booking.cancelled"
    links = [e for e in events if e.kind == "patient.linked"]
    assert {(e.account, e.detail["id_valid"], e.detail["name_plausible"]) for e in links} == {
        ("a1", True, True), ("a2", False, False)}
    paid = by_id["p:pay1"]
    assert (paid.account, paid.patient, paid.session) == (b1.account, b1.patient, b1.session)


def test_no_event_carries_an_id_number_a_name_or_a_payer_in_clear(records: pathlib.Path
                                                                  ) -> None:
    events = events_from_records(read_records(records, zone=ZONE), Pseudonyms(b"k" * 32))
    text = "\n".join(encode(e) for e in events)
    for secret in ("110101199003071233", "11010119900307123X", "张伟", "GangPay01",
                   "gangpay01", "561"):
        assert secret not in text


def test_the_same_payer_typed_differently_is_one_payer() -> None:
    pseudonyms = Pseudonyms(b"k" * 32)
    assert pseudonyms.payer("alipay:GangPay01") == pseudonyms.payer(" alipay:gangpay01")


# The two tests reading this year share one xdist group, so it is written once.
SYNTHETIC_YEAR = pytest.mark.xdist_group("monitor-synthetic-year")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("synth")
    write_synthetic(out, seed=2, scale=0.5, zone=ZONE)
    return out


@pytest.fixture(scope="module")
def year_events(synthetic: pathlib.Path) -> tuple[list[MonitorEvent], Pseudonyms]:
    """The year read and converted once for both tests: reading 70,000 events is a fifth
    of what each test did, and both only read the list (each replays into its own store)."""
    pseudonyms = Pseudonyms(b"k" * 32)
    return events_from_records(read_records(synthetic, zone=ZONE), pseudonyms), pseudonyms


@pytest.mark.slow
@SYNTHETIC_YEAR
def test_a_labelled_year_raises_the_alert_of_every_tactic_its_rings_use(
        synthetic: pathlib.Path, year_events: tuple[list[MonitorEvent], Pseudonyms]) -> None:
    events, pseudonyms = year_events
    s = settings()
    result = replay(events, s)
    quality = evaluate(result.alerts, read_labels(synthetic / "labels.csv"), events,
                       pseudonyms, s)
    rings = {t.tactic: t.ring_recall for t in quality.tactics}
    # Every ring doing these is named by an alert of a scenario answering the tactic.
    for tactic in ("T1", "T2", "T3", "T4", "T6", "T8", "T9"):
        assert rings[tactic] == 1.0, (tactic, quality.as_dict())
    entities = {t.tactic: t.recall for t in quality.tactics}
    assert entities["T1"] == entities["T4"] == 1.0
    assert rings["T7"] is None  # no ring in these records fans out from one IP
    assert quality.genuine_patients > 2000
    assert quality.genuine_per_10k <= 1.0, quality.genuine_examples
    assert quality.hard_case_alerts == {}


@pytest.mark.slow
@SYNTHETIC_YEAR
def test_replaying_duplicated_rows_changes_no_alert(
        year_events: tuple[list[MonitorEvent], Pseudonyms]) -> None:
    events, _pseudonyms = year_events
    once = replay(events, settings(), batch=5000)
    bookings = [e for e in events if e.kind.startswith("booking.")]
    twice = replay(sorted([*events, *bookings[::3]], key=lambda e: e.ts), settings(),
                   batch=5000)

    def view(alerts: list) -> list:  # type: ignore[type-arg]
        return sorted((a.scenario, str(a.entity), a.severity, a.figures, a.first_seen,
                       a.last_seen, [s["id"] for s in a.samples]) for a in alerts)

    assert view(twice.alerts) == view(once.alerts)


def test_a_records_slot_freed_at_reaches_the_booking_event(tmp_path: pathlib.Path) -> None:
    # The optional column: b2 took a slot 0.4 s after it re-opened, days after the release.
    bookings = """booking_id,created_at,account_id,patient_id_number,department,doctor_id,\
session_start,released_at,channel,status,slot_freed_at
b1,2025-03-01T07:30:25+08:00,a1,110101199003071233,心内科,d1,2025-03-16T08:00:00+08:00,\
2025-03-01T07:30:00+08:00,app,paid,
b2,2025-03-04T10:00:00.400+08:00,a2,110101199003071233,心内科,d1,2025-03-16T08:00:00+08:00,\
2025-03-01T07:30:00+08:00,app,paid,2025-03-04T10:00:00+08:00
"""
    (tmp_path / "bookings.csv").write_text(bookings, encoding="utf-8")
    (tmp_path / "payments.csv").write_text("payment_id,booking_id,paid_at,payer_account,"
                                           "amount\n", encoding="utf-8")
    events = events_from_records(read_records(tmp_path, zone=ZONE), Pseudonyms(b"k" * 32))
    by_id = {e.id: e for e in events}
    assert "freed_ts" not in by_id["b:b1"].detail
    b2 = by_id["b:b2"]
    assert b2.ts - b2.detail["freed_ts"] == pytest.approx(0.4)

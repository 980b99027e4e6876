"""Each scenario fires on what a ring does and stays quiet on what patients, families and
the platform's own channels do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from fairslot.monitoring.engine import Engine
from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.scenarios import (
    SCENARIO_NAMES,
    Entity,
    Finding,
    StaticBlacklist,
    build_scenarios,
)
from fairslot.monitoring.windows import MemoryWindows
from tests.monitoring.conftest import T0, ev, settings


def run(events: Sequence[MonitorEvent], **overrides: Any) -> list[Finding]:
    blacklist = overrides.pop("blacklist", None)
    engine = Engine(build_scenarios(settings(**overrides), blacklist), MemoryWindows())
    return engine.run(sorted(events, key=lambda e: e.ts))


def fired(findings: Sequence[Finding], scenario: str) -> set[Entity]:
    return {f.entity for f in findings if f.scenario == scenario}


# --- traffic -------------------------------------------------------------------------

def test_an_account_past_its_request_rate_is_flagged_and_one_under_it_is_not() -> None:
    bot = [ev("access", n * 0.4, account="a1", ip="198.51.100.7") for n in range(121)]
    person = [ev("access", n * 0.5, account="a2", ip="198.51.100.8") for n in range(119)]
    findings = run(bot + person)
    assert fired(findings, "rate_account") == {Entity("account", "a1")}
    assert fired(findings, "rate_ip_prefix") == set()


def test_a_prefix_is_counted_across_its_addresses() -> None:
    events = [ev("access", n * 0.02, ip=f"203.0.113.{n % 200}") for n in range(1500)]
    assert fired(run(events), "rate_ip_prefix") == {Entity("ip_prefix", "203.0.113.0/24")}


def test_kiosks_and_the_hospitals_network_never_count_as_a_rate() -> None:
    kiosk = [ev("access", n * 0.01, account="k1", channel="kiosk") for n in range(500)]
    ward = [ev("access", n * 0.01, account="w1", ip="10.20.0.5") for n in range(500)]
    findings = run(kiosk + ward, monitor_platform_networks=["10.20.0.0/16"])
    assert findings == []


def test_a_requester_the_guard_keeps_refusing_is_flagged_but_load_shedding_is_not() -> None:
    refused = [ev("guard.deny", n, ip="198.51.100.9", detail={"reason": "rate_limited",
                                                              "key": "ip", "group": "booking"})
               for n in range(60)]
    shed = [ev("guard.deny", n, ip="198.51.100.10", detail={"reason": "overloaded"})
            for n in range(100)]
    findings = run(refused + shed)
    assert fired(findings, "guard_refusals") == {Entity("ip", "198.51.100.9")}


def test_a_burst_of_registrations_after_a_quiet_day_is_a_surge() -> None:
    quiet = [ev("account.registered", -86_000 + n * 3600, account=f"q{n}") for n in range(20)]
    burst = [ev("account.registered", n * 10, account=f"b{n}", ip=f"198.51.{n}.1")
             for n in range(40)]
    findings = run(quiet + burst)
    assert fired(findings, "surge_registrations") == {Entity("route_group", "registration")}


def test_registrations_as_busy_all_day_as_now_are_no_surge() -> None:
    steady = [ev("account.registered", -86_000 + n * 15, account=f"s{n}")
              for n in range(86_000 // 15)]
    assert fired(run(steady), "surge_registrations") == set()


# --- fan-out ---------------------------------------------------------------------------

def test_one_ip_booking_for_many_patients_within_the_hour_is_flagged() -> None:
    events = [ev("booking.created", n * 300, ip="198.51.100.20", patient=f"p{n}",
                 account=f"a{n % 3}") for n in range(8)]
    findings = run(events)
    assert fired(findings, "fanout_ip") == {Entity("ip", "198.51.100.20")}
    finding = next(f for f in findings if f.scenario == "fanout_ip")
    assert finding.figures["patients"] == 8
    assert set(finding.members) == {f"p{n}" for n in range(8)}


def test_a_carriers_nat_with_an_account_per_patient_is_not_a_fanout() -> None:
    events = [ev("booking.created", n * 60, ip="100.64.0.1", patient=f"p{n}",
                 account=f"a{n}") for n in range(30)]
    events += [ev("booking.created", n * 60, device="clinic-terminal", patient=f"q{n}",
                  account=f"elder{n}") for n in range(30)]
    assert run(events) == []


def test_the_same_patients_spread_over_hours_from_one_ip_are_not_flagged() -> None:
    events = [ev("booking.created", n * 900, ip="198.51.100.21", patient=f"p{n}")
              for n in range(8)]
    assert fired(run(events), "fanout_ip") == set()


def test_a_desk_booking_for_many_patients_is_not_a_fanout() -> None:
    events = [ev("booking.created", n * 60, ip="198.51.100.22", patient=f"p{n}",
                 account="clerk", device="desk-1", channel="desk") for n in range(30)]
    assert run(events) == []


def test_a_payer_paying_for_more_patients_than_a_household_is_flagged() -> None:
    hub = [ev("booking.paid", n * 86_400, payer="hub", patient=f"p{n}", account=f"a{n % 3}")
           for n in range(10)]
    family = [ev("booking.paid", n * 86_400, payer="family", patient=f"f{n % 6}")
              for n in range(40)]
    findings = run(hub + family)
    assert fired(findings, "payer_fanout") == {Entity("payer", "hub")}


# --- timing ----------------------------------------------------------------------------

def test_an_account_confirming_twice_faster_than_a_person_reads_is_flagged() -> None:
    fast = [ev("booking.created", n * 3600, account="bot", device="d1",
               detail={"screen_age_s": 1.6}) for n in range(2)]
    once = [ev("booking.created", 0, account="quick", detail={"screen_age_s": 1.6})]
    slow = [ev("booking.created", n * 3600, account="slow", detail={"screen_age_s": 4.0})
            for n in range(5)]
    findings = run(fast + once + slow)
    assert fired(findings, "fast_action") == {Entity("account", "bot"), Entity("device", "d1")}


def test_taking_slots_within_two_seconds_of_release_twice_is_flagged() -> None:
    release = T0
    snipes = [ev("booking.created", n * 86_400 + 0.3, account=f"lent{n}", device="broker-phone",
                 release_ts=release + n * 86_400) for n in range(2)]
    humans = [ev("booking.created", n * 86_400 + 9.0, account="fan", device="fan-phone",
                 release_ts=release + n * 86_400) for n in range(5)]
    findings = run(snipes + humans)
    assert fired(findings, "release_snipe") == {Entity("device", "broker-phone")}


def test_taking_a_reopened_slot_within_two_seconds_is_measured_from_its_reopening() -> None:
    # Released hours before; each slot taken 0.3 s after another account's booking of it
    # was cancelled (a poller), against a patient who happened on a freed slot a minute on.
    release = T0 - 6 * 3600
    poller = [ev("booking.created", n * 3600 + 0.3, account="poller", device="p-dev",
                 release_ts=release, detail={"freed_ts": T0 + n * 3600})
              for n in range(2)]
    patient = [ev("booking.created", n * 3600 + 60, account="mum", device="m-dev",
                  release_ts=release, detail={"freed_ts": T0 + n * 3600})
               for n in range(3)]
    # A freeing before the release (a slot never re-opened after it) does not move the mark.
    stale = [ev("booking.created", n * 3600 + 900, account="late", device="l-dev",
                release_ts=T0 + n * 3600 + 899, detail={"freed_ts": T0 - 86_400})
             for n in range(2)]
    findings = run(poller + patient + stale)
    snipes = [f for f in findings if f.scenario == "release_snipe"]
    assert {f.entity for f in snipes} == {Entity("account", "poller"), Entity("device", "p-dev"),
                                          Entity("account", "late"), Entity("device", "l-dev")}
    reopened = [f for f in snipes if f.entity == Entity("account", "poller")]
    assert reopened[-1].figures["from"] == "reopened"
    assert reopened[-1].figures["last_s"] == pytest.approx(0.3)
    assert "re-opened" in reopened[-1].summary
    late = [f for f in snipes if f.entity == Entity("account", "late")]
    assert late[-1].figures["from"] == "release"


def test_without_a_reopening_the_same_bookings_are_no_snipe() -> None:
    # The poller's bookings as a platform publishing only the release shows them.
    release = T0 - 6 * 3600
    poller = [ev("booking.created", n * 3600 + 0.3, account="poller", device="p-dev",
                 release_ts=release) for n in range(2)]
    assert fired(run(poller), "release_snipe") == set()


def test_booking_screens_collected_before_release_for_several_targets_are_flagged() -> None:
    release = T0 + 60
    bot = [ev("screen.booking", 48 + n, account="bot", session=f"s{n}", patient="p1",
              release_ts=release) for n in range(3)]
    reloads = [ev("screen.booking", 40 + n, account="eager", session="s9", patient="p2",
                  release_ts=release) for n in range(6)]
    findings = run(bot + reloads)
    assert fired(findings, "early_tokens") == {Entity("account", "bot")}


def test_waitlist_offers_paid_before_anyone_could_read_them_are_flagged() -> None:
    fast = [ev("booking.paid", n * 86_400, account="poller", channel="app",
               detail={"since_offer_s": 2.0}) for n in range(2)]
    person = [ev("booking.paid", n * 86_400, account="mum", channel="app",
                 detail={"since_offer_s": 95.0}) for n in range(2)]
    assert fired(run(fast + person), "waitlist_fast_accept") == {Entity("account", "poller")}


# --- rings -----------------------------------------------------------------------------

def test_a_cancel_and_rebook_for_another_patient_within_seconds_is_laundering() -> None:
    events = [
        ev("booking.cancelled", 0, session="s1", account="holder", patient="fake",
           booking="b1"),
        ev("booking.created", 4.2, session="s1", account="seller", patient="buyer",
           booking="b2"),
    ]
    findings = run(events)
    (finding,) = [f for f in findings if f.scenario == "launder"]
    assert finding.entity == Entity("account", "holder")
    assert Entity("account", "seller") in finding.related
    assert Entity("patient", "buyer") in finding.related
    assert finding.figures["gap_s"] == pytest.approx(4.2)


def test_laundering_is_seen_when_the_cancellation_reaches_the_monitor_last() -> None:
    booking = ev("booking.created", 4.2, session="s1", account="seller", patient="buyer")
    cancel = ev("booking.cancelled", 0, session="s1", account="holder", patient="fake")
    engine = Engine(build_scenarios(settings()), MemoryWindows())
    assert engine.run([booking]) == []
    (finding,) = [f for f in engine.run([cancel]) if f.scenario == "launder"]
    assert finding.entity == Entity("account", "holder")
    assert finding.figures["gap_s"] == pytest.approx(4.2)


def test_a_threshold_crossed_with_a_late_event_is_still_seen() -> None:
    # The monitor holding payment 3 died; the others were processed before it came back.
    events = [ev("booking.paid", n, payer="hub", patient=f"p{n}") for n in range(10)]
    engine = Engine(build_scenarios(settings()), MemoryWindows())
    assert engine.run(events[:3] + events[4:]) == []
    assert fired(engine.run([events[3]]), "payer_fanout") == {Entity("payer", "hub")}


@pytest.mark.parametrize("second", [
    {"patient": "fake", "account": "holder"},                       # rebooked for itself
    {"patient": "buyer", "account": "x", "channel": "waitlist"},    # the waitlist's offer
    {"patient": "buyer", "account": "x", "ts": 45.0},               # long after
    {"patient": "buyer", "account": "x", "session": "s2"},          # another session
    {"patient": "brother", "account": "holder"},    # the family passes its slot within
    {"patient": "buyer", "account": "x", "cancel_channel": "desk"},  # a stranger refreshing
])
def test_what_follows_a_cancellation_innocently_is_not_laundering(second: dict[str, Any]
                                                                   ) -> None:
    ts = second.pop("ts", 3.0)
    cancel_channel = second.pop("cancel_channel", "app")
    events = [
        ev("booking.cancelled", 0, session="s1", account="holder", patient="fake",
           channel=cancel_channel),
        ev("booking.created", ts, **{"session": "s1", **second}),
    ]
    assert fired(run(events), "launder") == set()


@pytest.mark.parametrize(("cancelled", "booked", "laundered"), [
    ({"slot": 7}, {"slot": 7, "freed_ts": T0}, True),     # the platform: the very slot
    ({"slot": 7}, {"slot": 3}, False),                    # a slot free since its release
    ({"slot": 7}, {"slot": 3, "freed_ts": T0 - 600}, False),  # one freed ten minutes ago
    ({}, {"freed_ts": T0 + 0.004}, True),                 # records: re-opened at the cancel
    ({}, {"freed_ts": T0 - 600}, False),                  # records: re-opened by another
])
def test_the_booking_must_take_the_slot_the_cancellation_let_go(
        cancelled: dict[str, Any], booked: dict[str, Any], laundered: bool) -> None:
    """A family booking a half-empty session seconds after a stranger cancelled in it
    takes a slot that was free anyway: nothing was handed on."""
    events = [
        ev("booking.cancelled", 0, session="s1", account="holder", patient="fake",
           detail=cancelled),
        ev("booking.created", 3.0, session="s1", account="x", patient="buyer", detail=booked),
    ]
    expected = {Entity("account", "holder")} if laundered else set()
    assert fired(run(events), "launder") == expected


def test_one_identity_booked_in_four_departments_within_two_weeks_is_flagged() -> None:
    spread = [ev("booking.created", n * 86_400, patient="fake", department=f"d{n}",
                 account="a1") for n in range(4)]
    chronic = [ev("booking.created", n * 86_400, patient="gran", department=f"c{n % 3}")
               for n in range(10)]
    assert fired(run(spread + chronic), "identity_spread") == {Entity("patient", "fake")}



def _booked(patient: str, day: int, department: str, after: float) -> MonitorEvent:
    """A booking for ``patient`` taken ``after`` seconds after its slot opened on ``day``."""
    return ev("booking.created", day * 86_400 + after, patient=patient, department=department,
              account=f"acc-{patient}", release_ts=T0 + day * 86_400)


def test_three_departments_each_taken_the_instant_the_slot_opened_are_flagged() -> None:
    held = [_booked("held", day, f"d{day}", 0.4 + day / 10) for day in range(3)]
    findings = run(held)
    assert fired(findings, "identity_spread") == {Entity("patient", "held")}
    spread = next(f for f in findings if f.scenario == "identity_spread")
    assert spread.figures["rule"] == "departments_and_speed"
    assert spread.figures["fast_departments"] == 3


@pytest.mark.parametrize("afters", [
    (40.0, 95.0, 300.0),  # three conditions, booked at a person's pace
    (1.2, 95.0, 300.0),   # one of them caught the instant it opened, as luck has it
])
def test_a_patient_seeing_three_departments_at_a_persons_pace_is_not_flagged(
        afters: tuple[float, ...]) -> None:
    frail = [_booked("frail", day, f"d{day}", after) for day, after in enumerate(afters)]
    # Two departments, both taken the instant they opened: still not three.
    quick = [_booked("quick", day, f"d{day % 2}", 0.5) for day in range(4)]
    assert fired(run(frail + quick), "identity_spread") == set()


def test_speed_adds_nothing_when_turned_off() -> None:
    held = [_booked("held", day, f"d{day}", 0.4) for day in range(3)]
    assert fired(run(held, monitor_spread_fast_departments=4), "identity_spread") == set()


def _release(session: str, day: int, accounts: dict[str, float]) -> list[MonitorEvent]:
    release = T0 + day * 86_400
    return [ev("booking.created", day * 86_400 + after, account=account, session=session,
               release_ts=release) for account, after in accounts.items()]


def test_accounts_booking_together_release_after_release_are_in_lockstep() -> None:
    crew = {"c1": 3.1, "c2": 3.6, "c3": 4.4}
    events = [e for day in range(3) for e in _release(f"s{day}", day, crew)]
    # A stranger meets the crew once, as strangers do.
    events += _release("s0", 0, {"stranger": 3.9})
    findings = run(events)
    flagged = fired(findings, "lockstep")
    assert flagged >= {Entity("account", "c3")}
    assert Entity("account", "stranger") not in flagged
    assert all(e.id.startswith("c") for f in findings if f.scenario == "lockstep"
               for e in f.related)


def test_two_shared_releases_are_not_yet_lockstep() -> None:
    crew = {"c1": 3.1, "c2": 3.6}
    events = [e for day in range(2) for e in _release(f"s{day}", day, crew)]
    assert fired(run(events), "lockstep") == set()



def test_a_crowd_whose_members_share_only_two_releases_each_is_named_as_a_group() -> None:
    # A session of a few slots lets a different part of the crowd in each day: no two
    # accounts are together on three releases, but each meets the same faces twice.
    days = [["c1", "c2", "c3", "c4"], ["c5", "c6", "c7", "c8"], ["c1", "c2", "c3", "c4"],
            ["c5", "c6", "c7", "c8"]]
    events = [e for day, crowd in enumerate(days)
              for e in _release(f"s{day}", day, {a: 1.0 + n / 2 for n, a in enumerate(crowd)})]
    findings = run(events)
    named = {e for f in findings if f.scenario == "lockstep" for e in (f.entity, *f.related)}
    assert named == {Entity("account", f"c{n}") for n in range(1, 9)}
    # Judged as a group, not pair by pair.
    assert all("group" in f.figures and "partners" not in f.figures
               for f in findings if f.scenario == "lockstep")
    assert fired(run(events, monitor_lockstep_group=0), "lockstep") == set()


def test_a_few_relatives_booking_together_twice_are_not_a_group() -> None:
    # Three accounts of one family (and a stranger once): each meets two others twice.
    family = {"f1": 1.5, "f2": 2.0, "f3": 3.5}
    events = [e for day in range(2) for e in _release(f"s{day}", day, family)]
    events += _release("s1", 1, {"stranger": 2.2})
    assert fired(run(events), "lockstep") == set()


def test_a_moment_everybody_shares_says_nothing_about_who_is_together() -> None:
    crowd = {f"fan{n}": 1.0 + n / 100 for n in range(60)}
    events = [e for day in range(4) for e in _release(f"s{day}", day, crowd)]
    assert fired(run(events), "lockstep") == set()


# --- identities ------------------------------------------------------------------------

def test_an_account_trying_three_made_up_identities_is_flagged() -> None:
    farm = [ev("identity.rejected", n * 30, account="farm", device="f1",
               detail={"reason": "invalid_id_number", "tried": f"t{n}", "name_tried": f"n{n}"})
            for n in range(3)]
    findings = run(farm)
    assert fired(findings, "bad_identities") == {Entity("account", "farm"),
                                                  Entity("device", "f1")}


def test_a_person_mistyping_a_relatives_number_three_times_is_not_flagged() -> None:
    typos = [ev("identity.rejected", n * 30, account="son",
                detail={"reason": "identity_not_verified", "tried": f"t{n}",
                        "name_tried": "mother"}) for n in range(3)]
    assert fired(run(typos), "bad_identities") == set()


def test_activity_of_a_blacklisted_payer_is_flagged() -> None:
    blacklist = StaticBlacklist({Entity("payer", "gang"): "convicted ring, 2025"})
    events = [ev("booking.paid", 0, payer="gang", patient="p1"),
              ev("booking.paid", 1, payer="clean", patient="p2")]
    findings = run(events, blacklist=blacklist)
    (finding,) = [f for f in findings if f.scenario == "blacklisted"]
    assert finding.entity == Entity("payer", "gang")
    assert finding.figures["listed_for"] == "convicted ring, 2025"


# --- settings --------------------------------------------------------------------------

def test_an_unknown_scenario_in_the_disabled_list_stops_the_monitor() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenarios(settings(monitor_disabled_scenarios=["lauder"]))


def test_a_disabled_scenario_does_not_run() -> None:
    events = [ev("booking.cancelled", 0, session="s1", account="h", patient="x"),
              ev("booking.created", 1, session="s1", account="h", patient="y")]
    assert fired(run(events, monitor_disabled_scenarios=["launder"]), "launder") == set()
    scenarios = build_scenarios(settings(monitor_disabled_scenarios=["rate_account"]),
                                StaticBlacklist())
    names = {n for sc in scenarios for n in sc.scenario_names()}
    assert names == set(SCENARIO_NAMES) - {"rate_account"}


def test_every_rate_can_be_turned_off_at_once() -> None:
    """What docs/performance.md suggests for a busy platform: the monitor still starts."""
    rates = ["rate_ip_prefix", "rate_account", "rate_device"]
    scenarios = build_scenarios(settings(monitor_disabled_scenarios=rates),
                                StaticBlacklist())
    names = {n for sc in scenarios for n in sc.scenario_names()}
    assert names == set(SCENARIO_NAMES) - set(rates)


def test_thresholds_come_from_settings() -> None:
    events = [ev("booking.paid", n, payer="hub", patient=f"p{n}") for n in range(4)]
    assert fired(run(events), "payer_fanout") == set()
    assert fired(run(events, monitor_payer_patients=4), "payer_fanout") == \
        {Entity("payer", "hub")}


# --- issue 13: farms and rotating proxies ------------------------------------------------

def test_a_farm_trying_one_made_up_identity_per_account_is_named_account_by_account() -> None:
    # A person mistyping now and then over the day, then a farm: 40 accounts, each one
    # invalid ID number from its own device and address, within ten minutes.
    typos = [ev("identity.rejected", -86_000 + n * 2_000, account=f"p{n}",
                detail={"reason": "invalid_id_number"}) for n in range(40)]
    farm = [ev("patient.linked", n * 15, account=f"f{n}", device=f"d{n}",
               ip=f"100.64.{n}.9", detail={"id_valid": False}) for n in range(40)]
    findings = run(typos + farm)
    assert fired(findings, "bad_identity_burst") == {Entity("account", f"f{n}")
                                                     for n in range(40)}
    assert fired(findings, "bad_identities") == set()  # one identity each


def test_mistyped_identities_as_many_all_day_as_now_are_no_burst() -> None:
    steady = [ev("identity.rejected", -86_000 + n * 150, account=f"p{n}",
                 detail={"reason": "invalid_id_number"}) for n in range(86_000 // 150)]
    assert fired(run(steady), "bad_identity_burst") == set()


def test_an_account_behind_rotating_proxies_is_named_and_a_moving_phone_is_not() -> None:
    bot = [ev("access", n * 2.0, account="bot", device="dv", ip=f"100.{64 + n}.{n}.7")
           for n in range(10)]
    phone = [ev("access", n * 2.0, account="pt", device="ph",
                ip=("192.168.1.5", "39.144.7.1", "39.144.9.2")[n % 3]) for n in range(60)]
    findings = run(bot + phone)
    assert fired(findings, "ip_rotation") == {Entity("account", "bot"), Entity("device", "dv")}


def test_a_proxy_account_making_a_few_requests_a_day_is_named_within_the_week() -> None:
    # Three requests a day, each from another /24 of the pool: never 10 networks in 10 min,
    # 8 within the week by its third day. A commuter's phone over the same week: home,
    # office and two carrier NATs, twenty requests a day.
    day = 86_400.0
    bot = [ev("access", d * day + n * 60.0, account="slow", device="sd",
              ip=f"100.64.{3 * d + n}.7") for d in range(4) for n in range(3)]
    networks = ("192.168.1.5", "203.0.113.9", "39.144.7.1", "39.144.9.2")
    phone = [ev("access", d * day + n * 1_800.0, account="pt", device="ph",
                ip=networks[(d + n) % 4]) for d in range(7) for n in range(20)]
    findings = run(bot + phone)
    assert fired(findings, "ip_rotation") == {Entity("account", "slow"), Entity("device", "sd")}
    assert fired(run(bot + phone, monitor_rotation_slow_prefixes=0), "ip_rotation") == set()

"""Decisions: made from an alert by the scenario's configured responses, once, with a
lifetime; made and lifted by hand with who and why; handed to the decision sink."""

from __future__ import annotations

import datetime as dt

import pytest

from fairslot.clock import FixedClock
from fairslot.domain.errors import Conflict, InvalidInput
from fairslot.monitoring.assemble import make_monitor
from fairslot.monitoring.decisions import (
    MemoryDecisionBook,
    Response,
    lifetime,
    parse_response,
    responses_from_settings,
)
from fairslot.monitoring.runner import Monitor
from fairslot.monitoring.scenarios import Entity
from fairslot.monitoring.store import MonitorStore
from tests.monitoring.conftest import T0, ev, settings

NOW = dt.datetime.fromtimestamp(T0, dt.UTC)


def monitor_on(store: MonitorStore, book: MemoryDecisionBook, clock: FixedClock | None = None,
               **overrides: object) -> Monitor:
    return make_monitor(settings(**overrides), clock=clock or FixedClock(NOW), sink=book,
                        store=store, notify=False)


LAUNDER = [
    ev("booking.cancelled", 0, session="s1", account="holder", patient="fake", id="c1"),
    ev("booking.created", 3, session="s1", account="seller", patient="buyer", id="b1"),
]


def test_a_laundering_alert_holds_both_accounts_for_review(store: MonitorStore) -> None:
    book = MemoryDecisionBook()
    outcome = monitor_on(store, book).process(LAUNDER)
    made = {(d.action, d.entity) for d in outcome.decisions}
    assert made == {("hold_bookings", Entity("account", "holder")),
                    ("hold_bookings", Entity("account", "seller"))}
    assert book.holds(Entity("account", "seller"), "hold_bookings", NOW)
    decision = outcome.decisions[0]
    assert decision.expires_at - decision.created_at == dt.timedelta(days=7)
    assert decision.created_by == "monitor"
    assert decision.alert_id == outcome.changes[0].alert.id
    assert "launder" in decision.reason


def test_an_alert_seen_again_makes_no_second_decision(store: MonitorStore) -> None:
    book = MemoryDecisionBook()
    monitor = monitor_on(store, book, monitor_alert_update_seconds=0)
    monitor.process(LAUNDER)
    second = monitor.process([*LAUNDER,
                              ev("booking.cancelled", 100, session="s2", account="holder",
                                 patient="fake2"),
                              ev("booking.created", 101, session="s2", account="seller",
                                 patient="buyer2")])
    assert second.decisions == []
    assert len(store.decisions()) == 2
    assert len(book) == 2


def test_responses_come_from_settings_and_none_means_no_decision(store: MonitorStore) -> None:
    book = MemoryDecisionBook()
    monitor = monitor_on(store, book, monitor_responses={"launder": ["block 1d"]})
    (decision,) = monitor.process(LAUNDER).decisions
    assert (decision.action, decision.entity) == ("block", Entity("account", "holder"))
    assert decision.expires_at == NOW + dt.timedelta(days=1)
    quiet = monitor_on(store, MemoryDecisionBook(), monitor_responses={"payer_fanout": []})
    outcome = quiet.process([ev("booking.paid", n, payer="hub", patient=f"p{n}")
                             for n in range(10)])
    assert outcome.changes and outcome.decisions == []


def test_alerts_below_the_response_severity_make_no_decision(store: MonitorStore) -> None:
    book = MemoryDecisionBook()
    monitor = monitor_on(store, book, monitor_respond_min_severity="high")
    outcome = monitor.process([ev("booking.paid", n, payer="hub", patient=f"p{n}")
                               for n in range(10)])
    assert outcome.changes[0].alert.severity == "medium"
    assert outcome.decisions == []


def test_a_decision_expires_at_the_end_of_its_lifetime(store: MonitorStore) -> None:
    clock = FixedClock(NOW)
    book = MemoryDecisionBook()
    monitor_on(store, book, clock).process(LAUNDER)
    holder = Entity("account", "holder")
    later = NOW + dt.timedelta(days=7)
    assert [d.entity for d in store.decisions(active_at=NOW, entity=holder)] == [holder]
    assert store.decisions(active_at=later, entity=holder) == []
    assert not book.holds(holder, "hold_bookings", later)


def test_a_decision_made_by_hand_is_kept_with_who_and_why_and_can_be_lifted(
        store: MonitorStore) -> None:
    clock = FixedClock(NOW)
    book = MemoryDecisionBook()
    monitor = monitor_on(store, book, clock)
    made = monitor.decide("raise_level", Entity("ip_prefix", "203.0.113.0/24"),
                          lifetime("30m"), "operator:li", "scraping before the 07:30 release",
                          "under_attack")
    assert (made.param, made.created_by) == ("under_attack", "operator:li")
    assert len(book) == 1
    clock.advance(60)
    lifted = monitor.lift(made.id or 0, "operator:li", "the release is over")
    assert lifted.lifted_at == NOW + dt.timedelta(seconds=60)
    assert (lifted.lifted_by, lifted.lifted_reason) == ("operator:li", "the release is over")
    assert len(book) == 0
    assert store.decisions(active_at=clock.now()) == []
    with pytest.raises(Conflict):
        monitor.lift(made.id or 0, "operator:li", "again")


@pytest.mark.parametrize(("action", "entity", "level", "by", "why", "code"), [
    ("ban", Entity("account", "1"), None, "op", "x", "invalid_action"),
    ("raise_level", Entity("account", "1"), None, "op", "x", "invalid_action"),
    ("block", Entity("account", "1"), None, "op", " ", "reason_required"),
    ("block", Entity("planet", "mars"), None, "op", "x", "invalid_entity"),
])
def test_a_bad_decision_by_hand_is_refused_and_nothing_is_made(
        store: MonitorStore, action: str, entity: Entity, level: str | None, by: str,
        why: str, code: str) -> None:
    book = MemoryDecisionBook()
    with pytest.raises(InvalidInput) as raised:
        monitor_on(store, book).decide(action, entity, dt.timedelta(hours=1), by, why, level)
    assert raised.value.code == code
    assert store.decisions() == [] and len(book) == 0


def test_lifting_needs_a_reason(store: MonitorStore) -> None:
    book = MemoryDecisionBook()
    monitor = monitor_on(store, book)
    made = monitor.decide("block", Entity("device", "d1"), dt.timedelta(hours=1), "op", "x")
    with pytest.raises(InvalidInput):
        monitor.lift(made.id or 0, "op", "  ")
    assert len(book) == 1


def test_responses_parse_and_print_back() -> None:
    assert parse_response("raise_level=elevated 30m") == Response(
        "raise_level", dt.timedelta(minutes=30), "elevated")
    assert parse_response("hold_bookings 7d +related").related
    assert str(parse_response("hold_bookings 7d +related")) == "hold_bookings 7d +related"


@pytest.mark.parametrize("text", ["ban 1d", "block", "block 0h", "block 3w", "raise_level 1h",
                                  "require_pow=x 1h", "block 1d +all"])
def test_a_malformed_response_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_response(text)


def test_responses_for_an_unknown_scenario_are_refused() -> None:
    with pytest.raises(InvalidInput, match="lauder"):
        responses_from_settings({"lauder": ["block 1d"]})

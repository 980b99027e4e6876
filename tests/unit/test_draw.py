"""The verifiable draw: allocation invariants, determinism, fairness, and the verifier."""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare  # type: ignore[import-untyped]

from fairslot.domain.draw import (
    Entry,
    MalformedRound,
    Round,
    commitment,
    draw_keys,
    draw_order,
    entries_digest,
    export_round,
    load_round,
    new_seed,
    next_in_line,
    round_key,
    run_draw,
    verify_round,
)

SESSIONS = ["s1", "s2", "s3", "s4", "s5"]


@st.composite
def rounds(draw: st.DrawFn) -> tuple[list[Entry], dict[str, int]]:
    capacities = {s: draw(st.integers(0, 4)) for s in SESSIONS}
    refs = draw(st.lists(st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True), unique=True,
                         max_size=30))
    entries = [
        Entry(ref, tuple(draw(st.lists(st.sampled_from(SESSIONS), min_size=1, max_size=3,
                                       unique=True))))
        for ref in refs
    ]
    return entries, capacities


seeds = st.binary(min_size=32, max_size=32)
# No deadline: the machine is shared, and a slow example is not a wrong one.
relaxed = settings(deadline=None, max_examples=60)


@relaxed
@given(rounds(), seeds)
def test_winners_never_exceed_capacity(case: tuple[list[Entry], dict[str, int]],
                                       seed: bytes) -> None:
    entries, capacities = case
    result = run_draw(seed, entries, capacities)
    for session, capacity in capacities.items():
        assert sum(1 for a in result.winners.values() if a.session == session) <= capacity


@relaxed
@given(rounds(), seeds)
def test_every_entry_either_wins_once_or_waits(case: tuple[list[Entry], dict[str, int]],
                                               seed: bytes) -> None:
    entries, capacities = case
    result = run_draw(seed, entries, capacities)
    listed = list(result.winners) + list(result.waitlist)
    assert sorted(listed) == sorted(e.ref for e in entries)
    # Both lists follow the draw order.
    order = draw_order(seed, entries)
    assert list(result.winners) == [r for r in order if r in result.winners]
    assert list(result.waitlist) == [r for r in order if r not in result.winners]


@relaxed
@given(rounds(), seeds)
def test_no_winner_could_have_had_a_better_choice(case: tuple[list[Entry], dict[str, int]],
                                                  seed: bytes) -> None:
    entries, capacities = case
    result = run_draw(seed, entries, capacities)
    by_ref = {e.ref: e for e in entries}
    room = dict(capacities)
    for ref in draw_order(seed, entries):
        award = result.winners.get(ref)
        choices = by_ref[ref].choices
        taken = len(choices) if award is None else award.rank - 1
        # Every choice ranked above what the entry got was already full at its turn.
        assert all(room[s] == 0 for s in choices[:taken])
        if award is not None:
            assert choices[award.rank - 1] == award.session
            assert room[award.session] > 0
            room[award.session] -= 1


@relaxed
@given(rounds(), seeds, st.randoms(use_true_random=False))
def test_submission_order_does_not_change_the_result(
        case: tuple[list[Entry], dict[str, int]], seed: bytes, rnd: random.Random) -> None:
    entries, capacities = case
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    first, second = run_draw(seed, entries, capacities), run_draw(seed, shuffled, capacities)
    assert list(first.winners.items()) == list(second.winners.items())
    assert first.waitlist == second.waitlist
    assert entries_digest(entries) == entries_digest(shuffled)


@relaxed
@given(rounds(), seeds)
def test_same_seed_and_entries_give_the_same_result(
        case: tuple[list[Entry], dict[str, int]], seed: bytes) -> None:
    entries, capacities = case
    assert run_draw(seed, entries, capacities) == run_draw(seed, list(entries), capacities)


def test_the_beacon_changes_the_order() -> None:
    entries = [Entry(f"e{n}", ("s1",)) for n in range(20)]
    seed = bytes(32)
    assert draw_order(seed, entries, "a") != draw_order(seed, entries, "b")


def test_draw_keys_follow_the_documented_hashes() -> None:
    seed = bytes(range(32))
    beacon = "信标-7"  # the beacon enters as UTF-8
    key = hashlib.sha256(seed + "信标-7".encode()).digest()
    assert round_key(seed, beacon) == key
    assert draw_keys(seed, ["abc"], beacon) == [hashlib.sha256(key + b"abc").digest()]
    assert commitment(seed) == hashlib.sha256(seed).hexdigest()
    assert entries_digest([Entry("b", ("s2", "s1")), Entry("a", ("s1",))]) == hashlib.sha256(
        b"a s1\nb s2 s1\n").hexdigest()


def test_the_worked_example_of_the_docs_still_holds() -> None:
    # The example in docs/draw.md; a verifier in another language can test against it.
    seed = bytes(range(32))
    entries = [Entry("alice", ("s1", "s2")), Entry("bob", ("s1",)),
               Entry("carol", ("s2", "s1")), Entry("dave", ("s1", "s2"))]
    result = run_draw(seed, entries, {"s1": 1, "s2": 1}, "beacon-42")
    key = hashlib.sha256(seed + b"beacon-42").digest()
    by_hand = sorted((e.ref for e in entries),
                     key=lambda ref: hashlib.sha256(key + ref.encode()).digest())
    assert draw_order(seed, entries, "beacon-42") == by_hand == ["dave", "alice", "bob", "carol"]
    assert [(a.ref, a.session, a.rank) for a in result.awards] == [
        ("dave", "s1", 1), ("alice", "s2", 2)]
    assert result.waitlist == ("bob", "carol")
    assert entries_digest(entries) == (
        "28f06e5749bd43c6cdc3ecd3261e5e53a4e0acab5883367326559f8a76420918")


def test_a_freed_slot_goes_to_the_first_waitlisted_entry_that_chose_it() -> None:
    choices = {"a": ("s1",), "b": ("s2", "s1"), "c": ("s2",)}
    waitlist = ["a", "b", "c"]
    assert next_in_line(waitlist, choices, "s2") == "b"
    assert next_in_line(waitlist, choices, "s2", skip={"b"}) == "c"
    assert next_in_line(waitlist, choices, "s2", skip={"b", "c"}) is None


def test_the_garbage_collector_is_restored_after_a_draw() -> None:
    import gc

    run_draw(bytes(32), [Entry("a", ("s1",))], {"s1": 1})
    assert gc.isenabled()


def test_a_new_seed_is_32_random_bytes() -> None:
    assert len(new_seed()) == 32
    assert new_seed() != new_seed()


@pytest.mark.parametrize(("entries", "message"), [
    ([Entry("a", ("s1",)), Entry("a", ("s2",))], "more than once"),
    ([Entry("a", ())], "0 choices"),
    ([Entry("a", ("s1", "s2", "s1"))], "same session twice"),
    ([Entry("a", ("s1", "s2", "s3", "s4"))], "4 choices"),
    ([Entry("a b", ("s1",))], "is not 1-64 characters"),
    ([Entry("a", ("s9",))], "not in the round"),
])
def test_invalid_entries_are_refused_with_a_reason(entries: list[Entry], message: str) -> None:
    with pytest.raises(MalformedRound, match=message):
        run_draw(bytes(32), entries, {"s1": 1, "s2": 1, "s3": 1, "s4": 1})


# --- fairness -------------------------------------------------------------------------------

OrderFn = Callable[[bytes, Sequence[Entry]], list[str]]
FAIR_ENTRIES = [Entry(f"e{n}", ("s1",)) for n in range(10)]
CAPACITY = 3
DRAWS = 3000


def win_counts(order: OrderFn) -> list[int]:
    """Wins per entry over many seeds when the first CAPACITY entries in order win."""
    wins = dict.fromkeys((e.ref for e in FAIR_ENTRIES), 0)
    for n in range(DRAWS):
        seed = hashlib.sha256(n.to_bytes(4, "big")).digest()
        for ref in order(seed, FAIR_ENTRIES)[:CAPACITY]:
            wins[ref] += 1
    return list(wins.values())


def fair_order(seed: bytes, entries: Sequence[Entry]) -> list[str]:
    result = run_draw(seed, entries, {"s1": CAPACITY})
    return list(result.winners) + list(result.waitlist)


def ground_order(seed: bytes, entries: Sequence[Entry]) -> list[str]:
    """A rigged draw: the operator grinds e0's key, keeping the better of two tries."""
    keys = dict(zip((e.ref for e in entries), draw_keys(seed, [e.ref for e in entries]),
                    strict=True))
    keys["e0"] = min(keys["e0"], hashlib.sha256(seed + b"again").digest())
    return sorted(keys, key=keys.__getitem__)


def fairness_p_value(order: OrderFn) -> float:
    counts = win_counts(order)
    expected = [DRAWS * CAPACITY / len(FAIR_ENTRIES)] * len(FAIR_ENTRIES)
    return float(chisquare(counts, expected).pvalue)


def test_each_entry_wins_as_often_as_capacity_over_entries() -> None:
    assert fairness_p_value(fair_order) > 0.001


def test_the_fairness_test_rejects_a_biased_draw() -> None:
    assert fairness_p_value(ground_order) < 0.001


# --- the round document and its verifier --------------------------------------------------


def drawn_round() -> dict[str, Any]:
    rng = random.Random(7)
    capacities = {f"s{n}": rng.randint(1, 3) for n in range(6)}
    entries = [Entry(f"p{n:03d}", tuple(rng.sample(sorted(capacities), rng.randint(1, 3))))
               for n in range(40)]
    seed = hashlib.sha256(b"test seed").digest()
    return export_round(Round(
        round_id="r1", capacities=capacities, entries=tuple(entries),
        commitment=commitment(seed), entries_digest=entries_digest(entries),
        beacon="drand-1234", seed=seed, result=run_draw(seed, entries, capacities, "drand-1234"),
        parameters={"max_choices": 3, "window_closes": "2026-11-24T08:00:00+08:00"},
    ))


def test_an_honest_round_verifies() -> None:
    verdict = verify_round(drawn_round())
    assert verdict.ok, verdict.reasons
    assert (verdict.entries, verdict.sessions) == (40, 6)
    assert verdict.winners + verdict.waitlisted == 40


def test_a_round_survives_export_and_load() -> None:
    doc = drawn_round()
    assert export_round(load_round(doc)) == doc
    assert verify_round(load_round(doc)).ok


def test_verify_catches_a_tampered_seed() -> None:
    doc = drawn_round()
    doc["seed"] = ("0" if doc["seed"][0] != "0" else "1") + doc["seed"][1:]
    verdict = verify_round(doc)
    assert not verdict.ok
    assert "seed does not match the commitment" in verdict.reasons[0]


def test_verify_catches_a_tampered_entry() -> None:
    doc = drawn_round()
    entry = doc["entries"][5]
    entry["choices"] = ["s1"] if entry["choices"] != ["s1"] else ["s2"]
    verdict = verify_round(doc)
    assert not verdict.ok
    assert any("do not match the published digest" in r for r in verdict.reasons)


def test_verify_catches_a_swapped_winner_and_names_it() -> None:
    doc = drawn_round()
    winners, waitlist = doc["results"]["winners"], doc["results"]["waitlist"]
    loser = waitlist.pop(0)
    cheat = next(e for e in doc["entries"] if e["ref"] == loser)
    victim = winners[0]
    waitlist.insert(0, victim["ref"])
    winners[0] = {"ref": loser, "session": cheat["choices"][0], "rank": 1}
    verdict = verify_round(doc)
    assert not verdict.ok
    assert any(r.startswith(f"winner #1 is {loser}") for r in verdict.reasons)


def test_verify_reports_capacity_exceeded() -> None:
    doc = drawn_round()
    loser = doc["results"]["waitlist"].pop()
    chosen = next(e for e in doc["entries"] if e["ref"] == loser)["choices"][0]
    doc["results"]["winners"].append({"ref": loser, "session": chosen, "rank": 1})
    verdict = verify_round(doc)
    assert not verdict.ok
    assert any("winners but capacity" in r for r in verdict.reasons)


def test_verify_names_a_malformed_field_instead_of_crashing() -> None:
    doc = drawn_round()
    broken = copy.deepcopy(doc)
    del broken["entries_digest"]
    verdict = verify_round(broken)
    assert verdict.malformed and not verdict.ok
    assert "'entries_digest'" in verdict.reasons[0]
    broken = copy.deepcopy(doc)
    broken["entries"][3] = {"ref": "x", "choices": "s1"}
    assert "entries[3]: 'choices' must be a list" in verify_round(broken).reasons[0]
    assert verify_round({"format": "other"}).malformed


def test_an_undrawn_round_does_not_verify_and_its_seed_is_never_exported() -> None:
    seed = new_seed()
    entries = (Entry("a", ("s1",)),)
    undrawn = Round(round_id="r", capacities={"s1": 1}, entries=entries,
                    commitment=commitment(seed), entries_digest=entries_digest(entries))
    verdict = verify_round(export_round(undrawn))
    assert not verdict.ok and "not been drawn" in verdict.reasons[0]
    with pytest.raises(ValueError, match="not been drawn"):
        export_round(Round(round_id="r", capacities={"s1": 1}, entries=entries,
                           commitment=commitment(seed), entries_digest=entries_digest(entries),
                           seed=seed))


@settings(deadline=None, max_examples=30)
@given(rounds(), seeds)
def test_every_honest_round_verifies(case: tuple[list[Entry], dict[str, int]],
                                     seed: bytes) -> None:
    entries, capacities = case
    doc = export_round(Round(
        round_id="r", capacities=capacities, entries=tuple(entries),
        commitment=commitment(seed), entries_digest=entries_digest(entries), seed=seed,
        result=run_draw(seed, entries, capacities)))
    assert verify_round(doc).ok

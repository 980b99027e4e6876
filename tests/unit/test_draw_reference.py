"""The NumPy draw gives bit-for-bit the results of the plain-Python draw it replaced.

``reference_draw`` below is that earlier implementation (sort the 32-byte keys, ties by ref;
walk the draw order over strings), kept unchanged as the oracle; ``reference_digest`` is the
earlier canonical serialisation. Random rounds cover one to many choices, zero capacities,
sessions nobody chose, every slot gone early, and ties of the sort prefix (forced by
shortening the prefix, since real ties take a 64-bit coincidence)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairslot.domain.draw import (
    Award,
    DrawResult,
    Entry,
    Round,
    allocation,
    commitment,
    draw_order,
    entries_digest,
    export_round,
    round_key,
    run_draw,
    verify_round,
)

# --- the earlier implementation, unchanged ------------------------------------------------


def reference_order(key: bytes, refs: Sequence[str]) -> list[int]:
    keys = [hashlib.sha256(key + ref.encode("ascii")).digest() for ref in refs]
    order = sorted(range(len(refs)), key=keys.__getitem__)
    if len(set(keys)) != len(keys):
        order.sort(key=lambda i: (keys[i], refs[i]))
    return order


def reference_allocate(order: Sequence[int], refs: Sequence[str],
                       choices: Sequence[tuple[str, ...]],
                       capacities: Mapping[str, int]) -> DrawResult:
    room = dict(capacities)
    left = sum(room.values())
    won: list[int] = []
    got: list[str] = []
    lost: list[int] = []
    position = 0
    for position, i in enumerate(order):  # noqa: B007 - position is used after the loop
        if not left:
            break
        for session in choices[i]:
            if room[session]:
                room[session] -= 1
                left -= 1
                won.append(i)
                got.append(session)
                break
        else:
            lost.append(i)
    else:
        position = len(order)
    lost.extend(order[position:])
    won_refs = [refs[i] for i in won]
    ranks = [choices[i].index(session) + 1 for i, session in zip(won, got, strict=True)]
    return DrawResult(
        winners=dict(zip(won_refs, map(Award, won_refs, got, ranks), strict=True)),
        waitlist=tuple([refs[i] for i in lost]),
    )


def reference_draw(seed: bytes, entries: Sequence[Entry], capacities: Mapping[str, int],
                   beacon: str = "") -> DrawResult:
    refs = [e.ref for e in entries]
    choices = [e.choices for e in entries]
    return reference_allocate(reference_order(round_key(seed, beacon), refs), refs, choices,
                              capacities)


def reference_digest(entries: Sequence[Entry]) -> str:
    refs = [e.ref for e in entries]
    by_ref = sorted(range(len(refs)), key=refs.__getitem__)
    text = "".join([f"{refs[i]} {' '.join(entries[i].choices)}\n" for i in by_ref])
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# --- random rounds --------------------------------------------------------------------------


def random_round(rng: random.Random, entries: int, sessions: int, max_choices: int = 3,
                 slots: tuple[int, int] = (0, 4)) -> tuple[list[Entry], dict[str, int]]:
    ids = [f"s{n}" for n in range(sessions)]
    capacities = {sid: rng.randint(*slots) for sid in ids}
    alphabet = "ABCabc019_.-"
    refs: set[str] = set()
    while len(refs) < entries:
        refs.add("".join(rng.choices(alphabet, k=rng.randint(1, 8))))
    made = [Entry(ref, tuple(rng.sample(ids, rng.randint(1, min(max_choices, sessions)))))
            for ref in sorted(refs, key=lambda _: rng.random())]
    return made, capacities


def same(result: DrawResult, expected: DrawResult) -> None:
    assert list(result.winners.items()) == list(expected.winners.items())
    assert result.waitlist == expected.waitlist
    assert all(type(r) is str for r in result.waitlist)
    assert all(type(a.rank) is int and type(a.session) is str for a in result.awards)


@pytest.mark.parametrize("case", range(40))
def test_the_draw_equals_the_reference_on_random_rounds(case: int) -> None:
    rng = random.Random(case)
    max_choices = (1, 2, 3, 3, 5)[case % 5]
    slots = ((0, 0), (0, 2), (0, 4), (1, 30), (0, 1))[case // 5 % 5]
    entries, capacities = random_round(rng, rng.randint(0, 400), rng.randint(1, 25),
                                       max_choices, slots)
    seed = rng.randbytes(32)
    beacon = rng.choice(("", "drand-4242", "lottery ☘ 7"))
    same(run_draw(seed, entries, capacities, beacon, max_choices=max_choices),
         reference_draw(seed, entries, capacities, beacon))
    assert entries_digest(entries) == reference_digest(entries)


@pytest.mark.parametrize("block", [1, 2, 7, 64])
@pytest.mark.parametrize("case", range(10))
def test_the_draw_walked_in_blocks_equals_the_reference(
        case: int, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The allocation sets aside, before each block, the entries none of whose sessions has
    # room; small blocks make sessions fill in the middle of many blocks.
    monkeypatch.setattr(allocation, "_BLOCK", block)
    rng = random.Random(1000 + case)
    max_choices = (1, 3, 5)[case % 3]
    entries, capacities = random_round(rng, rng.randint(50, 300), rng.randint(1, 20),
                                       max_choices, ((0, 3), (1, 12))[case % 2])
    seed = rng.randbytes(32)
    same(run_draw(seed, entries, capacities, max_choices=max_choices),
         reference_draw(seed, entries, capacities, ""))


@settings(deadline=None, max_examples=150)
@given(st.data())
def test_the_draw_equals_the_reference_for_any_round(data: st.DataObject) -> None:
    sessions = data.draw(st.lists(st.from_regex(r"[A-Za-z0-9_.\-]{1,3}", fullmatch=True),
                                  min_size=1, max_size=6, unique=True))
    capacities = {s: data.draw(st.integers(0, 3)) for s in sessions}
    refs = data.draw(st.lists(st.from_regex(r"[A-Za-z0-9_.\-]{1,5}", fullmatch=True),
                              unique=True, max_size=40))
    width = data.draw(st.integers(1, 4))
    entries = [Entry(ref, tuple(data.draw(st.lists(st.sampled_from(sessions), min_size=1,
                                                   max_size=width, unique=True))))
               for ref in refs]
    seed = data.draw(st.binary(min_size=32, max_size=32))
    same(run_draw(seed, entries, capacities, max_choices=width),
         reference_draw(seed, entries, capacities))
    assert entries_digest(entries) == reference_digest(entries)


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_ties_of_the_sort_prefix_are_broken_by_the_full_key(
        monkeypatch: pytest.MonkeyPatch, bits: int) -> None:
    full = allocation._prefixes
    # Keep only the top bits of each prefix: most entries then tie with others.
    monkeypatch.setattr(allocation, "_prefixes", lambda keys: full(keys) >> np.uint64(64 - bits))
    rng = random.Random(bits)
    entries, capacities = random_round(rng, 500, 12, slots=(0, 20))
    seed = rng.randbytes(32)
    same(run_draw(seed, entries, capacities, "b"), reference_draw(seed, entries, capacities, "b"))
    assert draw_order(seed, entries, "b") == [
        entries[i].ref for i in reference_order(round_key(seed, "b"),
                                                [e.ref for e in entries])]


def test_equal_keys_are_ordered_by_ref() -> None:
    # Equal full keys would take a SHA-256 collision; the specification orders them by ref.
    keys = bytes(32) * 3 + b"\1" * 32 + bytes(32)
    assert allocation._order_keys(keys, ["c", "a", "b", "0", "aa"]).tolist() == [1, 4, 2, 0, 3]


def test_every_slot_gone_early_puts_the_rest_on_the_waitlist() -> None:
    entries = [Entry(f"p{n}", ("s1", "s2")) for n in range(1000)]
    capacities = {"s1": 2, "s2": 1, "s3": 5}
    seed = bytes(range(32))
    result = run_draw(seed, entries, capacities)
    same(result, reference_draw(seed, entries, capacities))
    assert [a.rank for a in result.awards] == [1, 1, 2]


def test_a_verified_round_with_more_choices_than_three() -> None:
    rng = random.Random(5)
    entries, capacities = random_round(rng, 300, 8, max_choices=6, slots=(1, 6))
    seed = rng.randbytes(32)
    result = run_draw(seed, entries, capacities, max_choices=6)
    same(result, reference_draw(seed, entries, capacities))
    doc: dict[str, Any] = export_round(Round(
        round_id="wide", capacities=capacities, entries=tuple(entries),
        commitment=commitment(seed), entries_digest=entries_digest(entries), seed=seed,
        result=result, parameters={"max_choices": 6}))
    assert verify_round(doc).ok
    doc["parameters"]["max_choices"] = 3
    assert verify_round(doc).malformed


def test_verify_accepts_entries_in_any_order_and_catches_a_swap() -> None:
    rng = random.Random(9)
    entries, capacities = random_round(rng, 200, 6, slots=(1, 5))
    seed = rng.randbytes(32)
    doc: dict[str, Any] = export_round(Round(
        round_id="r", capacities=capacities, entries=tuple(entries),
        commitment=commitment(seed), entries_digest=entries_digest(entries), seed=seed,
        result=reference_draw(seed, entries, capacities)))
    rng.shuffle(doc["entries"])
    assert verify_round(doc).ok
    waitlist = doc["results"]["waitlist"]
    waitlist[0], waitlist[1] = waitlist[1], waitlist[0]
    verdict = verify_round(doc)
    assert not verdict.ok
    assert verdict.reasons == (f"waitlist #1 is {waitlist[0]!r} but the draw gives "
                               f"{waitlist[1]!r}",)


def test_the_fast_hash_is_sha256() -> None:
    for message in (b"", b"abc", bytes(range(256)) * 5):
        assert allocation._short_digest(allocation._short_sha256(message)) == hashlib.sha256(
            message).digest()


@pytest.mark.parametrize("item", ["ab", ["ref", "choices"], 7, None])
def test_an_entry_that_is_not_an_object_is_named(item: object) -> None:
    rng = random.Random(3)
    entries, capacities = random_round(rng, 5, 3, slots=(1, 2))
    seed = rng.randbytes(32)
    doc: dict[str, Any] = export_round(Round(
        round_id="r", capacities=capacities, entries=tuple(entries),
        commitment=commitment(seed), entries_digest=entries_digest(entries), seed=seed,
        result=run_draw(seed, entries, capacities)))
    doc["entries"][2] = item
    verdict = verify_round(doc)
    assert verdict.malformed
    assert "entries[2] must be a JSON object" in verdict.reasons[0]

"""The draw's speed work must not change a single byte of what a round publishes: a round
built from a fixed list (every status, 1 to 3 choices, refs given out of order, a size that
leaves unpaired nodes on several tree levels) is pinned by the SHA-256 of its document, its
inclusion proofs and its verification, as the code produced them before that work."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random

import pytest

from fairslot.domain.draw.entries import MalformedRound
from fairslot.domain.draw.examples import build_round, example_chain
from fairslot.domain.draw.frozen import FrozenEntry, FrozenList
from fairslot.domain.draw.statements import frozen_entry
from fairslot.domain.draw.verify import DEFAULT_TRUST, read_json, verify_document

CLOSE = dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC)
SIZE = 2_741  # made; 2,614 distinct refs, odd at six levels of the tree (1307, 327, 41, ...)

# Computed by the code before the speed work (see the module docstring).
DOCUMENT_SHA256 = "f572299f2c56c6c2735bdf3f79fd48449f57f1a1d335b973ea84f5b9599fcbf5"
PROOFS_SHA256 = "c844ebacbf698dd9649797155a8c9dd87a831d90cf8bce856d5b27af95a854eb"


def golden_entries() -> list[FrozenEntry]:
    rng = random.Random(14)
    ids = [f"s{k:02d}" for k in range(40)]
    made = []
    for _ in range(SIZE):
        ref = f"e{rng.getrandbits(40):010x}"[: rng.randint(3, 11)]
        choices = rng.sample(ids, rng.randint(1, 3))
        roll = rng.random()
        seq = rng.randint(1, 12)
        if roll < 0.04:
            made.append(frozen_entry(ref, seq, choices, withdrawn=True))
        elif roll < 0.06:
            made.append(frozen_entry(ref, seq, choices, excluded="credit_suspended"))
        else:
            made.append(frozen_entry(ref, seq, choices))
    # Short refs collide: keep the first of each, in the (unsorted) order they were made.
    return list({e.ref: e for e in reversed(made)}.values())[::-1]


def golden_capacities() -> dict[str, int]:
    return {f"s{k:02d}": 1 + k % 7 for k in range(40)}


def test_a_round_document_is_byte_for_byte_what_it_was() -> None:
    example = build_round(golden_entries(), golden_capacities(), closes_at=CLOSE)
    assert example.frozen.size == 2_614
    raw = json.dumps(example.document, sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(raw).hexdigest() == DOCUMENT_SHA256
    proofs = [example.frozen.proof("r1", ref).to_json() for ref in example.frozen.refs]
    raw_proofs = json.dumps(proofs, sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(raw_proofs).hexdigest() == PROOFS_SHA256
    trust = DEFAULT_TRUST.with_keys([example_chain().chain.public_key.hex()])
    report = verify_document(read_json(raw, max_bytes=10**8), trust=trust)
    assert report.ok, report.reasons
    assert f"{example.frozen.size} entries" in report.summary


def test_freezing_the_same_entries_in_any_order_gives_the_same_list() -> None:
    entries = golden_entries()
    shuffled = entries[:]
    random.Random(3).shuffle(shuffled)
    one = FrozenList.freeze(entries, golden_capacities())
    two = FrozenList.freeze(shuffled, golden_capacities())
    assert list(one.leaves) == list(two.leaves) == sorted(e.leaf() for e in entries)
    assert one.root == two.root


def _outcome(make: object) -> tuple[str, object]:
    try:
        frozen = make() if callable(make) else None
    except MalformedRound as exc:
        return "refused", str(exc)
    assert isinstance(frozen, FrozenList)
    return "frozen", (list(frozen.leaves), frozen.root, frozen.drawn_refs,
                      frozen.drawn_choice_texts, frozen.prepared.table.tolist())


@pytest.mark.parametrize("odd", [
    FrozenEntry("e1", 1, "in", ("s01",), "-"),  # a reason of "-" reads as no reason
    FrozenEntry("e1", 1, "in", ("s01",), "late"),
    FrozenEntry("e1", 1, "excluded", ("s01",), None),
    FrozenEntry("e1", 1, "excluded", ("s01",), "-"),
    FrozenEntry("e1", 0, "in", ("s01",)),
    FrozenEntry("e1", 2**31, "in", ("s01",)),
    FrozenEntry("e1", True, "in", ("s01",)),
    FrozenEntry("e1", 1, "maybe", ("s01",)),
    FrozenEntry("e 1", 1, "in", ("s01",)),
    FrozenEntry("é1", 1, "in", ("s01",)),
    FrozenEntry("", 1, "in", ("s01",)),
    FrozenEntry("e1", 1, "in", ()),
    FrozenEntry("e1", 1, "in", ("s01", "s01")),
    FrozenEntry("e1", 1, "in", ("s01", "s02", "s03", "s04")),
    FrozenEntry("e1", 1, "in", ("s01,s02",)),
    FrozenEntry("e1", 1, "in", ("nope",)),
    FrozenEntry("e1", 1, "withdrawn", ("s01", "s02")),
    FrozenEntry(golden_entries()[5].ref, 1, "in", ("s01",)),  # a ref listed twice
])
def test_freezing_takes_what_reading_the_published_lines_takes(odd: FrozenEntry) -> None:
    # Freezing checks the platform's values as columns; reading a document checks its lines.
    # For any list, both must accept the same list or refuse it with the same message.
    entries = [*golden_entries()[:50], odd]
    capacities = golden_capacities()
    lines = sorted(e.leaf() for e in entries)
    assert _outcome(lambda: FrozenList.freeze(entries, capacities)) == _outcome(
        lambda: FrozenList.from_leaves(lines, capacities))

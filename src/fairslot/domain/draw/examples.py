"""Worked examples of ``fairslot-round/2``, computed by the code: the ones printed in
``docs/draw.md`` (a test compares them with the page, so the two cannot drift) and rounds of
any size for tests and benchmarks.

Every key here is made from a public constant: these rounds show how the format works, and
anyone can forge one. A real round's draw key and chain are the hospital's and drand's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fairslot.domain.draw.allocation import frozen_round_key, stream_keys
from fairslot.domain.draw.beacon import Beacon, LocalChain
from fairslot.domain.draw.frozen import FrozenEntry, FrozenList
from fairslot.domain.draw.log import RoundLog, drawn_record, frozen_record, opened_record
from fairslot.domain.draw.receipts import make_receipt
from fairslot.domain.draw.signing import DrawKey, digest
from fairslot.domain.draw.statements import (
    draw_statement,
    freeze_statement,
    frozen_entry,
    opening_statement,
    round_document,
)

__all__ = [
    "EXAMPLE_CHAIN_SECRET",
    "EXAMPLE_KEY",
    "Example",
    "build_round",
    "example_files",
    "worked_example",
]

#: Public constants: the example hospital's draw key and the example local chain's secret.
EXAMPLE_KEY = DrawKey(hashlib.sha256(b"fairslot example hospital key").digest())
EXAMPLE_CHAIN_SECRET = hashlib.sha256(b"fairslot example chain").digest()
_GENESIS = 1767225600  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class Example:
    """A complete round and everything computed along the way."""

    chain: LocalChain
    opening: dict[str, Any]
    frozen: FrozenList
    freeze: dict[str, Any]
    beacon: Beacon
    seed: bytes
    results: dict[str, list[str]]
    result: dict[str, Any]
    document: dict[str, Any]
    log: RoundLog


_CHAIN: LocalChain | None = None


def example_chain() -> LocalChain:
    global _CHAIN
    if _CHAIN is None:
        _CHAIN = LocalChain(EXAMPLE_CHAIN_SECRET, genesis_time=_GENESIS, period=3)
    return _CHAIN


def build_round(entries: Sequence[FrozenEntry], capacities: dict[str, int], *,
                round_id: str = "r1", seed: bytes = bytes(range(32)), max_choices: int = 3,
                closes_at: dt.datetime = dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC),
                beacon_delay: int = 30, key: DrawKey = EXAMPLE_KEY,
                chain: LocalChain | None = None) -> Example:
    """Open, freeze and draw a round with the example key and chain."""
    chain = chain or example_chain()
    opens_at = closes_at - dt.timedelta(hours=24)
    opening = opening_statement(key, round_id=round_id, opens_at=opens_at, closes_at=closes_at,
                                seed=seed, capacities=capacities, chain=chain.chain,
                                beacon_delay=beacon_delay, max_choices=max_choices)
    frozen, freeze = freeze_statement(key, opening, entries,
                                      closes_at + dt.timedelta(seconds=10))
    beacon = chain.sign(opening["beacon_round"])
    drawn_at = dt.datetime.fromtimestamp(chain.chain.round_time(beacon.round), dt.UTC) \
        + dt.timedelta(seconds=20)
    results, result = draw_statement(key, opening, freeze, frozen, beacon, seed, drawn_at)
    document = round_document(hospital_key=key.public_hex, opening=opening, frozen=frozen,
                              freeze=freeze, beacon=beacon, results=results, result=result,
                              parameters={"department": "example"})
    log = RoundLog()
    log.append(opened_record(round_id, digest(opening)))
    log.append(frozen_record(round_id, digest(opening), freeze["root"], freeze["size"]))
    log.append(drawn_record(round_id, opening["commitment"], freeze["root"], result["results"]))
    return Example(chain, opening, frozen, freeze, beacon, seed, results, result, document, log)


def worked_example() -> dict[str, Any]:
    """The values printed in docs/draw.md's worked example."""
    entries = [frozen_entry("alice", 1, ["s1", "s2"]), frozen_entry("bob", 2, ["s1"]),
               frozen_entry("carol", 1, ["s2", "s1"]), frozen_entry("dave", 1, ["s1", "s2"]),
               frozen_entry("erin", 2, ["s2"], withdrawn=True),
               frozen_entry("frank", 1, ["s1"], excluded="credit_suspended")]
    ex = build_round(entries, {"s1": 1, "s2": 1})
    key = frozen_round_key(ex.seed, ex.frozen.root, ex.beacon.randomness)
    keys = stream_keys(key, len(ex.frozen.drawn_refs))
    receipt = make_receipt(EXAMPLE_KEY, round_id="r1", opening=digest(ex.opening), ref="bob",
                           seq=2, kind="change", choices=["s1"],
                           at=dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC))
    return {
        "example": ex,
        "leaves": list(ex.frozen.leaves),
        "leaf_hashes": [h.hex() for h in ex.frozen.tree.levels[0]],
        "root": ex.frozen.root.hex(),
        "chain": ex.chain.chain.to_json(),
        "beacon": ex.beacon.to_json(),
        "randomness": ex.beacon.randomness.hex(),
        "round_key": key.hex(),
        "draw_keys": {ref: keys[32 * n:32 * n + 32].hex()
                      for n, ref in enumerate(ex.frozen.drawn_refs)},
        "opening_digest": digest(ex.opening),
        "receipt": receipt,
        "proof": ex.frozen.proof("r1", "bob").to_json(),
        "checkpoint": ex.log.checkpoint(EXAMPLE_KEY, dt.datetime(2026, 11, 24, 0, 5,
                                                                  tzinfo=dt.UTC)),
    }


def example_files() -> dict[str, Any]:
    """The files of docs/examples/: the worked example's round document, receipt, inclusion
    proof, checkpoint and log, for a verifier written elsewhere to test against."""
    worked = worked_example()
    ex: Example = worked["example"]
    checkpoint = worked["checkpoint"]
    return {"round.json": ex.document, "receipt.json": worked["receipt"],
            "inclusion.json": worked["proof"], "checkpoint.json": checkpoint,
            "log.json": ex.log.document(checkpoint)}

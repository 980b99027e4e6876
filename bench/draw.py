"""Time the draw and its verification at city scale: 1,000,000 entries over 10,000 sessions,
in format fairslot-round/2 (frozen list with its Merkle root, a chain beacon, signatures).

Sessions get 10-50 slots each; their popularity follows a Zipf-like law, so the hot ones are
heavily oversubscribed and the cold ones go partly unclaimed, and each entry ranks 1 to 3
distinct sessions drawn by popularity; about 4 % of the entries are withdrawn and 2 %
excluded. The beacon comes from the example local chain (signing it is not timed: a real
chain signs it). Run: ``python bench/draw.py [--entries N] [--repeat R]``.

Printed figures are seconds measured in this run: wall clock (median and best of the
repeats) and the process's CPU time (median), with the load average before and after."""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from fairslot.domain.draw.examples import EXAMPLE_KEY, example_chain
from fairslot.domain.draw.frozen import EXCLUDED, IN, WITHDRAWN, FrozenEntry
from fairslot.domain.draw.statements import (
    draw_statement,
    freeze_statement,
    opening_statement,
    round_document,
)
from fairslot.domain.draw.verify import DEFAULT_TRUST, read_json, verify_document
from fairslot.domain.merkle import verify_inclusion

CLOSE = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


def build_entries(entries: int, sessions: int, rng: random.Random) -> tuple[
        list[FrozenEntry], dict[str, int]]:
    ids = [f"s{n:05d}" for n in range(sessions)]
    capacities = {sid: rng.randint(10, 50) for sid in ids}
    # Zipf-like popularity: session k is chosen about 1/(k+1) as often as the most popular.
    cumulative = list(accumulate(1.0 / (k + 1) for k in range(sessions)))
    wanted = rng.choices(ids, cum_weights=cumulative, k=entries * 3)
    made: list[FrozenEntry] = []
    for n in range(entries):
        how_many = rng.choice((1, 1, 2, 2, 3))
        picks = tuple(dict.fromkeys(wanted[3 * n:3 * n + how_many]))
        roll = rng.random()
        status = IN if roll >= 0.06 else (WITHDRAWN if roll >= 0.02 else EXCLUDED)
        made.append(FrozenEntry(f"e{rng.getrandbits(64):016x}", rng.choice((1, 1, 1, 2)),
                                status, picks, "credit_suspended" if status == EXCLUDED
                                else None))
    return made, capacities


def timed(label: str, repeat: int, work: Callable[[], Any]) -> Any:
    samples: list[float] = []
    cpu: list[float] = []
    result: Any = None
    for _ in range(repeat):
        result = None
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        result = work()
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    # CPU time next to wall time: on a shared machine the gap shows how much of the wall
    # time was spent waiting for a core.
    print(f"{label:<52} wall median {statistics.median(samples):6.2f} s  best "
          f"{min(samples):6.2f} s  | CPU median {statistics.median(cpu):6.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rng = random.Random(20261123)
    entries, capacities = build_entries(args.entries, args.sessions, rng)
    print(f"{len(entries):,} entries, {len(capacities):,} sessions, "
          f"{sum(capacities.values()):,} slots")
    chain = example_chain()
    seed = bytes(rng.getrandbits(8) for _ in range(32))
    opening = opening_statement(EXAMPLE_KEY, round_id="bench", opens_at=CLOSE
                                - dt.timedelta(days=1), closes_at=CLOSE, seed=seed,
                                capacities=capacities, chain=chain.chain, beacon_delay=30)
    beacon = chain.sign(opening["beacon_round"])
    frozen_at = CLOSE + dt.timedelta(seconds=10)
    drawn_at = CLOSE + dt.timedelta(minutes=2)

    def freeze() -> Any:
        return freeze_statement(EXAMPLE_KEY, opening, entries, frozen_at)

    frozen, freeze_doc = timed("freeze (sort, check, leaves, Merkle root, sign)",
                               args.repeat, freeze)
    results, result = timed(
        "draw a frozen list (check beacon, keys, order, allocate)", args.repeat,
        lambda: draw_statement(EXAMPLE_KEY, opening, freeze_doc, frozen, beacon, seed,
                               drawn_at))
    timed("the whole draw: freeze + draw", args.repeat,
          lambda: draw_statement(EXAMPLE_KEY, opening, *_swap(freeze()), beacon, seed,
                                 drawn_at))
    winners = len(results["winners"])
    print(f"{frozen.size:,} listed, {len(frozen.drawn_refs):,} drawn, {winners:,} winners, "
          f"{len(results['waitlist']):,} waitlisted")
    picks = rng.sample(frozen.refs, 1000)

    def proofs() -> None:
        for ref in picks:
            proof = frozen.proof("bench", ref)
            assert verify_inclusion(proof.leaf_index, proof.size,
                                    frozen.tree.levels[0][proof.leaf_index], proof.path,
                                    frozen.root)

    timed("1,000 inclusion proofs made and checked", args.repeat, proofs)
    doc = round_document(hospital_key=EXAMPLE_KEY.public_hex, opening=opening, frozen=frozen,
                         freeze=freeze_doc, beacon=beacon, results=results, result=result)
    trust = DEFAULT_TRUST.with_keys([chain.chain.public_key.hex()])
    verdict = timed("verify a document already parsed", args.repeat,
                    lambda: verify_document(doc, trust=trust))
    print(f"  verdict: {verdict.status} {verdict.summary or verdict.reasons[:1]}")
    raw = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    print(f"round document: {len(raw) / 1e6:.1f} MB of JSON")
    timed("read_json (UTF-8, JSON, collector off)", args.repeat,
          lambda: read_json(raw, max_bytes=10**9))
    timed("read + verify, as `fairslot draw verify` does", args.repeat,
          lambda: verify_document(read_json(raw, max_bytes=10**9), trust=trust))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def _swap(pair: tuple[Any, Any]) -> tuple[Any, Any]:
    frozen, statement = pair
    return statement, frozen


if __name__ == "__main__":
    main()

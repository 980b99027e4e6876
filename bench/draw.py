"""Time the draw and its verification at city scale: 1,000,000 entries over 10,000 sessions.

Sessions get 10-50 slots each; their popularity follows a Zipf-like law, so the hot ones are
heavily oversubscribed and the cold ones go partly unclaimed, and each entry ranks 1 to 3
distinct sessions drawn by popularity. Run: ``python bench/draw.py [--entries N]``.

Printed figures are seconds measured in this run: wall clock (best and median of the
repeats) and the process's CPU time (best), with the load average before and after."""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from itertools import accumulate

from fairslot.domain.draw import (
    Entry,
    Round,
    commitment,
    entries_digest,
    export_round,
    new_seed,
    run_draw,
    verify_round,
)


def build_round(entries: int, sessions: int, rng: random.Random) -> tuple[
        list[Entry], dict[str, int]]:
    ids = [f"s{n:05d}" for n in range(sessions)]
    capacities = {sid: rng.randint(10, 50) for sid in ids}
    # Zipf-like popularity: session k is chosen about 1/(k+1) as often as the most popular.
    cumulative = list(accumulate(1.0 / (k + 1) for k in range(sessions)))
    wanted = rng.choices(ids, cum_weights=cumulative, k=entries * 3)
    made: list[Entry] = []
    for n in range(entries):
        how_many = rng.choice((1, 1, 2, 2, 3))
        picks = tuple(dict.fromkeys(wanted[3 * n:3 * n + how_many]))
        made.append(Entry(f"e{rng.getrandbits(64):016x}", picks))
    return made, capacities


def timed(label: str, repeat: int, work: Callable[[], object]) -> object:
    samples: list[float] = []
    cpu: list[float] = []
    result: object = None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = work()
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    # CPU time next to wall time: on a shared machine the gap shows how much of the wall
    # time was spent waiting for a core.
    print(f"{label:<44} wall best {min(samples):6.2f} s  median "
          f"{statistics.median(samples):6.2f} s  | CPU best {min(cpu):6.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rng = random.Random(20261123)
    entries, capacities = build_round(args.entries, args.sessions, rng)
    slots = sum(capacities.values())
    print(f"{len(entries):,} entries, {len(capacities):,} sessions, {slots:,} slots")

    seed = new_seed()
    result = run_draw(seed, entries, capacities, "beacon")
    demand: dict[str, int] = {}
    for entry in entries:
        demand[entry.choices[0]] = demand.get(entry.choices[0], 0) + 1
    hot = sum(1 for sid, cap in capacities.items() if demand.get(sid, 0) > cap)
    print(f"{len(result.winners):,} winners, {len(result.waitlist):,} waitlisted, "
          f"{hot:,} sessions oversubscribed by first choices")

    timed("draw (validate, hash, sort, allocate)", args.repeat,
          lambda: run_draw(seed, entries, capacities, "beacon"))
    digest = timed("entries digest", args.repeat, lambda: entries_digest(entries))
    assert isinstance(digest, str)
    doc = export_round(Round(
        round_id="bench", capacities=capacities, entries=tuple(entries),
        commitment=commitment(seed), entries_digest=digest, beacon="beacon", seed=seed,
        result=result, parameters={"max_choices": 3},
    ))
    text = json.dumps(doc, separators=(",", ":"))
    print(f"round document: {len(text) / 1e6:.1f} MB of JSON")
    verdict = timed("verify (document dict -> OK/FAIL)", args.repeat,
                    lambda: verify_round(doc))
    print(f"  verdict: {verdict.summary() if hasattr(verdict, 'summary') else verdict}")
    timed("json.loads of the document", args.repeat, lambda: json.loads(text))
    timed("verify from JSON text (loads + verify)", args.repeat,
          lambda: verify_round(json.loads(text)))
    # What `fairslot draw verify` does: it keeps the collector off while parsing.
    gc.disable()
    timed("json.loads, collector off as in the CLI", args.repeat, lambda: json.loads(text))
    timed("loads + verify, collector off as in the CLI", args.repeat,
          lambda: verify_round(json.loads(text)))
    gc.enable()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

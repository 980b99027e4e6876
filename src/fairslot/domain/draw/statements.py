"""The signed statements of a ``fairslot-round/2`` round and the round document.

A round publishes three statements, each signed with the hospital's draw key when it is
made, and the document gathers them:

1. **opening** (window opens): the commitment to the seed, the capacities, the chain and
   the beacon round fixed in advance (the first round at or after ``closes_at`` plus
   ``beacon_delay`` seconds);
2. **freeze** (window closes): the root and size of the frozen entry list, bound to the
   opening by its digest;
3. **result** (after the beacon): the beacon's randomness, the revealed seed and the digest
   of the results, bound to the opening and the root.

The draw key is ``K = SHA-256(seed ‖ root ‖ randomness)``: it depends on the list frozen
before the beacon, the seed committed at the opening, and a beacon nobody here chooses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from fairslot.domain.draw.allocation import DrawResult, _draw_with_keys, frozen_round_key
from fairslot.domain.draw.allocation import stream_keys as _stream_keys
from fairslot.domain.draw.beacon import Beacon, Chain, utc_seconds, verify_beacon
from fairslot.domain.draw.entries import MAX_CHOICES, _collector_paused
from fairslot.domain.draw.frozen import IN, FrozenEntry, FrozenList
from fairslot.domain.draw.receipts import rfc3339
from fairslot.domain.draw.seed import commitment
from fairslot.domain.draw.signing import DrawKey, canonical_json, digest
from fairslot.domain.errors import Conflict, InvalidInput

__all__ = [
    "FORMAT2",
    "FREEZE_TYPE",
    "OPENING_TYPE",
    "RESULT_TYPE",
    "draw_frozen_list",
    "draw_statement",
    "freeze_statement",
    "frozen_entry",
    "opening_statement",
    "results_digest",
    "results_json",
    "round_document",
    "winner_lines",
]

FORMAT2 = "fairslot-round/2"
OPENING_TYPE = "fairslot-opening/2"
FREEZE_TYPE = "fairslot-freeze/2"
RESULT_TYPE = "fairslot-result/2"


def opening_statement(key: DrawKey, *, round_id: str, opens_at: dt.datetime,
                      closes_at: dt.datetime, seed: bytes, capacities: Mapping[str, int],
                      chain: Chain, beacon_delay: int = 0,
                      max_choices: int = MAX_CHOICES) -> dict[str, Any]:
    """The signed opening of a round. The beacon round is computed here, from the close and
    the chain's genesis and period, and is part of what is signed."""
    if closes_at <= opens_at:
        raise InvalidInput("a round closes after it opens", code="bad_window")
    if beacon_delay < 0:
        raise InvalidInput("the beacon delay is not negative", code="bad_window")
    close = utc_seconds(closes_at)
    return key.sign({
        "type": OPENING_TYPE, "round_id": round_id, "opens_at": rfc3339(opens_at),
        "closes_at": rfc3339(dt.datetime.fromtimestamp(close, dt.UTC)),
        "commitment": commitment(seed), "capacities": dict(capacities),
        "max_choices": max_choices, "chain": chain.to_json(), "beacon_delay": beacon_delay,
        "beacon_round": chain.first_round_at_or_after(close + beacon_delay)})


def freeze_statement(key: DrawKey, opening: Mapping[str, Any], entries: Iterable[FrozenEntry],
                     frozen_at: dt.datetime) -> tuple[FrozenList, dict[str, Any]]:
    """Freeze the entry list at the close: every entry with its status, sorted by ref,
    rooted and signed. Refused before the close (entries could still come in)."""
    if rfc3339(frozen_at) < opening["closes_at"]:
        raise Conflict("the list is frozen when the window has closed", code="window_open")
    frozen = FrozenList.freeze(list(entries), opening["capacities"], opening["max_choices"])
    statement = key.sign({
        "type": FREEZE_TYPE, "round_id": opening["round_id"], "opening": digest(opening),
        "root": frozen.root.hex(), "size": frozen.size, "drawn": len(frozen.drawn_refs),
        "frozen_at": rfc3339(frozen_at)})
    return frozen, statement


def results_json(result: DrawResult) -> dict[str, list[str]]:
    """The results as the document lists them: ``"ref session rank"`` per winner and the
    waitlist's refs, both in draw order."""
    return {"winners": [f"{a.ref} {a.session} {a.rank}" for a in result.winners.values()],
            "waitlist": list(result.waitlist)}


def draw_statement(key: DrawKey, opening: Mapping[str, Any], freeze: Mapping[str, Any],
                   frozen: FrozenList, beacon: Beacon, seed: bytes, drawn_at: dt.datetime,
                   ) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Draw a frozen round once the beacon of its stated round is in; returns the results
    (``results_json``'s form) and the signed result statement.

    Refuses a beacon of another round or one that is not the chain's signature, and a seed
    that is not the committed one: nothing else can go into the key."""
    chain = Chain.from_json(opening["chain"])
    if beacon.round != opening["beacon_round"]:
        raise Conflict(f"this round's beacon is round {opening['beacon_round']}, not "
                       f"{beacon.round}", code="wrong_beacon_round")
    if not verify_beacon(chain, beacon):
        raise Conflict("the beacon is not the chain's signature for its round",
                       code="bad_beacon")
    if commitment(seed) != opening["commitment"]:
        raise Conflict("the seed is not the one committed at the opening", code="bad_seed")
    if freeze["root"] != frozen.root.hex() or freeze["opening"] != digest(opening):
        raise Conflict("the frozen list is not the one the freeze statement signed",
                       code="frozen_list_mismatch")
    results = draw_frozen_list(frozen, seed, beacon)
    statement = key.sign({
        "type": RESULT_TYPE, "round_id": opening["round_id"], "opening": digest(opening),
        "root": frozen.root.hex(), "beacon_round": beacon.round,
        "randomness": beacon.randomness.hex(), "seed": seed.hex(),
        "results": results_digest(results), "drawn_at": rfc3339(drawn_at)})
    return results, statement


def draw_frozen_list(frozen: FrozenList, seed: bytes, beacon: Beacon) -> dict[str, list[str]]:
    """The results of a frozen list under a seed and a beacon (no checks: see
    ``draw_statement``)."""
    key_bytes = frozen_round_key(seed, frozen.root, beacon.randomness)
    with _collector_paused():
        outcome = _draw_with_keys(_stream_keys(key_bytes, len(frozen.drawn_refs)),
                                  frozen.drawn_refs, frozen.prepared)
        return {"winners": winner_lines(outcome.refs, outcome.sessions, outcome.ranks),
                "waitlist": outcome.waitlist}


def winner_lines(refs: list[str], sessions: list[str], ranks: list[int]) -> list[str]:
    """``"<ref> <session> <rank>"`` per award, in one C-level pass."""
    return list(map(" ".join, zip(refs, sessions, map(str, ranks), strict=True)))


# Printable ASCII but for the two characters JSON escapes (``"`` and ``\``).
_PLAIN = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def results_digest(results: Mapping[str, list[str]]) -> str:
    """SHA-256 (hex) of the canonical JSON of the results object.

    A million winners are joined into the canonical JSON directly, which is what
    ``json.dumps`` would write for lists of strings that need no escaping (checked in one
    pass); anything else goes through ``canonical_json``."""
    if set(results) == {"winners", "waitlist"}:
        parts: list[tuple[str, bytes]] = []
        for name in ("waitlist", "winners"):  # sorted keys
            values = results[name]
            if not isinstance(values, list) or not set(map(type, values)) <= {str}:
                break
            try:
                raw = '","'.join(values).encode("ascii")
            except UnicodeEncodeError:
                break
            if values and raw.translate(None, _PLAIN) != b'"' * (2 * len(values) - 2):
                break
            parts.append((name, raw))
        else:
            # Fed to the hash piece by piece: the same bytes without copying the lists' text.
            hashed = hashlib.sha256(b"{")
            for number, (name, raw) in enumerate(parts):
                hashed.update(f'{"," if number else ""}"{name}":['.encode("ascii"))
                if results[name]:
                    hashed.update(b'"')
                    hashed.update(raw)
                    hashed.update(b'"')
                hashed.update(b"]")
            hashed.update(b"}")
            return hashed.hexdigest()
    return hashlib.sha256(canonical_json(dict(results))).hexdigest()


def round_document(*, hospital_key: str, opening: Mapping[str, Any],
                   frozen: FrozenList | None = None, freeze: Mapping[str, Any] | None = None,
                   beacon: Beacon | None = None, results: Mapping[str, list[str]] | None = None,
                   result: Mapping[str, Any] | None = None,
                   parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The round document at whatever stage the round is (see docs/draw.md)."""
    return {
        "format": FORMAT2, "round_id": opening["round_id"], "hospital_key": hospital_key,
        "parameters": dict(parameters or {}), "opening": dict(opening),
        "entries": None if frozen is None else list(frozen.leaves),
        "freeze": None if freeze is None else dict(freeze),
        "beacon": None if beacon is None else beacon.to_json(),
        "results": None if results is None else dict(results),
        "result": None if result is None else dict(result),
    }


def frozen_entry(ref: str, seq: int, choices: Iterable[str], *, withdrawn: bool = False,
                 excluded: str | None = None) -> FrozenEntry:
    """One entry as the close found it (a convenience for callers building the list)."""
    status = "excluded" if excluded else ("withdrawn" if withdrawn else IN)
    return FrozenEntry(ref, seq, status, tuple(choices), excluded)

"""The verifier of ``fairslot-round/2`` documents, receipts, inclusion proofs and logs.

``verify_document`` recomputes everything a round document claims, in the order of
``docs/draw.md``: its shape (the JSON Schema in ``schemas/``, then the rules a schema
cannot say), the hospital's signatures, the chain (trusted, and the beacon round the one
fixed at the opening), the frozen list's root, the beacon's BLS signature, the seed
against the commitment, and the draw itself. It never raises for a bad document.

``read_json`` turns untrusted bytes into a JSON value or a ``MalformedRound`` with one
line saying why: not UTF-8, not JSON, nested too deep, a duplicate key, a number with a
fraction or exponent, a string with a lone surrogate, or more bytes than allowed.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fairslot.domain.draw.allocation import _draw_with_keys, frozen_round_key, stream_keys
from fairslot.domain.draw.beacon import (
    LOE_DEFAULT,
    LOE_QUICKNET,
    Beacon,
    Chain,
    utc_seconds,
    verify_beacon,
)
from fairslot.domain.draw.entries import MalformedRound, _check_capacities, _collector_paused
from fairslot.domain.draw.frozen import FrozenList, parse_leaf
from fairslot.domain.draw.receipts import check_receipt_against_list
from fairslot.domain.draw.seed import commitment
from fairslot.domain.draw.signing import digest, verify_signed
from fairslot.domain.draw.statements import results_digest, winner_lines
from fairslot.domain.errors import InvalidInput

__all__ = [
    "DEFAULT_TRUST",
    "Report",
    "Trust",
    "check_shape",
    "read_json",
    "verify_document",
]


@dataclass(frozen=True)
class Trust:
    """The chains a verifier accepts beacons from: by chain hash (all parameters pinned) or
    by public key (the document's genesis and period, which the hospital signed, are then
    taken as stated)."""

    chains: Mapping[str, Chain] = field(default_factory=dict)
    keys: frozenset[str] = frozenset()

    def with_keys(self, values: Iterable[str]) -> Trust:
        """Add chain hashes (64 hex digits) or public keys (96 or 192) given by a user."""
        keys = set(self.keys)
        for value in values:
            keys.add(value.lower())
        return Trust(self.chains, frozenset(keys))

    def accepts(self, chain: Chain) -> bool:
        pinned = self.chains.get(chain.hash.hex())
        if pinned is not None:
            return pinned == chain
        return chain.hash.hex() in self.keys or chain.public_key.hex() in self.keys


#: What ``fairslot draw verify`` trusts without being told: the League of Entropy's chains.
DEFAULT_TRUST = Trust({c.hash.hex(): c for c in (LOE_QUICKNET, LOE_DEFAULT)})


@dataclass(frozen=True)
class Report:
    """What a verification found. ``status`` is ``ok`` (drawn, everything checks out),
    ``pending`` (everything present checks out, the round is not drawn yet), ``fail`` (a
    check failed: ``reasons``) or ``malformed`` (the document cannot be read: ``reasons[0]``).
    ``notes`` are what the receipt and proof checks found when they passed."""

    status: str
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    summary: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# --- reading untrusted JSON ------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedRound(f"the key {_show(key)} appears twice in one object")
            seen.add(key)
    return result


def _no_float(text: str) -> Any:
    raise MalformedRound(f"the number {text[:40]} is not a whole number; numbers in these "
                         "documents are integers without fraction or exponent")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_json(raw: bytes, *, max_bytes: int) -> Any:
    """Parse untrusted bytes as JSON, or raise ``MalformedRound`` with one line saying why."""
    if len(raw) > max_bytes:
        raise MalformedRound(f"the file is {len(raw):,} bytes, more than the {max_bytes:,} "
                             "this command reads")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRound(f"the file is not UTF-8 text (byte {exc.start})") from None
    # A big document is millions of small objects, none of them cyclic garbage: the cyclic
    # collector's walks over them would cost about as much as the parsing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_no_float,
                           parse_constant=_no_float)
    except json.JSONDecodeError as exc:
        raise MalformedRound(f"not valid JSON: {exc.msg} at line {exc.lineno} column "
                             f"{exc.colno}") from None
    except RecursionError:
        raise MalformedRound("the JSON is nested too deeply") from None
    finally:
        if was_enabled:
            gc.enable()
    # A lone surrogate can only come from a \\u escape (UTF-8 cannot encode one), so the
    # strings are only walked when the text holds a surrogate escape at all.
    if _SURROGATE_ESCAPE.search(text) is not None and _lone_surrogates(value):
        raise MalformedRound("a string holds a lone surrogate (such as \\ud800), which is "
                             "not Unicode text")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@functools.cache
def _validator(name: str) -> Any:
    import jsonschema_rs

    text = resources.files("fairslot.domain.draw").joinpath(f"schemas/{name}.schema.json")
    return jsonschema_rs.validator_for(json.loads(text.read_text(encoding="utf-8")))


def check_shape(value: Any, schema: str) -> None:
    """Raise ``MalformedRound`` naming the first place where ``value`` breaks the JSON
    Schema ``schema`` (``round``, ``receipt``, ``inclusion`` or ``log``)."""
    validator = _validator(schema)
    try:
        if validator.is_valid(value):
            return
        error = next(iter(validator.iter_errors(value)))
    except UnicodeEncodeError:
        raise MalformedRound("a string holds a lone surrogate (such as \\ud800), which is "
                             "not Unicode text") from None
    except (OverflowError, ValueError) as exc:
        raise MalformedRound(f"a value cannot be read: {str(exc)[:120]}") from None
    where = "/".join(str(p) for p in error.instance_path) or "the document"
    # Quote long values shortly, so that the rule broken stays in view.
    message = _LONG_QUOTE.sub(lambda m: m.group(1) + '..."', str(error.message))
    if len(message) > 200:
        message = message[:197] + "..."
    raise MalformedRound(f"{where}: {message}")


_LONG_QUOTE = re.compile(r'("[^"]{30})[^"]{10,}"')


def _lone_surrogates(value: Any) -> bool:
    """Whether a string anywhere in ``value`` is not Unicode text (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(map(_lone_surrogates, value)) or any(map(_lone_surrogates, value.values()))
    if isinstance(value, list):
        return any(map(_lone_surrogates, value))
    return False


def _floats(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(map(_floats, value.values()))
    if isinstance(value, list):
        return any(map(_floats, value))
    return False


# --- the round document ----------------------------------------------------------------------


class _Fail(Exception):
    """A failed check that makes the remaining ones meaningless."""


def verify_document(doc: Any, *, trust: Trust = DEFAULT_TRUST,
                    receipt: Any = None, proof: Any = None) -> Report:
    """Check a round document (and optionally a receipt and an inclusion proof against it).
    Never raises for bad input: a ``malformed`` report names the problem."""
    with _collector_paused():
        try:
            return _verify(doc, trust, receipt, proof)
        except InvalidInput as exc:
            return Report("malformed", (str(exc),))


def _verify(doc: Any, trust: Trust, receipt: Any, proof: Any) -> Report:
    check_shape(doc, "round")
    if receipt is not None:
        check_shape(receipt, "receipt")
    if proof is not None:
        check_shape(proof, "inclusion")
    if _lone_surrogates(doc["parameters"]):
        raise MalformedRound("parameters: a string holds a lone surrogate (such as \\ud800), "
                             "which is not Unicode text")
    for part in ("opening", "freeze", "beacon", "result"):
        if _floats(doc[part]):
            raise MalformedRound(f"{part}: numbers are integers")
    stage = _stage(doc)
    opening = doc["opening"]
    _check_capacities(opening["capacities"])
    key = doc["hospital_key"]
    reasons: list[str] = []
    notes: list[str] = []
    round_id = doc["round_id"]

    # 1. The opening: signed, about this round, with the beacon round its chain implies.
    if opening["round_id"] != round_id:
        reasons.append(f"the opening is for round {opening['round_id']!r}, not {round_id!r}")
    if not verify_signed(opening, key):
        reasons.append("the opening statement's signature is not the hospital's key's: the "
                       "commitment, capacities or beacon round were altered")
    if opening["opens_at"] >= opening["closes_at"]:
        reasons.append("the window closes before it opens")
    try:
        chain = Chain.from_json(opening["chain"])
    except ValueError as exc:
        return Report("fail", (*reasons, f"the chain: {exc}"))
    if not trust.accepts(chain):
        reasons.append(f"the beacon chain {chain.hash.hex()} (public key "
                       f"{chain.public_key.hex()[:24]}...) is not one this verifier trusts; "
                       "trust it explicitly with --chain-key if you know it")
    close = utc_seconds(dt.datetime.strptime(opening["closes_at"], "%Y-%m-%dT%H:%M:%S%z"))
    expected_round = chain.first_round_at_or_after(close + opening["beacon_delay"])
    if opening["beacon_round"] != expected_round:
        reasons.append(f"the opening names beacon round {opening['beacon_round']}, but the "
                       f"first round of the chain at or after the close plus "
                       f"{opening['beacon_delay']} s is {expected_round}")
    opening_digest = digest(opening)

    # 2. The frozen list and its signed root.
    frozen: FrozenList | None = None
    freeze = doc["freeze"]
    if stage >= 1:
        frozen = FrozenList.from_leaves(doc["entries"], opening["capacities"],
                                        opening["max_choices"])
        reasons.extend(_check_freeze(freeze, frozen, round_id, opening_digest, key, chain,
                                     opening))
    if receipt is not None:
        found = check_receipt_against_list(receipt, round_id=round_id, opening=opening_digest,
                                           hospital_key=key, frozen=frozen)
        (notes if found.ok else reasons).append(f"receipt: {found.message}")
    if proof is not None:
        message = _check_proof(proof, frozen, round_id)
        (notes if message.startswith("the proof shows") else reasons).append(
            f"inclusion proof: {message}")
    if reasons:
        return Report("fail", tuple(reasons), tuple(notes))
    assert chain is not None
    if stage == 0:
        return Report("pending", (), tuple(notes),
                      f"round {round_id} is open until {opening['closes_at']}; its draw will "
                      f"use beacon round {opening['beacon_round']}")
    assert frozen is not None

    # 3. The beacon of the stated round, signed by the chain.
    if stage == 1:
        return Report("pending", (), tuple(notes),
                      f"round {round_id} is frozen ({frozen.size} entries, "
                      f"{len(frozen.drawn_refs)} drawn, root {frozen.root.hex()}); waiting "
                      f"for beacon round {opening['beacon_round']} of chain "
                      f"{chain.hash.hex()[:16]}...")
    raw = doc["beacon"]
    beacon = Beacon(raw["round"], bytes.fromhex(raw["signature"]),
                    None if raw["previous_signature"] is None
                    else bytes.fromhex(raw["previous_signature"]))
    if beacon.round != opening["beacon_round"]:
        return Report("fail", (f"the beacon is of round {beacon.round}, but the opening fixed "
                               f"round {opening['beacon_round']}",), tuple(notes))
    if not verify_beacon(chain, beacon):
        return Report("fail", (f"the beacon of round {beacon.round} is not the chain's "
                               "signature: it was not produced by the chain",), tuple(notes))
    if stage == 2:
        return Report("pending", (), tuple(notes),
                      f"round {round_id} is frozen and its beacon (round {beacon.round}) is "
                      "in; the draw is not published yet")

    # 4. The signed result: the seed, the beacon's randomness, the results' digest.
    result, results = doc["result"], doc["results"]
    seed = bytes.fromhex(result["seed"])
    for problem in (
        None if verify_signed(result, key) else "the result statement's signature is not "
        "the hospital's key's",
        None if result["round_id"] == round_id else "the result is for another round",
        None if result["opening"] == opening_digest else "the result names another opening",
        None if result["root"] == frozen.root.hex() else "the result names another root than "
        "the frozen list's",
        None if result["beacon_round"] == beacon.round else "the result names another beacon "
        "round",
        None if result["randomness"] == beacon.randomness.hex() else "the result's randomness "
        "is not SHA-256 of the beacon's signature",
        None if commitment(seed) == opening["commitment"] else
        f"the seed does not match the commitment: SHA-256(seed) is {commitment(seed)}, the "
        f"commitment is {opening['commitment']}",
        None if results_digest(results) == result["results"] else "the results do not hash "
        "to the digest the result statement signed",
        None if result["drawn_at"] >= freeze["frozen_at"] else "the result is dated before the "
        "freeze",
    ):
        if problem is not None:
            reasons.append(problem)

    # 5. The draw, recomputed.
    key_bytes = frozen_round_key(seed, frozen.root, beacon.randomness)
    computed = _draw_with_keys(stream_keys(key_bytes, len(frozen.drawn_refs)),
                               frozen.drawn_refs, frozen.prepared)
    computed_winners = winner_lines(computed.refs, computed.sessions, computed.ranks)
    if computed_winners != results["winners"] or computed.waitlist != results["waitlist"]:
        # Only results that differ from the recomputed draw are taken apart, to explain.
        stated_winners = [w.split(" ") for w in results["winners"]]
        reasons.extend(_differences(results, computed_winners, computed.waitlist,
                                    stated_winners, frozen, opening["capacities"]))
    if reasons:
        return Report("fail", tuple(reasons), tuple(notes))
    if receipt is not None:
        notes.append(_outcome_of(receipt["ref"], computed.refs, computed.sessions,
                                 computed.ranks, computed.waitlist, frozen))
    return Report("ok", (), tuple(notes),
                  f"round {round_id}: {frozen.size} entries ({len(frozen.drawn_refs)} drawn), "
                  f"{len(opening['capacities'])} sessions, {len(computed.refs)} winners, "
                  f"{len(computed.waitlist)} on the waitlist; signatures, frozen root, beacon "
                  f"round {beacon.round} of chain {chain.hash.hex()[:16]}..., seed and results "
                  "all check out")


def _stage(doc: Mapping[str, Any]) -> int:
    """0 open, 1 frozen, 2 beacon in, 3 drawn; a document whose parts do not form one of
    these stages is malformed."""
    present = (doc["entries"] is not None, doc["freeze"] is not None,
               doc["beacon"] is not None, doc["results"] is not None, doc["result"] is not None)
    stages = {(False,) * 5: 0, (True, True, False, False, False): 1,
              (True, True, True, False, False): 2, (True,) * 5: 3}
    stage = stages.get(present)
    if stage is None:
        raise MalformedRound("entries and freeze, then beacon, then results and result are "
                             "filled in together and in this order; this document mixes "
                             "stages")
    return stage


def _check_freeze(freeze: Mapping[str, Any], frozen: FrozenList, round_id: str,
                  opening_digest: str, key: str, chain: Chain,
                  opening: Mapping[str, Any]) -> list[str]:
    reasons = []
    if not verify_signed(freeze, key):
        reasons.append("the freeze statement's signature is not the hospital's key's")
    if freeze["round_id"] != round_id or freeze["opening"] != opening_digest:
        reasons.append("the freeze statement is not about this round's opening")
    if freeze["root"] != frozen.root.hex():
        reasons.append(f"the entries do not match the signed frozen root: they hash to "
                       f"{frozen.root.hex()}, the freeze statement says {freeze['root']}")
    if freeze["size"] != frozen.size or freeze["drawn"] != len(frozen.drawn_refs):
        reasons.append(f"the freeze statement counts {freeze['size']} entries ({freeze['drawn']}"
                       f" drawn); the list has {frozen.size} ({len(frozen.drawn_refs)} drawn)")
    if freeze["frozen_at"] < opening["closes_at"]:
        reasons.append("the list was frozen before the window closed")
    beacon_time = dt.datetime.fromtimestamp(chain.round_time(opening["beacon_round"]), dt.UTC)
    if freeze["frozen_at"] >= beacon_time.strftime("%Y-%m-%dT%H:%M:%SZ"):
        reasons.append(f"the list was frozen at {freeze['frozen_at']}, when beacon round "
                       f"{opening['beacon_round']} could already be known: the freeze must "
                       "come first")
    return reasons


def _check_proof(proof: Mapping[str, Any], frozen: FrozenList | None, round_id: str) -> str:
    from fairslot.domain.draw.frozen import InclusionProof

    if frozen is None:
        return "the round is not frozen yet; there is no root to check it against"
    if proof["round_id"] != round_id:
        return f"it is for round {proof['round_id']!r}, not {round_id!r}"
    claim = InclusionProof(proof["round_id"], proof["leaf"], proof["index"], proof["size"],
                           tuple(bytes.fromhex(p) for p in proof["path"]),
                           bytes.fromhex(proof["root"]))
    if claim.root != frozen.root or claim.size != frozen.size:
        return "it is against another root or size than the document's frozen list"
    if not claim.holds():
        return "its path does not lead from the leaf to the root"
    parse_leaf(claim.leaf, max_choices=10**6)
    return (f"the proof shows '{claim.leaf}' at position {claim.leaf_index} of {claim.size} in "
            "the frozen list")


def _differences(results: Mapping[str, list[str]], computed_winners: list[str],
                 computed_waitlist: list[str], stated: list[list[str]], frozen: FrozenList,
                 capacities: Mapping[str, int]) -> list[str]:
    reasons: list[str] = []
    chosen = dict(zip(frozen.drawn_refs, frozen.drawn_choices, strict=True))
    used: dict[str, int] = {}
    seen: set[str] = set()
    for ref, session, rank_text in stated:
        rank = int(rank_text)
        if ref not in chosen:
            reasons.append(f"winner {ref!r} is not among the drawn entries")
            break
        if ref in seen:
            reasons.append(f"entry {ref!r} wins more than once")
            break
        seen.add(ref)
        picks = chosen[ref]
        if not 1 <= rank <= len(picks) or picks[rank - 1] != session:
            reasons.append(f"winner {ref!r} is given {session!r} as choice {rank}, but its "
                           f"choices are {picks}")
            break
        used[session] = used.get(session, 0) + 1
    for session, count in sorted(used.items()):
        if count > capacities.get(session, 0):
            reasons.append(f"session {session!r} has {count} winners but capacity "
                           f"{capacities.get(session, 0)}")
            break
    waitlist = results["waitlist"]
    listed = seen.union(waitlist)
    if len(waitlist) != len(set(waitlist)) or seen.intersection(waitlist):
        reasons.append("an entry appears twice among winners and waitlist")
    elif listed != set(chosen):
        missing = sorted(set(chosen).difference(listed))
        if missing:
            reasons.append(f"entry {missing[0]!r} is neither a winner nor on the waitlist")
        stray = sorted(listed.difference(chosen))
        if stray:
            reasons.append(f"{stray[0]!r} is listed in the results but is not a drawn entry")
    for kind, a, b in (("winner", results["winners"], computed_winners),
                       ("waitlist", waitlist, computed_waitlist)):
        for n, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                reasons.append(f"{kind} #{n + 1} is {x!r} but the draw gives {y!r}")
                break
        else:
            if len(a) != len(b):
                reasons.append(f"the document lists {len(a)} {kind} places but the draw "
                               f"gives {len(b)}")
    return reasons


def _outcome_of(ref: str, refs: list[str], sessions: list[str], ranks: list[int],
                waitlist: list[str], frozen: FrozenList) -> str:
    if ref in refs:
        at = refs.index(ref)
        return (f"entry {ref!r} won session {sessions[at]} (choice {ranks[at]}), winner "
                f"#{at + 1} in draw order")
    if ref in waitlist:
        return f"entry {ref!r} is on the waitlist, place {waitlist.index(ref) + 1}"
    listed = frozen.entry(ref)
    status = "not in the list" if listed is None else listed.status
    return f"entry {ref!r} was not drawn ({status})"


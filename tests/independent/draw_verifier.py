"""A verifier of fairslot round documents written from docs/draw.md and docs/schemas/ alone.

It imports nothing from fairslot: only the standard library, ``cryptography`` (Ed25519),
``py_ecc`` (the drand beacon's BLS signature) and ``jsonschema_rs`` (the published JSON
Schemas). Its purpose is to show that the document is enough to check a draw: whoever
reads the specification gets the same answer as fairslot's own verifier, or the
specification is wrong.

``verify_round`` takes the round document (parsed, or its bytes), the chains it trusts,
and optionally receipts, inclusion proofs and the log of rounds; it answers with a
``Verdict``: ``ok`` with the recomputed winners and waitlist, ``pending`` for a round not
drawn yet, or the first problem found (``malformed`` or ``fail``) with a reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import pathlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jsonschema_rs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "schemas"
TOKEN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
SEQ = re.compile(r"[1-9][0-9]{0,9}")
STATUSES = ("in", "withdrawn", "excluded")
UNCHAINED = "bls-unchained-g1-rfc9380"
CHAINED = "pedersen-bls-chained"
DST_G1 = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
DST_G2 = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_"

# The League of Entropy's two chains, pinned by every parameter (draw.md, section 2).
LEAGUE_OF_ENTROPY: dict[str, dict[str, Any]] = {
    "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971": {
        "hash": "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
        "scheme": UNCHAINED,
        "public_key": "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c"
                      "8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb"
                      "5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
        "genesis_time": 1692803367, "period": 3,
        "genesis_seed": "f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e",
        "beacon_id": "quicknet"},
    "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce": {
        "hash": "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce",
        "scheme": CHAINED,
        "public_key": "868f005eb8e6e4ca0a47c8a77ceaa5309a47978a7c71bc5cce96366b5d7a5699"
                      "37c529eeda66c7293784a9402801af31",
        "genesis_time": 1595431050, "period": 30,
        "genesis_seed": "176f93498eac9ca337150b46d21dd58673ea4e3581185f869672e59fa4cb390a",
        "beacon_id": "default"},
}


@dataclasses.dataclass(frozen=True)
class Verdict:
    """``status`` is ``ok``, ``pending``, ``malformed`` or ``fail``; ``reason`` says why
    for anything but ``ok``; ``winners`` and ``waitlist`` are the recomputed draw, and
    ``order`` every drawn ref in draw order."""

    status: str
    reason: str = ""
    winners: tuple[str, ...] = ()
    waitlist: tuple[str, ...] = ()
    order: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Problem(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def malformed(reason: str) -> Problem:
    return Problem("malformed", reason)


def fail(reason: str) -> Problem:
    return Problem("fail", reason)


# -- reading ----------------------------------------------------------------------------

def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise malformed(f"the key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def _no_float(text: str) -> Any:
    raise malformed(f"the number {text} is not an integer")


def _no_constant(text: str) -> Any:
    raise malformed(f"{text} is not JSON")


def _check_text(value: Any) -> None:
    """No lone surrogates anywhere (I-JSON)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise malformed("a string holds a lone surrogate") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


def read_json(data: bytes) -> Any:
    """Parse UTF-8 I-JSON with integers only, as section 8, step 1 asks."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise malformed("the document is not UTF-8") from exc
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_no_float,
                           parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, Problem):
            raise
        raise malformed(f"the document is not JSON: {exc}") from exc
    _check_text(value)
    return value


def _schema(name: str) -> Any:
    return jsonschema_rs.validator_for(json.loads((SCHEMAS / name).read_text()))


_VALIDATORS: dict[str, Any] = {}


def check_schema(name: str, value: Any, what: str) -> None:
    if name not in _VALIDATORS:
        _VALIDATORS[name] = _schema(name)
    _check_numbers(value)
    error = next(iter(_VALIDATORS[name].iter_errors(value)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.instance_path) or what
        raise malformed(f"{where}: {error.message}")


def _check_numbers(value: Any) -> None:
    """Numbers are integers everywhere, parameters included (Conventions)."""
    if isinstance(value, float):
        raise malformed(f"the number {value!r} is not an integer")
    if isinstance(value, dict):
        for item in value.values():
            _check_numbers(item)
    elif isinstance(value, list):
        for item in value:
            _check_numbers(item)


# -- primitives -------------------------------------------------------------------------

def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def digest(statement: Mapping[str, Any]) -> str:
    """The digest of a signed statement: SHA-256 of its canonical JSON, signature included."""
    return sha256(canonical(statement)).hex()


def signed_by(statement: Mapping[str, Any], key_hex: str) -> bool:
    body = {k: v for k, v in statement.items() if k != "signature"}
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(statement["signature"]), canonical(body))
    except (InvalidSignature, ValueError):
        return False
    return True


def posix(time: str) -> int:
    return int(dt.datetime.strptime(time, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.UTC).timestamp())


def leaf_hash(line: str) -> bytes:
    return sha256(b"\x00" + line.encode("ascii"))


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 root over leaf hashes: split at the largest power of two below n."""
    n = len(hashes)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(merkle_root(hashes[:k]), merkle_root(hashes[k:]))


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while (fn & 1) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# -- the chain and its beacon ------------------------------------------------------------

def chain_hash(chain: Mapping[str, Any]) -> str:
    data = (chain["period"].to_bytes(4, "big")
            + chain["genesis_time"].to_bytes(8, "big", signed=True)
            + bytes.fromhex(chain["public_key"]) + bytes.fromhex(chain["genesis_seed"]))
    if chain["beacon_id"] not in ("", "default"):
        data += chain["beacon_id"].encode("ascii")
    return sha256(data).hex()


def beacon_round_of(chain: Mapping[str, Any], closes_at: str, delay: int) -> int:
    t = posix(closes_at) + delay
    genesis, period = chain["genesis_time"], chain["period"]
    if t <= genesis:
        return 1
    return int(-(-(t - genesis) // period) + 1)


def round_time(chain: Mapping[str, Any], r: int) -> int:
    return int(chain["genesis_time"]) + (r - 1) * int(chain["period"])


@functools.cache
def bls_verify(scheme: str, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """BLS verification on BLS12-381 with RFC 9380 hash-to-curve, as section 2 states
    (pure Python, a fraction of a second a check: answers are kept, the check is a pure
    function of its arguments)."""
    from py_ecc.bls.hash_to_curve import hash_to_G1, hash_to_G2
    from py_ecc.bls.point_compression import decompress_G1, decompress_G2
    from py_ecc.fields import optimized_bls12_381_FQ12 as FQ12
    from py_ecc.optimized_bls12_381.optimized_curve import (
        G1,
        G2,
        curve_order,
        is_inf,
        multiply,
        neg,
    )
    from py_ecc.optimized_bls12_381.optimized_pairing import final_exponentiate, pairing

    def g1(raw: bytes) -> Any:
        if len(raw) != 48:
            raise ValueError("not a compressed G1 point")
        point = decompress_G1(int.from_bytes(raw, "big"))  # type: ignore[arg-type]
        if is_inf(point) or not is_inf(multiply(point, curve_order)):
            raise ValueError("not in the G1 subgroup")
        return point

    def g2(raw: bytes) -> Any:
        if len(raw) != 96:
            raise ValueError("not a compressed G2 point")
        z = (int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
        point = decompress_G2(z)  # type: ignore[arg-type]
        if is_inf(point) or not is_inf(multiply(point, curve_order)):
            raise ValueError("not in the G2 subgroup")
        return point

    try:
        if scheme == UNCHAINED:
            sig, pk = g1(signature), g2(public_key)
            hm = hash_to_G1(message, DST_G1, hashlib.sha256)  # type: ignore[arg-type]
            product = (pairing(neg(G2), sig, final_exponentiate=False)
                       * pairing(pk, hm, final_exponentiate=False))
        else:
            sig2, pk1 = g2(signature), g1(public_key)
            hm2 = hash_to_G2(message, DST_G2, hashlib.sha256)  # type: ignore[arg-type]
            product = (pairing(sig2, neg(G1), final_exponentiate=False)
                       * pairing(hm2, pk1, final_exponentiate=False))
    except (ValueError, AssertionError):
        return False
    return bool(final_exponentiate(product) == FQ12.one())


def beacon_message(scheme: str, round_: int, previous: str | None) -> bytes:
    prefix = bytes.fromhex(previous) if scheme == CHAINED and previous else b""
    return sha256(prefix + round_.to_bytes(8, "big"))


# -- the frozen list ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Line:
    ref: str
    seq: int
    status: str
    choices: tuple[str, ...]
    reason: str


def parse_lines(entries: Sequence[str], capacities: Mapping[str, int],
                max_choices: int) -> list[Line]:
    """Section 3, every rule of a line and of the list's order."""
    lines: list[Line] = []
    previous: bytes | None = None
    for i, text in enumerate(entries):
        fields = text.split(" ")
        if len(fields) != 5:
            raise malformed(f"entries[{i}]: a line has exactly five fields")
        ref, seq, status, choices, reason = fields
        if not TOKEN.fullmatch(ref):
            raise malformed(f"entries[{i}]: the ref {ref!r} is not a token")
        if not SEQ.fullmatch(seq) or int(seq) > 2147483647:
            raise malformed(f"entries[{i}]: the seq {seq!r} is not 1 to 2147483647")
        if status not in STATUSES:
            raise malformed(f"entries[{i}]: the status {status!r} is unknown")
        sessions = choices.split(",")
        if not 1 <= len(sessions) <= max_choices:
            raise malformed(f"entries[{i}]: 1 to {max_choices} choices")
        if len(set(sessions)) != len(sessions):
            raise malformed(f"entries[{i}]: a session is chosen twice")
        for s in sessions:
            if s not in capacities:
                raise malformed(f"entry {ref!r} chooses session {s!r}, which is not in "
                                "the round")
        if (status == "excluded") != (reason != "-") or not TOKEN.fullmatch(reason):
            raise malformed(f"entries[{i}]: entry {ref!r}: an excluded entry, and only one, "
                            "states a reason")
        key = ref.encode("ascii")
        if previous is not None and key <= previous:
            raise malformed(f"entries are not in strictly ascending ref order at "
                            f"entries[{i}]")
        previous = key
        lines.append(Line(ref, int(seq), status, tuple(sessions), reason))
    return lines


# -- the draw -------------------------------------------------------------------------------

def draw(seed: bytes, root: bytes, randomness: bytes, lines: Sequence[Line],
         capacities: Mapping[str, int]) -> tuple[list[str], list[str], list[str]]:
    """Section 4: the round key, the SHAKE-256 stream, the order, serial dictatorship."""
    k = sha256(seed + root + randomness)
    drawn = [line for line in lines if line.status == "in"]
    stream = hashlib.shake_256(k).digest(32 * len(drawn))
    keys = [stream[32 * i:32 * i + 32] for i in range(len(drawn))]
    order = sorted(range(len(drawn)), key=lambda i: (keys[i], drawn[i].ref.encode()))
    room = dict(capacities)
    ranked = [drawn[i].ref for i in order]
    winners: list[str] = []
    waitlist: list[str] = []
    for i in order:
        line = drawn[i]
        for rank, session in enumerate(line.choices, start=1):
            if room[session] > 0:
                room[session] -= 1
                winners.append(f"{line.ref} {session} {rank}")
                break
        else:
            waitlist.append(line.ref)
    return winners, waitlist, ranked


# -- receipts and proofs ----------------------------------------------------------------------

def check_receipt(receipt: Mapping[str, Any], doc: Mapping[str, Any],
                  by_ref: Mapping[str, Line] | None) -> None:
    """Section 6, in its order: key, signature, round, opening; then the line."""
    check_schema("receipt.schema.json", receipt, "the receipt")
    if receipt["hospital_key"] != doc["hospital_key"]:
        raise fail("the receipt is signed by another key than the round's")
    if not signed_by(receipt, receipt["hospital_key"]):
        raise fail("the receipt's signature is not the hospital's key's")
    if receipt["round_id"] != doc["round_id"]:
        raise fail("the receipt is of another round")
    if receipt["opening"] != digest(doc["opening"]):
        raise fail("the receipt names another opening than the round's")
    if by_ref is None:
        return
    ref = receipt["ref"]
    line = by_ref.get(ref)
    if line is None:
        raise fail(f"the entry {ref!r} of the receipt is not in the frozen list: dropped")
    if line.seq < receipt["seq"]:
        raise fail(f"the entry {ref!r} is listed at seq {line.seq}, the receipt has "
                   f"{receipt['seq']}: a later write was dropped")
    if line.seq > receipt["seq"]:
        return
    if receipt["kind"] == "withdrawal":
        if line.status != "withdrawn":
            raise fail(f"the entry {ref!r} withdrew, but is listed {line.status}")
    elif line.status not in ("in", "excluded") or line.choices != tuple(receipt["choices"]):
        raise fail(f"the entry {ref!r} is listed {line.status} with "
                   f"{','.join(line.choices)}, the receipt says {receipt['kind']} with "
                   f"{','.join(receipt['choices'])}")


def check_proof(proof: Mapping[str, Any], doc: Mapping[str, Any]) -> None:
    check_schema("inclusion.schema.json", proof, "the proof")
    freeze = doc["freeze"]
    if proof["round_id"] != doc["round_id"]:
        raise fail("the proof is of another round")
    if proof["root"] != freeze["root"] or proof["size"] != freeze["size"]:
        raise fail("the proof's root or size is not the freeze statement's")
    if not verify_inclusion(leaf_hash(proof["leaf"]), proof["index"], proof["size"],
                            [bytes.fromhex(p) for p in proof["path"]],
                            bytes.fromhex(proof["root"])):
        raise fail(f"the proof does not put {proof['leaf']!r} under the signed root")


# -- the log ----------------------------------------------------------------------------------

def check_log(log: Mapping[str, Any], doc: Mapping[str, Any]) -> None:
    """Section 7: a whole log whose checkpoint is signed by the round's key, whose records
    hash to the checkpoint's root, and which holds the round's three records."""
    check_schema("log.schema.json", log, "the log")
    if log.get("format") != "fairslot-log/2":
        raise malformed("the log is not a whole log (fairslot-log/2)")
    checkpoint = log["checkpoint"]
    if checkpoint["key"] != doc["hospital_key"]:
        raise fail("the log's checkpoint is signed by another key than the round's")
    if not signed_by(checkpoint, checkpoint["key"]):
        raise fail("the log's checkpoint signature is not its key's")
    records = log["records"]
    if checkpoint["size"] != len(records):
        raise fail("the log's checkpoint size is not its number of records")
    root = merkle_root([sha256(b"\x00" + canonical(r)) for r in records])
    if root.hex() != checkpoint["root"]:
        raise fail("the log's records do not hash to its checkpoint's root")
    opening = digest(doc["opening"])
    wanted = [{"type": "fairslot-log-record/2", "kind": "opened", "round_id": doc["round_id"],
               "opening": opening}]
    if doc["freeze"] is not None:
        wanted.append({"type": "fairslot-log-record/2", "kind": "frozen",
                       "round_id": doc["round_id"], "opening": opening,
                       "root": doc["freeze"]["root"], "size": doc["freeze"]["size"]})
    if doc["result"] is not None:
        wanted.append({"type": "fairslot-log-record/2", "kind": "drawn",
                       "round_id": doc["round_id"],
                       "commitment": doc["opening"]["commitment"],
                       "root": doc["result"]["root"], "results": doc["result"]["results"]})
    for record in wanted:
        if record not in records:
            raise fail(f"the log has no {record['kind']} record of round {doc['round_id']}")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    path = list(proof)
    if first & (first - 1) == 0:
        path = [first_root, *path]
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while (fn & 1) == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def audit(old: Mapping[str, Any], new: Mapping[str, Any]) -> Verdict:
    """Section 7, ``fairslot draw audit OLD NEW``: OLD a checkpoint, NEW a checkpoint with
    a consistency proof from OLD's size (or the whole log); ``ok`` when NEW extends OLD."""
    try:
        check_schema("log.schema.json", old, "the old checkpoint")
        check_schema("log.schema.json", new, "the new log")
        if "format" in old:
            old = old["checkpoint"]
        cp = new["checkpoint"] if "format" in new else new
        for checkpoint in (old, cp):
            if not signed_by(checkpoint, checkpoint["key"]):
                raise fail("a checkpoint's signature is not its key's")
        if old["key"] != cp["key"]:
            raise fail("the two checkpoints are signed by different keys")
        if cp["size"] < old["size"]:
            raise fail("the new checkpoint is smaller than the old one")
        if cp["time"] < old["time"]:
            raise fail("the new checkpoint is dated before the old one")
        if cp["size"] == old["size"] and cp["root"] != old["root"]:
            raise fail("two checkpoints of one size have different roots: a split view")
        if new.get("format") == "fairslot-log/2":
            records = new["records"]
            leaves = [sha256(b"\x00" + canonical(r)) for r in records]
            if len(records) != cp["size"] or merkle_root(leaves).hex() != cp["root"]:
                raise fail("the log's records do not hash to its checkpoint")
            if merkle_root(leaves[:old["size"]]).hex() != old["root"]:
                raise fail("the log does not extend the old checkpoint")
        elif new.get("format") == "fairslot-log-proof/2":
            if new["from_size"] != old["size"]:
                raise fail("the consistency proof is not from the old checkpoint's size")
            if not verify_consistency(old["size"], cp["size"], bytes.fromhex(old["root"]),
                                      bytes.fromhex(cp["root"]),
                                      [bytes.fromhex(h) for h in new["proof"]]):
                raise fail("the consistency proof does not verify")
        elif cp["size"] != old["size"]:
            raise fail("a bare checkpoint of another size proves nothing about the old one")
    except Problem as problem:
        return Verdict(problem.status, problem.reason)
    return Verdict("ok")


# -- the round document --------------------------------------------------------------------

def _trusted(chain: Mapping[str, Any], trust: Iterable[str]) -> bool:
    """Trusted: a League of Entropy chain pinned by all parameters, or a key given by the
    caller as a chain hash or a chain public key (section 2)."""
    pinned = LEAGUE_OF_ENTROPY.get(chain["hash"])
    if pinned is not None and dict(chain) == pinned:
        return True
    given = set(trust)
    return chain["hash"] in given or chain["public_key"] in given


def verify_round(document: Any, *, trust: Iterable[str] = (),
                 receipts: Sequence[Mapping[str, Any]] = (),
                 proofs: Sequence[Mapping[str, Any]] = (),
                 log: Mapping[str, Any] | None = None) -> Verdict:
    """Every check of draw.md section 8, in its order; the first problem is the answer."""
    try:
        return _verify(document, list(trust), receipts, proofs, log)
    except Problem as problem:
        return Verdict(problem.status, problem.reason)


def _verify(document: Any, trust: list[str], receipts: Sequence[Mapping[str, Any]],
            proofs: Sequence[Mapping[str, Any]], log: Mapping[str, Any] | None) -> Verdict:
    # 1. Readable: I-JSON, integers, the schema, the stages, the lines.
    doc = read_json(bytes(document)) if isinstance(document, bytes | bytearray) else document
    _check_text(doc)
    check_schema("round.schema.json", doc, "the document")
    stages = [doc["entries"] is not None and doc["freeze"] is not None,
              doc["beacon"] is not None,
              doc["results"] is not None and doc["result"] is not None]
    half = [(doc["entries"] is None) != (doc["freeze"] is None),
            (doc["results"] is None) != (doc["result"] is None)]
    if any(half) or stages not in ([False] * 3, [True, False, False], [True, True, False],
                                   [True] * 3):
        raise malformed("this document mixes stages")
    opening = doc["opening"]
    capacities = opening["capacities"]
    lines = (parse_lines(doc["entries"], capacities, opening["max_choices"])
             if doc["entries"] is not None else None)
    key = doc["hospital_key"]

    # 2. The opening.
    if opening["round_id"] != doc["round_id"]:
        raise fail("the opening is of another round")
    if not signed_by(opening, key):
        raise fail("the opening's signature is not the hospital's key's")
    if not opening["opens_at"] < opening["closes_at"]:
        raise fail("the opening does not open before it closes")
    chain = opening["chain"]
    if chain_hash(chain) != chain["hash"]:
        raise fail(f"the chain's hash is {chain_hash(chain)}, not {chain['hash']}")
    if not _trusted(chain, trust):
        raise fail(f"the beacon chain {chain['hash']} is not one this verifier trusts")
    expected_round = beacon_round_of(chain, opening["closes_at"], opening["beacon_delay"])
    if opening["beacon_round"] != expected_round:
        raise fail(f"the opening names beacon round {opening['beacon_round']}, the close "
                   f"and delay give {expected_round}")
    opening_digest = digest(opening)

    for receipt in receipts:
        if lines is None:
            check_receipt(receipt, doc, None)
    if lines is None:
        return Verdict("pending", f"round {doc['round_id']} is open")

    # 3. The freeze.
    freeze = doc["freeze"]
    if not signed_by(freeze, key):
        raise fail("the freeze statement's signature is not the hospital's key's")
    if freeze["round_id"] != doc["round_id"] or freeze["opening"] != opening_digest:
        raise fail("the freeze statement is of another round or opening")
    root = merkle_root([leaf_hash(text) for text in doc["entries"]])
    if root.hex() != freeze["root"]:
        raise fail(f"the entries do not match the signed frozen root: they hash to "
                   f"{root.hex()}, the freeze statement says {freeze['root']}")
    drawn_count = sum(line.status == "in" for line in lines)
    if freeze["size"] != len(lines) or freeze["drawn"] != drawn_count:
        raise fail("the freeze statement's counts are not the list's")
    beacon_at = round_time(chain, opening["beacon_round"])
    if not (posix(opening["closes_at"]) <= posix(freeze["frozen_at"]) < beacon_at):
        raise fail("the list was not frozen between the close and the beacon's time")

    # 4. Receipts and proofs.
    by_ref = {line.ref: line for line in lines}
    for receipt in receipts:
        check_receipt(receipt, doc, by_ref)
    for proof in proofs:
        check_proof(proof, doc)
    if log is not None:
        check_log(log, doc)

    # 5. The beacon.
    beacon = doc["beacon"]
    if beacon is None:
        return Verdict("pending", f"round {doc['round_id']} is frozen; no beacon yet")
    if beacon["round"] != opening["beacon_round"]:
        raise fail(f"the beacon is of round {beacon['round']}, but the opening fixed round "
                   f"{opening['beacon_round']}")
    if (beacon["previous_signature"] is None) != (chain["scheme"] == UNCHAINED):
        raise fail("the beacon's previous signature does not fit the chain's scheme")
    if not bls_verify(chain["scheme"], bytes.fromhex(chain["public_key"]),
                      beacon_message(chain["scheme"], beacon["round"],
                                     beacon["previous_signature"]),
                      bytes.fromhex(beacon["signature"])):
        raise fail(f"the beacon of round {beacon['round']} is not the chain's signature")
    randomness = sha256(bytes.fromhex(beacon["signature"]))

    # 6. The result statement.
    result = doc["result"]
    if result is None:
        return Verdict("pending", f"round {doc['round_id']}: the beacon is in, no draw yet")
    results = doc["results"]
    if not signed_by(result, key):
        raise fail("the result statement's signature is not the hospital's key's")
    if result["round_id"] != doc["round_id"] or result["opening"] != opening_digest:
        raise fail("the result statement is of another round or opening")
    if result["root"] != freeze["root"]:
        raise fail("the result statement names another root than the freeze")
    if result["beacon_round"] != opening["beacon_round"]:
        raise fail("the result statement names another beacon round than the opening")
    if result["randomness"] != randomness.hex():
        raise fail("the result statement's randomness is not SHA-256 of the beacon")
    seed = bytes.fromhex(result["seed"])
    if sha256(seed).hex() != opening["commitment"]:
        raise fail("the revealed seed does not hash to the opening's commitment")
    if digest(results) != result["results"]:
        raise fail("the results do not hash to the digest the result statement signed")
    if result["drawn_at"] < freeze["frozen_at"]:
        raise fail("the draw is dated before the freeze")

    # 7. The draw, recomputed and compared.
    winners, waitlist, ranked = draw(seed, root, randomness, lines, capacities)
    for name, mine, theirs in (("winner", winners, results["winners"]),
                               ("waitlisted entry", waitlist, results["waitlist"])):
        for i, (a, b) in enumerate(zip(theirs, mine, strict=False)):
            if a != b:
                raise fail(f"{name} #{i + 1} is {a!r} but the draw gives {b!r}")
        if len(mine) != len(theirs):
            raise fail(f"{len(theirs)} {name}s published, the draw gives {len(mine)}")
    return Verdict("ok", "", tuple(winners), tuple(waitlist), tuple(ranked))

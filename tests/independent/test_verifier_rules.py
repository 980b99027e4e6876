"""The independent verifier gives the verdict draw.md section 9 states for each change to
the worked example (docs/examples/), and accepts the example's receipt, proof and log."""

from __future__ import annotations

import ast
import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.independent.draw_verifier import (
    CHAINED,
    DST_G1,
    DST_G2,
    LEAGUE_OF_ENTROPY,
    UNCHAINED,
    audit,
    beacon_message,
    bls_verify,
    chain_hash,
    verify_round,
)

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "docs" / "examples"
EXAMPLE_CHAIN = "502c0a7a9b53eacc768f7a56a3c2a83794b272ae8bf3efca59aa68be9e7628d7"


def _example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def _swap_first_two(doc: dict[str, Any]) -> None:
    doc["entries"][0], doc["entries"][1] = doc["entries"][1], doc["entries"][0]


def _swap_winners(doc: dict[str, Any]) -> None:
    winners = doc["results"]["winners"]
    winners[0], winners[1] = winners[1], winners[0]


def _flip(text: str) -> str:
    return ("1" if text[0] != "1" else "2") + text[1:]


CHANGES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("hospital_key in uppercase hex",
     lambda d: d.update(hospital_key=d["hospital_key"].upper()), "malformed"),
    ('opening.max_choices is "3"', lambda d: d["opening"].update(max_choices="3"),
     "malformed"),
    ("a field note added at the top", lambda d: d.update(note="x"), "malformed"),
    ("a field note added to parameters", lambda d: d["parameters"].update(note="x"), "ok"),
    ("an entry chooses s3", lambda d: d["entries"].__setitem__(0, "alice 1 in s1,s3 -"),
     "malformed"),
    ("alice and bob swapped", _swap_first_two, "malformed"),
    ("frank excluded with reason -",
     lambda d: d["entries"].__setitem__(5, "frank 1 excluded s1 -"), "malformed"),
    ("freeze null, entries set", lambda d: d.update(freeze=None), "malformed"),
    ("results and result null", lambda d: d.update(results=None, result=None), "pending"),
    ("beacon.round one more", lambda d: d["beacon"].update(round=d["beacon"]["round"] + 1),
     "fail"),
    ("beacon.signature changed",
     lambda d: d["beacon"].update(signature=_flip(d["beacon"]["signature"])), "fail"),
    ("bob dropped from entries", lambda d: d["entries"].pop(1), "fail"),
    ("the two winners swapped", _swap_winners, "fail"),
    ("result.seed changed", lambda d: d["result"].update(seed=_flip(d["result"]["seed"])),
     "fail"),
]


@pytest.mark.parametrize(("change", "verdict"), [(c[1], c[2]) for c in CHANGES],
                         ids=[c[0] for c in CHANGES])
def test_each_rule_of_the_worked_example(change: Callable[[dict[str, Any]], None],
                                         verdict: str) -> None:
    doc = _example("round.json")
    change(doc)
    assert verify_round(doc, trust=[EXAMPLE_CHAIN]).status == verdict


@pytest.mark.parametrize("text", [
    '"max_choices": 3.0',  # integers only
    '"round_id": "r1", "round_id": "r1"',  # a key given twice
    '"department": "\\ud800"',  # a lone surrogate
])
def test_text_that_is_not_i_json_is_malformed(text: str) -> None:
    raw = (EXAMPLES / "round.json").read_text()
    raw = (raw.replace('"max_choices": 3', text) if "max_choices" in text
           else raw.replace('"round_id": "r1"', text, 1) if "round_id" in text
           else raw.replace('"department": "example"', text))
    assert raw != (EXAMPLES / "round.json").read_text()
    assert verify_round(raw.encode()).status == "malformed"


def test_the_worked_example_checks_out_with_its_receipt_proof_and_log() -> None:
    raw = (EXAMPLES / "round.json").read_bytes()
    verdict = verify_round(raw, trust=[EXAMPLE_CHAIN], receipts=[_example("receipt.json")],
                           proofs=[_example("inclusion.json")], log=_example("log.json"))
    assert verdict.ok, verdict.reason
    assert verdict.winners == ("bob s1 1", "carol s2 1")
    assert verdict.waitlist == ("alice", "dave")
    # Trusting the chain by its public key works the same; trusting nothing fails.
    chain_key = _example("round.json")["opening"]["chain"]["public_key"]
    assert verify_round(raw, trust=[chain_key]).ok
    assert verify_round(raw).status == "fail"


def test_the_example_log_extends_the_example_checkpoint() -> None:
    checkpoint, log = _example("checkpoint.json"), _example("log.json")
    assert audit(checkpoint, log).ok
    log["records"][0]["round_id"] = "r2"
    assert audit(checkpoint, log).status == "fail"


def _g2_bytes(point: Any) -> bytes:
    from py_ecc.bls.point_compression import compress_G2

    z1, z2 = compress_G2(point)
    return int(z1).to_bytes(48, "big") + int(z2).to_bytes(48, "big")


@pytest.mark.parametrize("scheme", [UNCHAINED, CHAINED])
def test_the_beacon_check_agrees_with_drand_verify(scheme: str) -> None:
    """Section 2's message, DST and randomness, held against drand-verify (an independent
    Rust implementation of drand's checks) on beacons of a made-up chain of either scheme:
    both accept the genuine beacon, both refuse it under another round."""
    import hashlib

    import drand_verify  # type: ignore[import-untyped]
    from py_ecc.bls.hash_to_curve import hash_to_G1, hash_to_G2
    from py_ecc.bls.point_compression import compress_G1
    from py_ecc.optimized_bls12_381.optimized_curve import G1, G2, multiply

    secret, round_ = 0x5EC2E7 * 1_000_003, 9417611
    if scheme == UNCHAINED:
        public = _g2_bytes(multiply(G2, secret))
        message = beacon_message(scheme, round_, None)
        signature = int(compress_G1(multiply(hash_to_G1(message, DST_G1, hashlib.sha256),  # type: ignore[arg-type]
                                             secret))).to_bytes(48, "big")
        theirs = drand_verify.verify_bls_unchained_g1_rfc9380
        args: tuple[Any, ...] = ()
    else:
        public = int(compress_G1(multiply(G1, secret))).to_bytes(48, "big")
        previous = _g2_bytes(multiply(G2, 7))
        message = beacon_message(scheme, round_, previous.hex())
        signature = _g2_bytes(multiply(
            hash_to_G2(message, DST_G2, hashlib.sha256), secret))  # type: ignore[arg-type]
        theirs = drand_verify.verify_pedersen_bls_chained
        args = (previous.hex(),)
    assert bls_verify(scheme, public, message, signature)
    assert theirs(round_, *args, signature.hex(), public.hex()) == \
        hashlib.sha256(signature).hexdigest()
    other = beacon_message(scheme, round_ + 1, args[0] if args else None)
    assert not bls_verify(scheme, public, other, signature)
    with pytest.raises(Exception):  # noqa: B017 - drand-verify raises its own error type
        theirs(round_ + 1, *args, signature.hex(), public.hex())


def test_a_real_quicknet_beacon_checks_out() -> None:
    """Section 2's real example: quicknet round 657413."""
    quicknet = LEAGUE_OF_ENTROPY["52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"]
    signature = bytes.fromhex("b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050"
                              "e7be41076862b98fad56e91a6b85b89cd97b")
    public = bytes.fromhex(quicknet["public_key"])
    assert bls_verify(UNCHAINED, public, beacon_message(UNCHAINED, 657413, None), signature)
    assert not bls_verify(UNCHAINED, public, beacon_message(UNCHAINED, 657414, None),
                          signature)
    for chain in LEAGUE_OF_ENTROPY.values():
        assert chain_hash(chain) == chain["hash"]


def test_the_verifier_owes_nothing_to_fairslot() -> None:
    """Written from the documents alone: no module of fairslot is imported."""
    source = (pathlib.Path(__file__).parent / "draw_verifier.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "dataclasses", "datetime", "functools", "hashlib",
                        "json", "pathlib", "re", "collections", "typing", "jsonschema_rs",
                        "cryptography", "py_ecc"}, imported

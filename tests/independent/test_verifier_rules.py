"""The independent verifier gives the verdict draw.md section 9 states for each change to
the worked example (docs/examples/), and accepts the example's receipt, proof and log."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.independent.draw_verifier import audit, verify_round

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

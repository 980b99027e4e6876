"""docs/draw.md, section 9: each rule of the format shown on the worked example, with what a
verifier must answer. The table on the page is what this test computes with the reference
verifier, so an independent verifier can be checked against it row by row."""

from __future__ import annotations

import copy
import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from fairslot.domain.draw.entries import MalformedRound
from fairslot.domain.draw.examples import example_chain
from fairslot.domain.draw.verify import DEFAULT_TRUST, read_json, verify_document

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
BASE: dict[str, Any] = json.loads((DOCS / "examples" / "round.json").read_text(encoding="utf-8"))
TRUST = DEFAULT_TRUST.with_keys([example_chain().chain.public_key.hex()])
EXIT = {"ok": 0, "fail": 1, "malformed": 2, "pending": 3}


def _edit(change: Callable[[dict[str, Any]], object]) -> str:
    doc = copy.deepcopy(BASE)
    change(doc)
    return json.dumps(doc)


def _set(*path: str, value: object) -> Callable[[dict[str, Any]], object]:
    def change(doc: dict[str, Any]) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value
    return change


_TEXT = json.dumps(BASE)
CASES: dict[str, str] = {
    "`hospital_key` in uppercase hex": _edit(_set("hospital_key",
                                                  value=BASE["hospital_key"].upper())),
    '`opening.max_choices` is `"3"`': _edit(_set("opening", "max_choices", value="3")),
    "`opening.max_choices` is `3.0`": _TEXT.replace('"max_choices": 3', '"max_choices": 3.0'),
    "a field `note` added at the top": _edit(_set("note", value="x")),
    "a field `note` added to `parameters`": _edit(_set("parameters", "note", value="x")),
    "`round_id` given twice": _TEXT[:-1] + ', "round_id": "x"}',
    '`parameters.department` is `"\\ud800"`': _TEXT.replace('"example"', '"\\ud800"', 1),
    "an entry chooses `s3`, not in `capacities`": _edit(
        lambda d: d["entries"].__setitem__(0, "alice 1 in s1,s3 -")),
    "`alice` and `bob` swapped in `entries`": _edit(
        lambda d: d["entries"].__setitem__(slice(0, 2), d["entries"][1::-1])),
    "`frank` excluded with reason `-`": _edit(
        lambda d: d["entries"].__setitem__(5, "frank 1 excluded s1 -")),
    "`freeze` null, `entries` set": _edit(_set("freeze", value=None)),
    "`results` and `result` null": _edit(lambda d: d.update(results=None, result=None)),
    "`beacon.round` one more": _edit(_set("beacon", "round", value=BASE["beacon"]["round"] + 1)),
    "`beacon.signature` changed": _edit(_set(
        "beacon", "signature", value=BASE["beacon"]["signature"][:-2] + "00")),
    "`bob` dropped from `entries`": _edit(lambda d: d["entries"].pop(1)),
    "the two winners swapped": _edit(_set("results", "winners",
                                          value=BASE["results"]["winners"][::-1])),
    "`result.seed` changed": _edit(_set("result", "seed", value="00" * 32)),
}


def verdict(text: str, trust: Any = TRUST) -> tuple[str, str]:
    """(status, first line) as ``fairslot draw verify`` reads a file."""
    try:
        report = verify_document(read_json(text.encode("utf-8"), max_bytes=10**9),
                                 trust=trust)
    except MalformedRound as exc:
        return "malformed", str(exc)
    return report.status, (report.reasons or (report.summary,))[0]


def row(name: str, status: str, message: str) -> str:
    return f"| {name} | {status}, exit {EXIT[status]} | {message} |"


@pytest.fixture(scope="module")
def page() -> str:
    return (DOCS / "draw.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(CASES))
def test_each_rule_is_on_the_page_with_the_verifiers_answer(page: str, name: str) -> None:
    status, message = verdict(CASES[name])
    assert row(name, status, message) in page, row(name, status, message)


def test_an_untrusted_chain_is_on_the_page(page: str) -> None:
    status, message = verdict(_TEXT, DEFAULT_TRUST)
    assert status == "fail"
    assert row("no `--chain-key` for the example chain", status, message) in page


def test_the_unchanged_example_verifies() -> None:
    assert verdict(_TEXT)[0] == "ok"


if __name__ == "__main__":  # print the table for the page
    for name, text in CASES.items():
        print(row(name, *verdict(text)))
    print(row("no `--chain-key` for the example chain", *verdict(_TEXT, DEFAULT_TRUST)))

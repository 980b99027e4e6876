"""``fairslot draw verify``, ``draw audit`` and ``draw commitment``: verdicts and exit codes,
and bad files (missing fields, wrong types, lone surrogates, 100 MB, not JSON) refused with
one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from fairslot.domain.draw import Entry, Round, commitment, entries_digest, export_round, run_draw
from fairslot.domain.draw.examples import EXAMPLE_KEY, Example, build_round, example_chain
from fairslot.domain.draw.receipts import make_receipt
from fairslot.domain.draw.signing import digest
from fairslot.domain.draw.statements import frozen_entry

CHAIN_KEY = example_chain().chain.public_key.hex()


@pytest.fixture(scope="module")
def example() -> Example:
    entries = [frozen_entry(f"p{n:02d}", 1, ["s1", "s2"] if n % 2 else ["s2"])
               for n in range(12)]
    entries.append(frozen_entry("zz", 1, ["s1"], excluded="credit_suspended"))
    return build_round(entries, {"s1": 2, "s2": 3}, round_id="r-cli")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from fairslot.cli.main import run; run()",
                           "draw", *args], capture_output=True, text=True, timeout=120,
                          check=False)


def write(tmp_path: pathlib.Path, doc: object, name: str = "round.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def test_an_honest_round_prints_ok_and_exits_zero(example: Example,
                                                   tmp_path: pathlib.Path) -> None:
    done = run("verify", write(tmp_path, example.document), "--chain-key", CHAIN_KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK: round r-cli: 13 entries (12 drawn), 2 sessions, "
                                  "5 winners")


def test_without_trusting_the_local_chain_it_fails(example: Example,
                                                    tmp_path: pathlib.Path) -> None:
    done = run("verify", write(tmp_path, example.document))
    assert done.returncode == 1
    assert "not one this verifier trusts" in done.stdout


def test_a_receipt_is_checked_and_its_outcome_printed(example: Example,
                                                       tmp_path: pathlib.Path) -> None:
    receipt = make_receipt(EXAMPLE_KEY, round_id="r-cli", opening=digest(example.opening),
                           ref="p03", seq=1, kind="entry", choices=["s1", "s2"],
                           at=dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC))
    done = run("verify", write(tmp_path, example.document), "--chain-key", CHAIN_KEY,
               "--receipt", write(tmp_path, receipt, "receipt.json"),
               "--proof", write(tmp_path, example.frozen.proof("r-cli", "p03").to_json(),
                                "proof.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "receipt: entry 'p03' is in the frozen list as the receipt says" in done.stdout
    assert "inclusion proof: the proof shows 'p03 1 in s1,s2 -'" in done.stdout


def test_a_tampered_result_prints_fail_and_exits_one(example: Example,
                                                      tmp_path: pathlib.Path) -> None:
    doc = copy.deepcopy(example.document)
    doc["results"]["waitlist"].reverse()
    done = run("verify", write(tmp_path, doc), "--chain-key", CHAIN_KEY)
    assert done.returncode == 1
    assert done.stdout.startswith("FAIL: ")
    assert "waitlist #1 is" in done.stdout


def test_an_undrawn_round_is_pending_with_exit_three(example: Example,
                                                     tmp_path: pathlib.Path) -> None:
    doc = copy.deepcopy(example.document)
    doc["beacon"] = doc["results"] = doc["result"] = None
    done = run("verify", write(tmp_path, doc), "--chain-key", CHAIN_KEY)
    assert done.returncode == 3
    assert done.stdout.startswith("PENDING: round r-cli is frozen")


def test_a_format_1_document_cannot_pass(tmp_path: pathlib.Path) -> None:
    seed = hashlib.sha256(b"cli").digest()
    entries = [Entry(f"p{n}", ("s1",)) for n in range(4)]
    doc = export_round(Round(round_id="old", capacities={"s1": 1}, entries=tuple(entries),
                             commitment=commitment(seed), entries_digest=entries_digest(entries),
                             seed=seed, result=run_draw(seed, entries, {"s1": 1})))
    done = run("verify", write(tmp_path, doc))
    assert done.returncode == 1
    assert "fairslot-round/1 document: its arithmetic checks out" in done.stdout


def _broken(example: Example) -> dict[str, Any]:
    doc = copy.deepcopy(example.document)
    return {
        "missing field": {k: v for k, v in doc.items() if k != "opening"},
        "wrong type": {**doc, "entries": "p01 1 in s1"},
        "wrong type inside": {**doc, "opening": {**doc["opening"], "max_choices": "3"}},
        "integer as float": json.dumps(doc).replace('"max_choices": 3', '"max_choices": 3.0'),
        "unknown field": {**doc, "extra": 1},
        "uppercase hex": {**doc, "hospital_key": doc["hospital_key"].upper()},
        "lone surrogate": json.dumps(doc).replace('"department": "example"',
                                                  '"department": "\\ud800"'),
        "lone surrogate in an entry": json.dumps(doc).replace('"p01 1 in s1,s2 -"',
                                                              '"p01\\ud800 1 in s1,s2 -"'),
        "duplicate key": json.dumps(doc)[:-1] + ', "round_id": "x"}',
        "not json": "{not json",
        "not utf-8": b"\xff\xfe{}",
        "a list": [1, 2],
        "deeply nested": "[" * 200_000 + "]" * 200_000,
        "mixed stages": {**doc, "freeze": None},
    }


@pytest.mark.parametrize("case", ["missing field", "wrong type", "wrong type inside",
                                  "integer as float", "unknown field", "uppercase hex",
                                  "lone surrogate", "lone surrogate in an entry",
                                  "duplicate key", "not json", "not utf-8", "a list",
                                  "deeply nested", "mixed stages"])
def test_a_bad_document_is_one_line_and_exit_two(example: Example, tmp_path: pathlib.Path,
                                                  case: str) -> None:
    content = _broken(example)[case]
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    done = run("verify", str(path), "--chain-key", CHAIN_KEY)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_100_mb_file_is_one_line_and_exit_two(example: Example,
                                                tmp_path: pathlib.Path) -> None:
    big = tmp_path / "big.json"
    # 100 MB of one JSON string: valid JSON, not a round document.
    big.write_text('"' + "a" * 100_000_000 + '"', encoding="ascii")
    done = run("verify", str(big))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "must be" in done.stderr or "is not of type" in done.stderr
    limited = run("verify", str(big), "--max-mb", "50")
    assert limited.returncode == 2 and "more than the 50,000,000" in limited.stderr
    receipt = run("verify", write(tmp_path, example.document), "--chain-key", CHAIN_KEY,
                  "--receipt", str(big))
    assert receipt.returncode == 2 and "more than the 1,000,000" in receipt.stderr


@pytest.mark.parametrize("case", ["missing field", "wrong type", "lone surrogate", "not json",
                                  "other round's opening"])
def test_a_bad_receipt_is_one_line_and_exit_two_or_a_named_fail(
        example: Example, tmp_path: pathlib.Path, case: str) -> None:
    receipt = make_receipt(EXAMPLE_KEY, round_id="r-cli", opening=digest(example.opening),
                           ref="p03", seq=1, kind="entry", choices=["s1", "s2"],
                           at=dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC))
    contents = {
        "missing field": json.dumps({k: v for k, v in receipt.items() if k != "seq"}),
        "wrong type": json.dumps({**receipt, "seq": "1"}),
        "lone surrogate": json.dumps(receipt).replace('"p03"', '"p\\udc0003"'),
        "not json": "[",
        "other round's opening": json.dumps(EXAMPLE_KEY.sign({**receipt, "opening": "0" * 64})),
    }
    path = tmp_path / "receipt.json"
    path.write_text(contents[case], encoding="utf-8")
    done = run("verify", write(tmp_path, example.document), "--chain-key", CHAIN_KEY,
               "--receipt", str(path))
    if case == "other round's opening":
        assert done.returncode == 1
        assert "re-issued after this entry" in done.stdout
        return
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "receipt.json" in done.stderr


def test_audit_accepts_an_extension_and_catches_a_split_view(example: Example,
                                                             tmp_path: pathlib.Path) -> None:
    log = copy.deepcopy(example.log)
    old = log.checkpoint(EXAMPLE_KEY, dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    other = build_round([frozen_entry("q1", 1, ["s1"])], {"s1": 1}, round_id="r2")
    for record in other.log.records:
        log.append(record)
    new = log.checkpoint(EXAMPLE_KEY, dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    old_path = write(tmp_path, old, "old.json")
    good = run("audit", old_path, write(tmp_path, log.consistency(old["size"], new), "new.json"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("OK: the log of key")
    split = copy.deepcopy(other.log)
    split.records.extend(copy.deepcopy(other.log.records))
    forked = split.checkpoint(EXAMPLE_KEY, dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    bad = run("audit", old_path, write(tmp_path, split.document(forked), "fork.json"))
    assert bad.returncode == 1 and "FAIL: the new log does not extend the old one" in bad.stdout
    broken = run("audit", old_path, write(tmp_path, {"type": "fairslot-checkpoint/2"}, "x.json"))
    assert broken.returncode == 2 and broken.stderr.count("\n") == 1


def test_commitment_prints_the_sha256_of_a_seed() -> None:
    seed = bytes(range(32))
    done = run("commitment", seed.hex())
    assert done.returncode == 0
    assert done.stdout.strip() == hashlib.sha256(seed).hexdigest()
    short = run("commitment", "abcd")
    assert short.returncode == 2 and short.stderr.count("\n") == 1


def test_a_format_1_beacon_with_a_lone_surrogate_is_one_line_not_a_traceback(
        tmp_path: pathlib.Path) -> None:
    """Issue 14, item 6: this crashed `fairslot draw verify` with a traceback."""
    seed = hashlib.sha256(b"cli").digest()
    entries = [Entry(f"p{n}", ("s1",)) for n in range(4)]
    doc = export_round(Round(round_id="old", capacities={"s1": 1}, entries=tuple(entries),
                             commitment=commitment(seed), entries_digest=entries_digest(entries),
                             seed=seed, result=run_draw(seed, entries, {"s1": 1})))
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc).replace('"beacon": ""', '"beacon": "\\ud800"'),
                    encoding="utf-8")
    assert '"\\ud800"' in path.read_text(encoding="utf-8")
    done = run("verify", str(path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "lone surrogate" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("case", ["no such file", "a directory", "proof missing field",
                                  "proof wrong type", "proof lone surrogate",
                                  "audit lone surrogate", "audit wrong type",
                                  "audit not json"])
def test_bad_proofs_and_log_files_are_one_line_and_exit_two(
        example: Example, tmp_path: pathlib.Path, case: str) -> None:
    document = write(tmp_path, example.document)
    proof = example.frozen.proof("r-cli", "p03").to_json()
    checkpoint = example.log.checkpoint(EXAMPLE_KEY, dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    (tmp_path / "dir").mkdir()
    bad = tmp_path / "bad.json"
    args = {
        "no such file": ("verify", str(tmp_path / "missing.json")),
        "a directory": ("verify", document, "--receipt", str(tmp_path / "dir")),
        "proof missing field": ("verify", document, "--chain-key", CHAIN_KEY, "--proof",
                                write(tmp_path, {k: v for k, v in proof.items()
                                                 if k != "path"}, "bad.json")),
        "proof wrong type": ("verify", document, "--chain-key", CHAIN_KEY, "--proof",
                             write(tmp_path, {**proof, "index": "3"}, "bad.json")),
        "proof lone surrogate": ("verify", document, "--chain-key", CHAIN_KEY, "--proof",
                                 str(bad)),
        "audit lone surrogate": ("audit", str(bad), write(tmp_path, checkpoint, "cp.json")),
        "audit wrong type": ("audit", write(tmp_path, {**checkpoint, "size": "3"}, "bad.json"),
                             write(tmp_path, checkpoint, "cp.json")),
        "audit not json": ("audit", write(tmp_path, checkpoint, "cp.json"), str(bad)),
    }[case]
    if "lone surrogate" in case:
        bad.write_text(json.dumps(proof).replace('"r-cli"', '"r\\ud800"'), encoding="utf-8")
    elif case == "audit not json":
        bad.write_text("{", encoding="utf-8")
    done = run(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr

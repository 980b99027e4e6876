"""``fairslot draw verify`` and ``fairslot draw commitment`` on exported round documents."""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from fairslot.cli import draw as draw_cli
from fairslot.cli.main import CliError
from fairslot.domain.draw import Entry, Round, commitment, entries_digest, export_round, run_draw


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    draw_cli.register(app)
    return app


def honest_round() -> dict[str, Any]:
    seed = hashlib.sha256(b"cli").digest()
    entries = [Entry(f"p{n}", ("s1", "s2") if n % 2 else ("s2",)) for n in range(12)]
    capacities = {"s1": 2, "s2": 3}
    return export_round(Round(
        round_id="r-cli", capacities=capacities, entries=tuple(entries),
        commitment=commitment(seed), entries_digest=entries_digest(entries), seed=seed,
        result=run_draw(seed, entries, capacities)))


def write(tmp_path: pathlib.Path, doc: object) -> str:
    path = tmp_path / "round.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def test_an_honest_round_prints_ok_and_exits_zero(app: typer.Typer,
                                                   tmp_path: pathlib.Path) -> None:
    result = CliRunner().invoke(app, ["draw", "verify", write(tmp_path, honest_round())])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: round r-cli: 12 entries, 2 sessions, 5 winners")


def test_a_tampered_result_prints_fail_and_exits_one(app: typer.Typer,
                                                      tmp_path: pathlib.Path) -> None:
    doc = honest_round()
    doc["results"]["winners"][0], doc["results"]["winners"][1] = (
        doc["results"]["winners"][1], doc["results"]["winners"][0])
    result = CliRunner().invoke(app, ["draw", "verify", write(tmp_path, doc)])
    assert result.exit_code == 1
    assert result.output.startswith("FAIL: winner #1 is")


def test_a_tampered_seed_names_the_commitment(app: typer.Typer,
                                               tmp_path: pathlib.Path) -> None:
    doc = honest_round()
    doc["seed"] = hashlib.sha256(b"other").hexdigest()
    result = CliRunner().invoke(app, ["draw", "verify", write(tmp_path, doc)])
    assert result.exit_code == 1
    assert "FAIL: the seed does not match the commitment" in result.output


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "is not valid JSON"),
    (json.dumps({"format": "fairslot-round/1"}), "malformed document: the round has no"),
    (json.dumps([1, 2]), "must be a JSON object"),
])
def test_a_malformed_file_is_a_one_line_cli_error(app: typer.Typer, tmp_path: pathlib.Path,
                                                  content: str, message: str) -> None:
    path = tmp_path / "round.json"
    path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["draw", "verify", str(path)])
    # main.run() turns CliError into one line on stderr and exit status 2.
    assert isinstance(result.exception, CliError)
    assert message in str(result.exception)
    assert "\n" not in str(result.exception)


def test_a_missing_file_is_a_cli_error(app: typer.Typer, tmp_path: pathlib.Path) -> None:
    result = CliRunner().invoke(app, ["draw", "verify", str(tmp_path / "nope.json")])
    assert isinstance(result.exception, CliError)
    assert "cannot read" in str(result.exception)


def test_commitment_prints_the_sha256_of_a_seed(app: typer.Typer) -> None:
    seed = bytes(range(32))
    result = CliRunner().invoke(app, ["draw", "commitment", seed.hex()])
    assert result.exit_code == 0
    assert result.output.strip() == hashlib.sha256(seed).hexdigest()
    short = CliRunner().invoke(app, ["draw", "commitment", "abcd"])
    assert isinstance(short.exception, CliError)


def test_the_installed_command_exits_two_with_one_line_for_a_malformed_file(
        tmp_path: pathlib.Path) -> None:
    path = tmp_path / "round.json"
    path.write_text(json.dumps({"format": "fairslot-round/1", "round_id": 3}), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", "from fairslot.cli.main import run; run()",
                           "draw", "verify", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "'round_id' must be a string" in done.stderr

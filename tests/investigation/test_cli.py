"""The commands: a working run, and errors a user can cause as one readable line."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from fairslot.cli import investigate, records_synth
from fairslot.cli.main import CliError


def _app() -> typer.Typer:
    app = typer.Typer()
    investigate.register(app)
    records = typer.Typer()
    records_synth.register(records)
    app.add_typer(records, name="records")
    return app


def test_synth_then_investigate_writes_the_three_outputs(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(_app(), ["records", "synth", str(tmp_path / "in"), "--scenario",
                                  "seeds", "--seed", "3", "--scale", "0.1"])
    assert made.exit_code == 0, made.output
    ran = runner.invoke(_app(), ["investigate", str(tmp_path / "in"), "--out",
                                 str(tmp_path / "out"), "--labels",
                                 str(tmp_path / "in" / "labels.csv")])
    assert ran.exit_code == 0, ran.output
    assert "ring recovery" in ran.output
    assert "account threshold: 0.10 P" in ran.output
    for name in ("suspects.csv", "rings.csv", "report.html"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    suspects = pl.read_csv(tmp_path / "out" / "suspects.csv")
    assert suspects.height > 0 and suspects.get_column("score").min() >= 0.5
    # The report is in Chinese unless asked otherwise.
    assert "账户：精确率、召回率与阈值" in (
        tmp_path / "out" / "report.html").read_text(encoding="utf-8")

    review = runner.invoke(_app(), ["investigate", str(tmp_path / "in"), "--out",
                                    str(tmp_path / "review"), "--min-score", "0.1",
                                    "--lang", "en"])
    assert review.exit_code == 0, review.output
    assert "precision and recall against the threshold" not in (
        tmp_path / "review" / "report.html").read_text(encoding="utf-8")  # no labels given
    assert "<h2>Suspects</h2>" in (tmp_path / "review" / "report.html").read_text(
        encoding="utf-8")
    listed = pl.read_csv(tmp_path / "review" / "suspects.csv")
    assert listed.height > suspects.height
    assert 0.1 <= listed.get_column("score").min() < 0.5


@pytest.mark.parametrize(("arguments", "message"), [
    (["investigate", "{tmp}/nowhere", "--out", "{tmp}/out"], "records folder not found"),
    (["investigate", "{tmp}", "--out", "{tmp}/out", "--since", "last tuesday"],
     "--since: 'last tuesday' is not an ISO date"),
    (["investigate", "{tmp}", "--out", "{tmp}/out"], "has no bookings.csv"),
    (["investigate", "{tmp}", "--out", "{tmp}/out", "--labels", "{tmp}/none.csv"],
     "labels file not found"),
    (["records", "synth", "{tmp}/x", "--scenario", "mars"], "unknown scenario 'mars'"),
    (["investigate", "{tmp}", "--out", "{tmp}/out", "--min-score", "1.5"],
     "--min-score: 1.5 is not between 0 and 1"),
    (["investigate", "{tmp}", "--out", "{tmp}/out", "--lang", "fr"],
     "--lang: 'fr' is not one of zh-CN, en"),
])
def test_user_errors_are_one_readable_line(tmp_path: Path, arguments: list[str],
                                           message: str) -> None:
    result = CliRunner().invoke(_app(), [a.format(tmp=tmp_path) for a in arguments])
    assert isinstance(result.exception, CliError)
    assert message in str(result.exception)
    assert "\n" not in str(result.exception)


def test_an_unreadable_bookings_file_is_a_readable_error(tmp_path: Path) -> None:
    (tmp_path / "bookings.csv").write_text("booking_id,created_at\nb1,2025-01-01\n")
    (tmp_path / "payments.csv").write_text("payment_id\n")
    result = CliRunner().invoke(_app(), ["investigate", str(tmp_path), "--out",
                                         str(tmp_path / "out")])
    assert isinstance(result.exception, CliError)
    assert "lacks required column(s): account_id" in str(result.exception)

"""``fairslot investigate``: find the rings in a folder of exported records, with evidence."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer

from fairslot.cli.main import CliError
from fairslot.config import get_settings

__all__ = ["parse_when", "register"]


def parse_when(text: str | None, option: str) -> dt.datetime | None:
    """An ISO date or date-time; without an offset it is the hospital's local time."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CliError(f"{option}: {text!r} is not an ISO date or date-time "
                       "(e.g. 2025-03-01 or 2025-03-01T08:00+08:00)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=get_settings().zone)
    return value


def investigate_command(
    folder: Annotated[Path, typer.Argument(help="Folder with bookings, payments, access.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for suspects.csv, rings.csv, "
                                      "report.html.")],
    since: Annotated[str | None, typer.Option(help="Only records from this time on.")] = None,
    until: Annotated[str | None, typer.Option(help="Only records before this time.")] = None,
    labels: Annotated[Path | None, typer.Option(help="labels.csv to score the run.")] = None,
    min_score: Annotated[float | None, typer.Option(
        "--min-score", help="List entities scoring at least this in suspects.csv (a review "
        "list below the flag line of 0.5).")] = None,
    lang: Annotated[str, typer.Option(
        "--lang", help="Language of report.html: zh-CN (default) or en.")] = "zh-CN",
) -> None:
    """Find suspected scalper rings in a year of records and write the evidence."""
    # Heavy imports here, so that `fairslot --help` stays fast.
    from fairslot.investigation.evaluate import evaluate, read_labels
    from fairslot.investigation.records import RecordsError, read_records
    from fairslot.investigation.report import RunInfo, write_outputs
    from fairslot.investigation.rules import Thresholds
    from fairslot.investigation.scoring import investigate

    start, until_at = parse_when(since, "--since"), parse_when(until, "--until")
    if start is not None and until_at is not None and start >= until_at:
        raise CliError("--since must be before --until")
    if not folder.is_dir():
        raise CliError(f"records folder not found: {folder}")
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise CliError(f"--min-score: {min_score} is not between 0 and 1")
    if lang not in ("zh-CN", "en"):
        raise CliError(f"--lang: {lang!r} is not one of zh-CN, en")
    if labels is not None and not labels.is_file():
        raise CliError(f"labels file not found: {labels}")
    zone = get_settings().zone
    began, clock = dt.datetime.now(zone), time.perf_counter()
    try:
        # The access rows (the bulk of a year: 100 million for a province) are read out of
        # core: only their counts per account and minute are kept.
        records = read_records(folder, zone=zone, since=start, until=until_at,
                               access_min_clicks=Thresholds().clicks_per_minute)
        truth = read_labels(labels) if labels is not None else None
    except RecordsError as exc:
        raise CliError(str(exc)) from exc
    except (ValueError, OSError) as exc:
        raise CliError(f"cannot read {labels}: {exc}") from exc
    result = investigate(records)
    result.min_score = min_score
    quality = evaluate(result.scores, truth) if truth is not None else None
    run = RunInfo(str(folder), began, time.perf_counter() - clock, zone.key, start, until_at)
    try:
        write_outputs(out, result, records, run, quality, lang=lang)
    except OSError as exc:
        raise CliError(f"cannot write to {out}: {exc.strerror or exc}") from exc
    flagged = result.suspects
    typer.echo(f"{flagged.height} suspects, {result.rings.height} rings; "
               f"written to {out} in {run.seconds:.1f} s")
    skipped = sum(s.rows for s in records.skipped if not s.kept)
    if skipped:
        typer.echo(f"{skipped} unusable rows skipped (reasons in report.html)")
    if quality is not None:
        for q in quality.by_type:
            typer.echo(f"{q.entity_type:8} precision {q.precision:.3f} recall {q.recall:.3f} "
                       f"F1 {q.f1:.3f} AP {q.average_precision:.3f}")
        typer.echo(f"ring recovery {quality.ring_recovery:.3f} "
                   f"({quality.rings_recovered}/{quality.true_rings}); hard cases flagged "
                   f"{100 * quality.hard_case_rate:.2f}% "
                   f"({quality.hard_cases_flagged}/{quality.hard_cases})")
        typer.echo("account threshold: " + ", ".join(
            f"{c.threshold:.2f} P {c.precision:.3f} R {c.recall:.3f}" for c in quality.curve))


def register(app: typer.Typer) -> None:
    """Add ``investigate`` to the main app."""
    app.command("investigate")(investigate_command)

"""``fairslot records``: export records in the exchange format (and ``synth``, which makes a
synthetic year of them)."""

from __future__ import annotations

import datetime as dt
import pathlib

import typer

from fairslot.cli import records_synth
from fairslot.cli.common import load_platform
from fairslot.cli.main import CliError
from fairslot.services.export import PiiMode, export_records

__all__ = ["parse_when", "register"]

records_app = typer.Typer(help="Booking, payment and access records.", no_args_is_help=True)


def parse_when(value: str | None, zone: dt.tzinfo, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option}: {value!r} is not an ISO date or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


@records_app.command("export")
def export(
    out: pathlib.Path = typer.Argument(..., help="folder to write bookings, payments, access to"),
    since: str | None = typer.Option(None, help="from this ISO date/time (hospital time)"),
    until: str | None = typer.Option(None, help="before this ISO date/time (hospital time)"),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet"),
    pii: PiiMode = typer.Option(PiiMode.PSEUDONYMISED, help="pseudonymised (default) or clear"),
) -> None:
    """Export records in the exchange format; PII is pseudonymised unless --pii clear."""
    if fmt not in ("csv", "parquet"):
        raise CliError(f"--format: {fmt!r} is not csv or parquet")
    platform = load_platform()
    zone = platform.settings.zone
    counts = platform.run(export_records, out, since=parse_when(since, zone, "--since"),
                            until=parse_when(until, zone, "--until"), fmt=fmt, pii=pii)
    summary = ", ".join(f"{n} {name}" for name, n in counts.items())
    typer.echo(f"wrote {summary} to {out} ({pii.value} PII)")


def register(app: typer.Typer) -> None:
    records_synth.register(records_app)
    app.add_typer(records_app, name="records")

"""``fairslot records synth``: a synthetic year of records with its labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fairslot.cli.main import CliError

__all__ = ["register"]


def synth_command(
    out: Annotated[Path, typer.Argument(help="Folder to write the records and labels.csv.")],
    scenario: Annotated[str, typer.Option(help="Scenario name; 'seeds' follows the seed "
                                          "cases.")] = "seeds",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same "
                                      "records.")] = 1,
    scale: Annotated[float, typer.Option(help="1.0 is about 4,000 genuine accounts and "
                                         "eight rings.")] = 1.0,
) -> None:
    """Write a synthetic year of bookings, payments and access records with labels.csv."""
    from fairslot.investigation.synth import SCENARIOS, write_synthetic

    if scenario not in SCENARIOS:
        raise CliError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if not 0 < scale <= 100:
        raise CliError("--scale must be above 0 and at most 100")
    if out.exists() and not out.is_dir():
        raise CliError(f"{out} exists and is not a folder")
    try:
        counts = write_synthetic(out, seed=seed, scale=scale, scenario=scenario)
    except OSError as exc:
        raise CliError(f"cannot write to {out}: {exc.strerror or exc}") from exc
    typer.echo(", ".join(f"{n} {name}" for name, n in counts.items()) + f" written to {out}")


def register(records_app: typer.Typer) -> None:
    """Add ``synth`` to the ``records`` group."""
    records_app.command("synth")(synth_command)

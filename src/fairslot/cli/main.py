"""Entry point of the ``fairslot`` command. Each command group lives in its own module and
registers itself here; errors a user can cause become one line and a non-zero exit."""

from __future__ import annotations

import sys

import typer

from fairslot.domain.errors import FairslotError

__all__ = ["app", "run"]

app = typer.Typer(
    name="fairslot",
    help="fairslot: fair release of scarce hospital appointments, and the tools to catch "
    "scalper rings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class CliError(Exception):
    """An error worth one line on stderr and exit status 2."""


def _register() -> None:
    # Imported here so that `fairslot --help` stays cheap and each group is self-contained.
    from fairslot.cli import (
        consortium,
        db,
        demo,
        draw,
        guard,
        investigate,
        monitor,
        records,
        serve,
        simulate,
        user,
    )

    for module in (serve, db, demo, user, records, draw, guard, investigate, simulate,
                   consortium, monitor):
        module.register(app)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def run() -> None:
    _register()
    try:
        app()
    except (FairslotError, CliError) as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(2)
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        sys.exit(2)

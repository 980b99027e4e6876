"""Entry point of the ``fairslot`` command. Each command group lives in its own module and
is imported only when it is run (``fairslot --help`` lists them from the table below without
importing any: the investigation, the simulator and the database layer are heavy); errors a
user can cause become one line and a non-zero exit."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from fairslot.domain.errors import FairslotError

__all__ = ["COMMANDS", "app", "run"]

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("fairslot.cli.serve", "Run the web server (with --demo: the demo hospital)."),
    "secret": ("fairslot.cli.serve", "Make a new master secret."),
    "db": ("fairslot.cli.db", "Migrate the database, or check it matches the models."),
    "demo": ("fairslot.cli.demo", "The demo hospital."),
    "user": ("fairslot.cli.user", "User accounts."),
    "records": ("fairslot.cli.records", "Export records, or make a synthetic year of them."),
    "investigate": ("fairslot.cli.investigate", "Find scalper rings in exported records."),
    "draw": ("fairslot.cli.draw", "Verify a published draw, audit the log of rounds."),
    "guard": ("fairslot.cli.guard", "Show or set the request guard's levels."),
    "monitor": ("fairslot.cli.monitor", "Live monitoring: run detectors, read alerts."),
    "consortium": ("fairslot.cli.consortium", "The blacklist shared with other hospitals."),
    "simulate": ("fairslot.cli.simulate", "Run the attack catalogue against the real code."),
}
"""Command name -> (module that registers it, one line for ``--help``)."""


class _LazyGroup(TyperGroup):
    """Lists the commands from ``COMMANDS``; imports a command's module when it is run
    (while the top-level help is written, a stand-in carrying the one-line help will do)."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        module, help_ = COMMANDS[cmd_name]
        if self._listing:
            return TyperCommand(cmd_name, help=help_)
        holder = typer.Typer()
        importlib.import_module(module).register(holder)
        command = typer.main.get_command(holder)
        if isinstance(command, TyperGroup):
            return command.get_command(ctx, cmd_name)
        return command  # a module that registers one command: typer returns it alone

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    cls=_LazyGroup,
    name="fairslot",
    help="fairslot: fair release of scarce hospital appointments, and the tools to catch "
    "scalper rings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class CliError(Exception):
    """An error worth one line on stderr and exit status 2."""


@app.callback()
def _main(ctx: typer.Context) -> Any:
    """fairslot: fair release of scarce hospital appointments, and the tools to catch
    scalper rings."""


def _one_line(message: str) -> str:
    return " ".join(message.split())


def run() -> None:
    try:
        app()
    except (FairslotError, CliError) as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(2)
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        sys.exit(2)

"""``fairslot db``: migrate the database."""

from __future__ import annotations

import typer
from sqlalchemy.exc import OperationalError

from fairslot.cli.common import load_settings
from fairslot.cli.main import CliError
from fairslot.storage.database import make_engine
from fairslot.storage.migrate import drift, upgrade

__all__ = ["register"]

db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)


def migrate_url(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    except OperationalError as exc:
        raise CliError(f"cannot reach the database: {exc.orig}") from None
    finally:
        engine.dispose()


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Apply every pending migration to FAIRSLOT_DATABASE_URL."""
    settings = load_settings()
    migrate_url(settings.database_url)
    typer.echo("database is up to date")


@db_app.command("check")
def check_command() -> None:
    """Exit non-zero when the database and the models differ."""
    engine = make_engine(load_settings().database_url)
    differences = drift(engine)
    if differences:
        raise CliError(f"the database differs from the models: {differences[0]}")
    typer.echo("database matches the models")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")

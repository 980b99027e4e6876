"""``fairslot demo``: the demo hospital and its logins."""

from __future__ import annotations

import os
import secrets

import typer

from fairslot.cli.common import DEMO_DIR, load_platform
from fairslot.cli.db import migrate_url
from fairslot.services.demo import DEMO_USERS, SeedReport, seed_demo

__all__ = ["demo_logins", "register", "seed"]

demo_app = typer.Typer(help="The demo hospital.", no_args_is_help=True)


def demo_logins() -> dict[str, str]:
    """Demo passwords: random, made once, kept in var/demo-logins.txt (never in the repo)."""
    path = DEMO_DIR / "demo-logins.txt"
    if not path.exists():
        DEMO_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            for username in DEMO_USERS:
                handle.write(f"{username} {secrets.token_urlsafe(9)}\n")
    pairs = (line.split(" ", 1) for line in path.read_text().splitlines() if line.strip())
    return {name: password.strip() for name, password in pairs}


def seed() -> SeedReport:
    platform = load_platform(demo=True)
    migrate_url(platform.settings.database_url)
    report = seed_demo(platform.units, platform.deps, demo_logins())
    platform.engine.dispose()
    return report


@demo_app.command("seed")
def seed_command() -> None:
    """Migrate the database and seed the demo hospital (idempotent)."""
    report = seed()
    if report.created:
        typer.echo(f"seeded the demo hospital: {report.sessions} sessions, "
                   f"{report.bookings} bookings of history")
    else:
        typer.echo("the demo hospital is already there; nothing changed")
    print_logins()


def print_logins() -> None:
    typer.echo("demo logins (username / password):")
    for username, password in demo_logins().items():
        typer.echo(f"  {DEMO_USERS[username].value:<13} {username:<18} {password}")


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")

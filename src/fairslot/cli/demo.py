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


ROLE_NOTES = {
    "patient": "books, enters draws, pays (/me)",
    "registration": "the registration desk (/desk)",
    "operator": "sessions, release policies, guard levels (/operator)",
    "investigator": "investigations (/investigations), the shared list (/consortium)",
    "admin": "everything, and staff accounts (/admin/users)",
}


def demo_logins() -> dict[str, str]:
    """Demo passwords: random, made once, kept in var/demo-logins.txt (never in the repo).
    Each line names the login's role and what it is for."""
    path = DEMO_DIR / "demo-logins.txt"
    if not path.exists():
        DEMO_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("# username password role: what it is for (log in at /login)\n")
            for username, role in DEMO_USERS.items():
                handle.write(f"{username} {secrets.token_urlsafe(9)} {role.value}: "
                             f"{ROLE_NOTES.get(role.value, '')}\n")
    logins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            # An older file has only "username password" on a line.
            name, password = line.split()[:2]
            logins[name] = password
    return logins


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
    typer.echo(f"demo logins (role, username, password; also in {DEMO_DIR}/demo-logins.txt):")
    for username, password in demo_logins().items():
        role = DEMO_USERS[username].value
        typer.echo(f"  {role:<13} {username:<18} {password:<14} {ROLE_NOTES.get(role, '')}")


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")

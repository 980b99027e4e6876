"""``fairslot user``: create accounts for staff (and patients) from the command line."""

from __future__ import annotations

import typer

from fairslot.cli.common import load_platform
from fairslot.domain.accounts import Role
from fairslot.services import accounts

__all__ = ["register"]

user_app = typer.Typer(help="User accounts.", no_args_is_help=True)


@user_app.command("create")
def create(
    username: str = typer.Argument(..., help="login name, 3-32 characters a-z 0-9 _ . -"),
    role: Role = typer.Option(..., "--role", help="patient, registration, operator, "
                              "investigator or admin"),
    phone: str | None = typer.Option(None, help="mobile phone (required for patients)"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="FAIRSLOT_NEW_PASSWORD",
                                 help="asked for when not given (or FAIRSLOT_NEW_PASSWORD)"),
) -> None:
    """Create an account with the given role."""
    platform = load_platform()
    account = platform.run(accounts.create_user, username, password, role, phone)
    typer.echo(f"created {account.role.value} account {account.username} (id {account.id})")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")

"""``fairslot guard``: show and switch the request guard's levels, and its health.

Levels live in Redis so that every worker follows a switch within a second. Without Redis
(embedded mode) they live inside the server process, which this command cannot reach; it
says so instead of pretending (use the operator API of the running server then).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from fairslot.config import get_settings
from fairslot.guard.policy import GuardLevel, RouteGroup
from fairslot.guard.service import Guard

__all__ = ["register"]

_GROUPS = ", ".join(g.value for g in RouteGroup)
_LEVELS = ", ".join(lv.value for lv in GuardLevel)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _guard() -> Guard:
    settings = get_settings()
    if not settings.redis_url:
        raise _fail(
            "FAIRSLOT_REDIS_URL is not set: guard levels live inside the server process; "
            "switch them through the operator API of the running server"
        )
    try:
        return Guard(settings)
    except RuntimeError as exc:  # no master secret
        raise _fail(str(exc)) from None


async def _levels(group: str | None, level: str | None) -> list[str]:
    guard = _guard()
    try:
        if not await guard.state.ping():
            raise _fail("Redis is unreachable; levels were not read or changed")
        lines: list[str] = []
        if group is not None and level is not None:
            if not await guard.set_level(group, level):
                raise _fail("Redis failed while storing the level; nothing changed")
            lines.append(f"{group}: {level} (all workers follow within a second)")
            return lines
        levels = await guard.levels()
        for g, lv in levels.items():
            if group is None or g.value == group:
                lines.append(f"{g.value}: {lv.value}")
        return lines
    finally:
        await guard.close()


async def _status() -> dict[str, Any]:
    guard = _guard()
    try:
        status = await guard.probe()
        if guard.state.degraded:
            return dict(status)
        full = await guard.status()
        full.pop("in_flight", None)  # this process's own, meaningless from the CLI
        return full
    finally:
        await guard.close()


def register(app: typer.Typer) -> None:
    """Add the ``guard`` group to the main app."""
    group_app = typer.Typer(help="Request guard: levels per route group, health.",
                            no_args_is_help=True)

    @group_app.command("level")
    def level_command(
        group: str | None = typer.Argument(None, help=f"Route group: {_GROUPS}."),
        level: str | None = typer.Argument(None, help=f"New level: {_LEVELS}."),
    ) -> None:
        """Show the guard level of every group (or GROUP), or set GROUP to LEVEL."""
        if group is not None and group not in {g.value for g in RouteGroup}:
            raise _fail(f"unknown route group {group!r}; one of: {_GROUPS}")
        if level is not None and level not in {lv.value for lv in GuardLevel}:
            raise _fail(f"unknown level {level!r}; one of: {_LEVELS}")
        for line in asyncio.run(_levels(group, level)):
            typer.echo(line)

    @group_app.command("status")
    def status_command(
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Show whether the guard's Redis is reachable and every group's level."""
        status = asyncio.run(_status())
        if as_json:
            typer.echo(json.dumps(status, indent=2, sort_keys=True))
            return
        typer.echo(f"redis: {status['redis']}")
        typer.echo(f"guard: {status['guard']}")
        for g, lv in status.get("levels", {}).items():
            typer.echo(f"level {g}: {lv}")

    app.add_typer(group_app, name="guard")

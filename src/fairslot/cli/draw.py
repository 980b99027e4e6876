"""Placeholder registration; the command group is being written."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this group's commands to the main app."""

"""Placeholder registration; `records synth` is being written."""

from __future__ import annotations

import typer


def register(records_app: typer.Typer) -> None:
    """Add `records synth` to the records group."""

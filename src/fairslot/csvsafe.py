"""CSV files fairslot writes are opened by people in spreadsheets. A cell that starts like a
formula (``=HYPERLINK(...)``, ``@SUM(...)``, ``+cmd|...``) would run as one there, and a
user agent, a user name or an identifier from records is attacker-written text. Such a
cell is written with a leading apostrophe, which spreadsheets show as text (OWASP's advice
on CSV injection). Numbers and phone numbers (``+8613800138000``, ``-3.5``) are left as
they are."""

from __future__ import annotations

import os
import pathlib

import polars as pl

__all__ = ["FORMULA", "neutralise", "private_file"]

FORMULA = r"^(?:[=@\t\r]|[+\-].*[^0-9 .])"
"""A cell a spreadsheet would take for a formula: one starting with ``=``, ``@``, a tab or
a carriage return, or with ``+`` or ``-`` and not a plain number."""


def neutralise(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text cell that looks like a formula prefixed with ``'``."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text)


def private_file(path: pathlib.Path) -> None:
    """Create ``path`` empty and readable by its owner only (0600), or make an existing one
    so, before anything is written to it: files that may hold PII or evidence."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)

"""``fairslot draw``: check a published draw from its exported round document, and compute a
seed's commitment by hand."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import typer

from fairslot.domain.draw import SEED_BYTES, commitment, verify_round

__all__ = ["register"]

group = typer.Typer(help="Check a round's verifiable draw.", no_args_is_help=True)


def _cli_error(message: str) -> Exception:
    # Imported late: main.py imports every group, so a top-level import would be circular.
    from fairslot.cli.main import CliError

    return CliError(message)


@group.command("verify")
def verify(path: Path = typer.Argument(..., help="exported round document (JSON)")) -> None:
    """Recompute a round's draw from its document: OK (exit 0) or FAIL with reasons (exit 1).

    An unreadable or malformed document is an error (exit 2)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _cli_error(f"cannot read {path}: {exc}") from exc
    # A large round is millions of small JSON objects and none of them cyclic garbage; the
    # collector's repeated walks over them would cost about as much as the parsing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _cli_error(f"{path} is not valid JSON: {exc}") from exc
    finally:
        if was_enabled:
            gc.enable()
    verdict = verify_round(doc)
    if verdict.malformed:
        raise _cli_error(f"{path}: {verdict.reasons[0]}")
    if verdict.ok:
        typer.echo(f"OK: {verdict.summary()}")
        return
    for reason in verdict.reasons:
        typer.echo(f"FAIL: {reason}")
    raise typer.Exit(1)


@group.command("commitment")
def show_commitment(seed: str = typer.Argument(..., help="revealed seed, 64 hex digits")) -> None:
    """Print the SHA-256 commitment of a revealed seed, to compare with the published one."""
    try:
        raw = bytes.fromhex(seed)
    except ValueError as exc:
        raise _cli_error("the seed must be hex digits") from exc
    if len(raw) != SEED_BYTES:
        raise _cli_error(f"the seed must be {SEED_BYTES} bytes ({2 * SEED_BYTES} hex digits)")
    typer.echo(commitment(raw))


def register(app: typer.Typer) -> None:
    """Add the ``draw`` group to the main app."""
    app.add_typer(group, name="draw")

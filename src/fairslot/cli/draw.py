"""``fairslot draw``: check a published round (and a patient's receipt) from its document,
check that a newer checkpoint of the log of rounds extends an older one, and compute a
seed's commitment by hand. Exit status: 0 OK, 1 FAIL, 2 unreadable or malformed input,
3 PENDING (everything present checks out, the round is not drawn yet)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from fairslot.domain.draw import SEED_BYTES, commitment, verify_round
from fairslot.domain.draw.entries import MalformedRound
from fairslot.domain.draw.log import audit as audit_logs
from fairslot.domain.draw.verify import DEFAULT_TRUST, check_shape, read_json, verify_document

__all__ = ["register"]

group = typer.Typer(help="Check a round's verifiable draw.", no_args_is_help=True)

_MB = 1_000_000
_KEY = re.compile(r"[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{192}")


def _cli_error(message: str) -> Exception:
    # Imported late: main.py imports every group, so a top-level import would be circular.
    from fairslot.cli.main import CliError

    return CliError(message)


def _load(path: Path, max_bytes: int) -> Any:
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise _cli_error(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return read_json(raw, max_bytes=max_bytes)
    except MalformedRound as exc:
        raise _cli_error(f"{path}: {exc}") from exc


def _shape(path: Path, value: Any, schema: str) -> None:
    try:
        check_shape(value, schema)
    except MalformedRound as exc:
        raise _cli_error(f"{path}: malformed: {exc}") from exc


@group.command("verify")
def verify(
    path: Path = typer.Argument(..., help="exported round document (JSON)"),
    receipt: Path | None = typer.Option(None, "--receipt", help="a receipt the hospital "
                                        "signed for an entry: checked against the list"),
    proof: Path | None = typer.Option(None, "--proof", help="an inclusion proof of one "
                                      "entry, checked against the frozen root"),
    chain_key: list[str] = typer.Option([], "--chain-key", help="also trust this beacon "
                                        "chain: its chain hash (64 hex digits) or public "
                                        "key (96 or 192); repeatable"),
    max_mb: int = typer.Option(512, "--max-mb", min=1, help="refuse larger documents"),
) -> None:
    """Recompute a round from its document: OK (exit 0), FAIL with reasons (exit 1), or
    PENDING when the round is not drawn yet but everything published so far checks out
    (exit 3). An unreadable or malformed document, receipt or proof is an error (exit 2).

    Beacons of the League of Entropy's chains are trusted; others only with --chain-key."""
    for value in chain_key:
        if _KEY.fullmatch(value) is None:
            raise _cli_error(f"--chain-key {value[:20]!r} is not a chain hash (64 hex digits) "
                             "or a public key (96 or 192)")
    doc = _load(path, max_mb * _MB)
    receipt_doc = None if receipt is None else _load(receipt, _MB)
    proof_doc = None if proof is None else _load(proof, _MB)
    if isinstance(doc, dict) and doc.get("format") == "fairslot-round/1":
        _legacy(path, doc)
        return
    if receipt is not None:
        _shape(receipt, receipt_doc, "receipt")
    if proof is not None:
        _shape(proof, proof_doc, "inclusion")
    report = verify_document(doc, trust=DEFAULT_TRUST.with_keys(chain_key),
                             receipt=receipt_doc, proof=proof_doc)
    if report.status == "malformed":
        raise _cli_error(f"{path}: malformed document: {report.reasons[0]}")
    if report.status == "fail":
        for reason in report.reasons:
            typer.echo(f"FAIL: {reason}")
        for note in report.notes:
            typer.echo(f"  {note}")
        raise typer.Exit(1)
    typer.echo(f"{'OK' if report.ok else 'PENDING'}: {report.summary}")
    for note in report.notes:
        typer.echo(f"  {note}")
    if not report.ok:
        raise typer.Exit(3)


def _legacy(path: Path, doc: dict[str, Any]) -> None:
    verdict = verify_round(doc)
    if verdict.malformed:
        raise _cli_error(f"{path}: {verdict.reasons[0]}")
    if verdict.ok:
        typer.echo(f"FAIL: {path} is a fairslot-round/1 document: its arithmetic checks out "
                   f"({verdict.summary()}), but that format has no frozen list, no chain "
                   "beacon and no signatures, so it cannot show that nobody chose the outcome")
    for reason in verdict.reasons:
        typer.echo(f"FAIL: {reason}")
    raise typer.Exit(1)


@group.command("audit")
def audit(
    old: Path = typer.Argument(..., help="the older checkpoint (or log) you kept"),
    new: Path = typer.Argument(..., help="the newer checkpoint with its consistency proof, "
                                         "or the whole log"),
    max_mb: int = typer.Option(512, "--max-mb", min=1, help="refuse larger files"),
) -> None:
    """Check that the log of rounds behind NEW extends the one behind OLD: same key, the
    old records unchanged at the start of the new history. OK (exit 0) or FAIL (exit 1);
    unreadable or malformed files exit 2."""
    docs = []
    for path in (old, new):
        value = _load(path, max_mb * _MB)
        _shape(path, value, "log")
        docs.append(value)
    result = audit_logs(docs[0], docs[1])
    if result.ok:
        typer.echo(f"OK: {result.summary}")
        return
    for reason in result.reasons:
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

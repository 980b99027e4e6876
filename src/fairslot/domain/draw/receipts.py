"""Receipts: what the hospital signs for a patient each time their entry is written.

An entry, a change and a withdrawal each return a receipt signed with the hospital's draw
key. It names the round and the opening statement in force (so the commitment cannot be
re-issued without contradicting every receipt), the entry's ref, its ``seq`` (1 for the
entry, +1 per change or withdrawal), what it chose, when, and what kind of write it was.

After the close, a receipt is checked against the frozen list: the list must hold the ref
with the same ``seq`` and choices (or a later ``seq``, if the patient changed it again).
An entry missing from the list, or listed with an older ``seq``, is proof in the patient's
hands that the hospital dropped it: the receipt's signature shows the hospital accepted it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from fairslot.domain.draw.frozen import EXCLUDED, IN, WITHDRAWN, FrozenList
from fairslot.domain.draw.signing import DrawKey, verify_signed

__all__ = [
    "KINDS",
    "RECEIPT_TYPE",
    "ReceiptCheck",
    "check_receipt_against_list",
    "make_receipt",
    "rfc3339",
]

RECEIPT_TYPE = "fairslot-receipt/2"
KINDS = ("entry", "change", "withdrawal")


def rfc3339(when: dt.datetime) -> str:
    """The one time format of signed statements: UTC, whole seconds, ``Z``."""
    if when.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return when.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_receipt(key: DrawKey, *, round_id: str, opening: str, ref: str, seq: int, kind: str,
                 choices: Sequence[str], at: dt.datetime) -> dict[str, Any]:
    """A signed receipt. ``opening`` is the digest of the round's signed opening statement;
    ``choices`` are empty for a withdrawal."""
    if kind not in KINDS:
        raise ValueError(f"unknown receipt kind {kind!r}")
    if (kind == "withdrawal") != (not choices):
        raise ValueError("a withdrawal, and only a withdrawal, has no choices")
    return key.sign({"type": RECEIPT_TYPE, "round_id": round_id, "opening": opening,
                     "ref": ref, "seq": seq, "kind": kind, "choices": list(choices),
                     "at": rfc3339(at), "hospital_key": key.public_hex})


class ReceiptCheck(NamedTuple):
    """The outcome of checking one receipt against a round. ``ok`` false means the receipt
    proves something wrong (or is not a valid receipt of this round)."""

    ok: bool
    message: str


def check_receipt_against_list(receipt: Mapping[str, Any], *, round_id: str, opening: str,
                               hospital_key: str, frozen: FrozenList | None) -> ReceiptCheck:
    """Check a receipt (shape already checked by its schema) against a round: the hospital's
    signature, the round and opening it names, and, once the list is frozen, the entry's
    line in it."""
    ref, seq, kind = receipt["ref"], receipt["seq"], receipt["kind"]
    if receipt["hospital_key"] != hospital_key:
        return ReceiptCheck(False, "the receipt is signed by another key than the round's "
                                   f"({receipt['hospital_key']} instead of {hospital_key})")
    if not verify_signed(receipt, hospital_key):
        return ReceiptCheck(False, "the receipt's signature is not the hospital's: it was "
                                   "altered or not issued by this hospital")
    if receipt["round_id"] != round_id:
        return ReceiptCheck(False, f"the receipt is for round {receipt['round_id']!r}, not "
                                   f"{round_id!r}")
    if receipt["opening"] != opening:
        return ReceiptCheck(False, "the receipt names another opening statement than the "
                                   "document's: the round was re-issued after this entry "
                                   f"(receipt {receipt['opening']}, document {opening})")
    if frozen is None:
        return ReceiptCheck(True, f"receipt for {ref!r} (seq {seq}, {kind}) is the "
                                  "hospital's; the list is not frozen yet")
    listed = frozen.entry(ref)
    if listed is None:
        return ReceiptCheck(False, f"entry {ref!r} is missing from the frozen list, but the "
                                   f"hospital's signed receipt shows it was {_did(kind)} at "
                                   f"{receipt['at']} (seq {seq}): the entry was dropped")
    if listed.seq < seq:
        return ReceiptCheck(False, f"the frozen list has entry {ref!r} at seq {listed.seq}, "
                                   f"but the hospital's signed receipt shows seq {seq} "
                                   f"({kind} at {receipt['at']}): a later write was dropped")
    if listed.seq > seq:
        return ReceiptCheck(True, f"entry {ref!r} was written again after this receipt "
                                  f"(seq {seq}); the frozen list has seq {listed.seq}: check "
                                  "the latest receipt")
    if kind == "withdrawal":
        if listed.status != WITHDRAWN:
            return ReceiptCheck(False, f"entry {ref!r} was withdrawn (signed receipt, seq "
                                       f"{seq}) but the frozen list has it {listed.status}")
        return ReceiptCheck(True, f"entry {ref!r} is listed as withdrawn, as the receipt says")
    if listed.status == WITHDRAWN or list(listed.choices) != list(receipt["choices"]):
        return ReceiptCheck(False, f"the frozen list has entry {ref!r} as "
                                   f"'{listed.leaf()}', but the hospital's signed receipt "
                                   f"(seq {seq}) says it chose {receipt['choices']}")
    if listed.status == EXCLUDED:
        return ReceiptCheck(True, f"entry {ref!r} is in the frozen list, excluded from the "
                                  f"draw: {listed.reason}")
    assert listed.status == IN
    return ReceiptCheck(True, f"entry {ref!r} is in the frozen list as the receipt says "
                              f"(choices {','.join(listed.choices)}, seq {seq})")


def _did(kind: str) -> str:
    return {"entry": "entered", "change": "changed", "withdrawal": "withdrawn"}[kind]

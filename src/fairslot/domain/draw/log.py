"""The hospital's append-only log of rounds, and its signed checkpoints.

Every public moment of every round appends one record to the log: ``opened`` (the digest
of the signed opening statement, which holds the commitment), ``frozen`` (the frozen
list's root) and ``drawn`` (commitment, root and the digest of the results). The records
are the leaves of an RFC 6962 tree; a *checkpoint* is the hospital's signature over the
tree's size and root at a moment. Anyone who keeps an old checkpoint can ask for a newer
one with a consistency proof and check that the new history begins with the old one
(``fairslot draw audit OLD NEW``): a hospital that shows two people different histories,
or rewrites a round after the fact, is caught by the first person who compares.

A record's leaf data is its canonical JSON (``signing.canonical_json``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fairslot.domain import merkle
from fairslot.domain.draw.receipts import rfc3339
from fairslot.domain.draw.signing import DrawKey, canonical_json, verify_signed

__all__ = [
    "CHECKPOINT_TYPE",
    "LOG_FORMAT",
    "PROOF_FORMAT",
    "RECORD_TYPE",
    "AuditResult",
    "RoundLog",
    "audit",
    "drawn_record",
    "frozen_record",
    "log_root",
    "opened_record",
    "sign_checkpoint",
]

RECORD_TYPE = "fairslot-log-record/2"
CHECKPOINT_TYPE = "fairslot-checkpoint/2"
LOG_FORMAT = "fairslot-log/2"
PROOF_FORMAT = "fairslot-log-proof/2"


def opened_record(round_id: str, opening: str) -> dict[str, Any]:
    return {"type": RECORD_TYPE, "kind": "opened", "round_id": round_id, "opening": opening}


def frozen_record(round_id: str, opening: str, root: str, size: int) -> dict[str, Any]:
    return {"type": RECORD_TYPE, "kind": "frozen", "round_id": round_id, "opening": opening,
            "root": root, "size": size}


def drawn_record(round_id: str, commitment: str, root: str, results: str) -> dict[str, Any]:
    return {"type": RECORD_TYPE, "kind": "drawn", "round_id": round_id,
            "commitment": commitment, "root": root, "results": results}


@dataclass
class RoundLog:
    """The log as the hospital keeps it (records in order). Pure: storing the records is
    the caller's business."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def append(self, record: Mapping[str, Any]) -> int:
        """Add a record; returns its index."""
        self.records.append(dict(record))
        return len(self.records) - 1

    def tree(self, size: int | None = None) -> merkle.Tree:
        upto = self.records if size is None else self.records[:size]
        return merkle.Tree.of_leaves([canonical_json(r) for r in upto])

    def checkpoint(self, key: DrawKey, at: dt.datetime) -> dict[str, Any]:
        """A signed tree head of the whole log as it is now."""
        return sign_checkpoint(key, len(self.records), self.tree().root, at)

    def consistency(self, old_size: int, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        """The document that takes a holder of the checkpoint of ``old_size`` records to
        ``checkpoint`` (which must be of this log's current size)."""
        proof = self.tree(checkpoint["size"]).consistency_proof(old_size)
        return {"format": PROOF_FORMAT, "checkpoint": dict(checkpoint),
                "from_size": old_size, "proof": [p.hex() for p in proof]}

    def document(self, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
        """The whole public log up to ``checkpoint``."""
        return {"format": LOG_FORMAT, "checkpoint": dict(checkpoint),
                "records": [dict(r) for r in self.records[:checkpoint["size"]]]}


def sign_checkpoint(key: DrawKey, size: int, root: bytes, at: dt.datetime) -> dict[str, Any]:
    """The hospital's signature over a log of ``size`` records whose tree has ``root``."""
    return key.sign({"type": CHECKPOINT_TYPE, "key": key.public_hex, "size": size,
                     "root": root.hex(), "time": rfc3339(at)})


def log_root(leaves: Sequence[bytes]) -> bytes:
    """The root of a log whose records' canonical JSON are ``leaves``."""
    return merkle.Tree.of_leaves(leaves).root


class AuditResult(NamedTuple):
    ok: bool
    reasons: tuple[str, ...]
    summary: str


def _checkpoint_of(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    if doc.get("type") == CHECKPOINT_TYPE:
        return doc
    checkpoint: Mapping[str, Any] = doc["checkpoint"]
    return checkpoint


def _checkpoint_problems(name: str, cp: Mapping[str, Any]) -> list[str]:
    if not verify_signed(cp, cp["key"]):
        return [f"the {name} checkpoint's signature does not verify under its key {cp['key']}"]
    return []


def audit(old: Mapping[str, Any], new: Mapping[str, Any]) -> AuditResult:
    """Check that the log behind ``new`` extends the log behind ``old``. Each is a
    checkpoint, a consistency-proof document or a whole log document (shapes already
    checked by the schema)."""
    old_cp, new_cp = _checkpoint_of(old), _checkpoint_of(new)
    reasons = _checkpoint_problems("old", old_cp) + _checkpoint_problems("new", new_cp)
    if old_cp["key"] != new_cp["key"]:
        reasons.append("the two checkpoints are signed by different keys "
                       f"({old_cp['key']} and {new_cp['key']})")
    m, n = old_cp["size"], new_cp["size"]
    old_root, new_root = bytes.fromhex(old_cp["root"]), bytes.fromhex(new_cp["root"])
    for name, doc, cp in (("old", old, old_cp), ("new", new, new_cp)):
        if doc.get("format") == LOG_FORMAT:
            records = doc["records"]
            tree = merkle.Tree.of_leaves([canonical_json(r) for r in records])
            if tree.size != cp["size"] or tree.root.hex() != cp["root"]:
                reasons.append(f"the {name} log's {len(records)} records do not hash to its "
                               f"checkpoint (size {cp['size']}, root {cp['root']})")
    if m > n:
        reasons.append(f"the new checkpoint ({n} records) is smaller than the old one ({m}): "
                       "history was cut or the files are swapped")
    elif m == n:
        if old_root != new_root:
            reasons.append(f"two different histories of {m} records: the checkpoints' roots "
                           f"differ ({old_cp['root']} and {new_cp['root']}); the log was "
                           "forked or rewritten")
    else:
        proof = _proof_for(new, m)
        if proof is None:
            reasons.append(f"the new file gives no way to check that it extends the old "
                           f"checkpoint: it needs a consistency proof from size {m}, or the "
                           "whole log")
        elif not merkle.verify_consistency(m, n, old_root, new_root, proof):
            reasons.append(f"the new log does not extend the old one: its first {m} records "
                           "are not the records the old checkpoint signed (forked or "
                           "rewritten history)")
    if old_cp["time"] > new_cp["time"] and m < n:
        reasons.append(f"the newer checkpoint is dated {new_cp['time']}, before the older "
                       f"one's {old_cp['time']}")
    summary = (f"the log of key {new_cp['key'][:16]}... at {n} records ({new_cp['time']}) "
               f"extends the one at {m} records ({old_cp['time']})")
    return AuditResult(not reasons, tuple(reasons), summary)


def _proof_for(new: Mapping[str, Any], old_size: int) -> Sequence[bytes] | None:
    if new.get("format") == PROOF_FORMAT and new["from_size"] == old_size:
        return [bytes.fromhex(p) for p in new["proof"]]
    if new.get("format") == LOG_FORMAT:
        records = new["records"]
        return merkle.Tree.of_leaves([canonical_json(r) for r in records]) \
            .consistency_proof(old_size)
    return None

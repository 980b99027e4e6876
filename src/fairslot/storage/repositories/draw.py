"""What the hospital signed for the draw (docs/draw.md, format ``fairslot-round/2``): the
statements of each round, its frozen list, its beacon, the receipts given to patients, the
log of rounds and its checkpoints. Every table here is append-only (migration 0005): rows
are added, never changed, so a published fact cannot be quietly rewritten."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.storage import tables as t

__all__ = ["DrawRepository", "StoredBeacon", "StoredFrozenList", "receipt_values"]


_INSERT_RECEIPT = sa.insert(t.draw_receipts)
"""Built once (an entry at a release's peak writes a receipt): not built and hashed again."""


def receipt_values(body: dict[str, Any]) -> dict[str, Any]:
    """A receipt's row but its round and entry: what the receipt says, and itself stored
    byte for byte as signed."""
    return {"ref": body["ref"], "seq": body["seq"], "kind": body["kind"],
            "at": dt.datetime.fromisoformat(body["at"]), "body": _dump(body)}


def _dump(value: dict[str, Any]) -> str:
    """Canonical JSON (docs/draw.md): what was signed or hashed, stored byte for byte."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


@dataclasses.dataclass(frozen=True, slots=True)
class StoredFrozenList:
    leaves: list[str]
    root: str
    size: int
    drawn: int
    frozen_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class StoredBeacon:
    chain_hash: str
    round: int
    signature: str
    previous_signature: str | None


class DrawRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    # --- statements (opening, freeze, result)

    def add_statement(self, round_id: int, kind: str, body: dict[str, Any], digest: str,
                      signed_at: dt.datetime, signing_key: str | None = None) -> None:
        self.db.execute(sa.insert(t.draw_statements).values(
            round_id=round_id, kind=kind, body=_dump(body), digest=digest,
            signed_at=signed_at, signing_key=signing_key))

    def opening_signed(self, round_id: int) -> tuple[str, str | None] | None:
        """The digest of the round's opening and the public key that signed it (None if not
        kept), or None when the round has no signed opening."""
        s = t.draw_statements
        row = self.db.execute(sa.select(s.c.digest, s.c.signing_key).where(
            s.c.round_id == round_id, s.c.kind == "opening")).first()
        if row is None:
            return None
        return str(row.digest), None if row.signing_key is None else str(row.signing_key)

    def opening_key(self, round_id: int) -> str | None:
        """The public key (hex) that signed the round's opening, if it was kept."""
        found = self.db.scalar(sa.select(t.draw_statements.c.signing_key).where(
            t.draw_statements.c.round_id == round_id, t.draw_statements.c.kind == "opening"))
        return None if found is None else str(found)

    def statements(self, round_id: int) -> dict[str, dict[str, Any]]:
        """kind -> the signed statement, for the statements the round has so far."""
        return {kind: json.loads(body) for kind, body in self.db.execute(
            sa.select(t.draw_statements.c.kind, t.draw_statements.c.body)
            .where(t.draw_statements.c.round_id == round_id)).all()}

    def statement(self, round_id: int, kind: str) -> dict[str, Any] | None:
        body = self.db.scalar(sa.select(t.draw_statements.c.body).where(
            t.draw_statements.c.round_id == round_id, t.draw_statements.c.kind == kind))
        return None if body is None else dict(json.loads(body))

    def opening_digest(self, round_id: int) -> str | None:
        found = self.db.scalar(sa.select(t.draw_statements.c.digest).where(
            t.draw_statements.c.round_id == round_id, t.draw_statements.c.kind == "opening"))
        return None if found is None else str(found)

    # --- the frozen list and the beacon

    def add_frozen_list(self, round_id: int, leaves: list[str], root: str, size: int,
                        drawn: int, frozen_at: dt.datetime) -> None:
        self.db.execute(sa.insert(t.draw_frozen_lists).values(
            round_id=round_id, leaves="\n".join(leaves), root=root, size=size, drawn=drawn,
            frozen_at=frozen_at))

    def frozen_list(self, round_id: int) -> StoredFrozenList | None:
        row = self.db.execute(sa.select(t.draw_frozen_lists).where(
            t.draw_frozen_lists.c.round_id == round_id)).first()
        if row is None:
            return None
        return StoredFrozenList(row.leaves.split("\n") if row.leaves else [], row.root,
                                int(row.size), int(row.drawn), row.frozen_at)

    def add_beacon(self, round_id: int, beacon: StoredBeacon, fetched_at: dt.datetime) -> None:
        self.db.execute(sa.insert(t.draw_beacons).values(
            round_id=round_id, chain_hash=beacon.chain_hash, beacon_round=beacon.round,
            signature=beacon.signature, previous_signature=beacon.previous_signature,
            fetched_at=fetched_at))

    def beacon(self, round_id: int) -> StoredBeacon | None:
        row = self.db.execute(sa.select(t.draw_beacons).where(
            t.draw_beacons.c.round_id == round_id)).first()
        if row is None:
            return None
        return StoredBeacon(row.chain_hash, int(row.beacon_round), row.signature,
                            row.previous_signature)

    # --- receipts

    def add_receipt(self, round_id: int, entry_id: int, body: dict[str, Any]) -> None:
        self.db.execute(_INSERT_RECEIPT, {"round_id": round_id, "entry_id": entry_id,
                                          **receipt_values(body)})

    def last_seq(self, entry_id: int) -> int:
        return int(self.db.scalar(sa.select(sa.func.max(t.draw_receipts.c.seq)).where(
            t.draw_receipts.c.entry_id == entry_id)) or 0)

    def receipts(self, entry_id: int) -> list[dict[str, Any]]:
        """The entry's receipts, oldest first."""
        return [dict(json.loads(body)) for body in self.db.scalars(
            sa.select(t.draw_receipts.c.body).where(t.draw_receipts.c.entry_id == entry_id)
            .order_by(t.draw_receipts.c.seq)).all()]

    def latest_receipts(self, entry_ids: list[int]) -> dict[int, dict[str, Any]]:
        if not entry_ids:
            return {}
        r = t.draw_receipts
        latest = (sa.select(r.c.entry_id, sa.func.max(r.c.seq).label("seq"))
                  .where(r.c.entry_id.in_(set(entry_ids))).group_by(r.c.entry_id).subquery())
        return {int(eid): dict(json.loads(body)) for eid, body in self.db.execute(
            sa.select(r.c.entry_id, r.c.body).join(
                latest, sa.and_(latest.c.entry_id == r.c.entry_id,
                                latest.c.seq == r.c.seq))).all()}

    # --- the log of rounds and its checkpoints

    def log_size(self) -> int:
        return int(self.db.scalar(sa.select(sa.func.count()).select_from(t.draw_log_records))
                   or 0)

    def append_log(self, round_id: int, kind: str, body: dict[str, Any],
                   at: dt.datetime) -> tuple[int, bytes]:
        """Append a record at the next position (the caller holds the log's lock); returns
        the position and the record's leaf data (its canonical JSON)."""
        position = self.log_size()
        stored = _dump(body)
        self.db.execute(sa.insert(t.draw_log_records).values(
            position=position, round_id=round_id, kind=kind, body=stored, at=at))
        return position, stored.encode("ascii")

    def log_records(self, size: int | None = None) -> list[dict[str, Any]]:
        query = sa.select(t.draw_log_records.c.body).order_by(t.draw_log_records.c.position)
        if size is not None:
            query = query.limit(size)
        return [dict(json.loads(body)) for body in self.db.scalars(query).all()]

    def log_leaves(self) -> list[bytes]:
        """Every record's leaf data, in order: the stored body is its canonical JSON."""
        return [body.encode("ascii") for body in self.db.scalars(
            sa.select(t.draw_log_records.c.body).order_by(t.draw_log_records.c.position))]

    def last_seqs(self, round_id: int) -> dict[int, int]:
        """Entry id -> the ``seq`` of its latest receipt, for the round's entries."""
        r = t.draw_receipts
        return {int(eid): int(seq) for eid, seq in self.db.execute(
            sa.select(r.c.entry_id, sa.func.max(r.c.seq)).where(r.c.round_id == round_id)
            .group_by(r.c.entry_id)).all()}

    def add_checkpoint(self, body: dict[str, Any], time: dt.datetime,
                       frontier: Sequence[bytes] = ()) -> None:
        self.db.execute(sa.insert(t.draw_checkpoints).values(
            size=body["size"], root=body["root"], time=time, body=_dump(body)))
        if frontier:
            self.db.execute(sa.insert(t.draw_log_frontiers).values(
                size=body["size"], frontier=",".join(h.hex() for h in frontier)))

    def frontier(self, size: int) -> list[bytes] | None:
        """The frontier kept with the checkpoint of ``size`` records, if any."""
        kept = self.db.scalar(sa.select(t.draw_log_frontiers.c.frontier)
                              .where(t.draw_log_frontiers.c.size == size))
        return None if kept is None else [bytes.fromhex(h) for h in kept.split(",")]

    def checkpoint(self, size: int | None = None) -> dict[str, Any] | None:
        """The checkpoint of ``size`` records, or the latest one."""
        query = sa.select(t.draw_checkpoints.c.body)
        if size is None:
            query = query.order_by(t.draw_checkpoints.c.size.desc()).limit(1)
        else:
            query = query.where(t.draw_checkpoints.c.size == size)
        body = self.db.scalar(query)
        return None if body is None else dict(json.loads(body))

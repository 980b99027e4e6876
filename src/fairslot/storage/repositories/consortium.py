"""What a booking, a registration or a payment needs of the consortium inside its own
transaction: the staff's review decisions on other members' entries, opening a review when
this hospital's policy holds a request, and the consortium's audit log. The shared list
itself is read from memory (``fairslot.consortium``), never here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.storage import tables as t

__all__ = ["ConsortiumReviewRepository"]


class ConsortiumReviewRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def statuses(self, refs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """The review status (pending, cleared, refused) of each entry that has one."""
        wanted = sorted(set(refs))
        if not wanted:
            return {}
        r = t.consortium_reviews
        rows = self.db.execute(sa.select(r.c.issuer, r.c.entry_no, r.c.status).where(
            sa.tuple_(r.c.issuer, r.c.entry_no).in_(wanted))).all()
        return {(row.issuer, int(row.entry_no)): str(row.status) for row in rows}

    def open(self, issuer: str, entry_no: int, *, point: str, patient_id: int | None,
             account_id: int | None, now: dt.datetime) -> bool:
        """Open a pending review of the entry unless it has one; True when opened."""
        r = t.consortium_reviews
        found = self.db.execute(sa.select(r.c.id).where(
            r.c.issuer == issuer, r.c.entry_no == entry_no)).first()
        if found is not None:
            return False
        self.db.execute(r.insert().values(
            issuer=issuer, entry_no=entry_no, status="pending", point=point,
            patient_id=patient_id, account_id=account_id, created_at=now))
        return True

    def audit(self, now: dt.datetime, actor: str, action: str, member: str | None,
              entry_no: int | None, **detail: Any) -> None:
        self.db.execute(t.consortium_audit.insert().values(
            at=now, actor=actor, action=action, member=member, entry_no=entry_no,
            detail=detail))

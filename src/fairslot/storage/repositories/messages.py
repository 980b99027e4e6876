"""Messages sent to people (and the development outbox), one-time codes, and failed
real-name checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.crypto import Keyring
from fairslot.storage import tables as t

__all__ = ["CodeRepository", "MessageRepository", "SentMessage", "VerificationCode"]


@dataclasses.dataclass(frozen=True, slots=True)
class SentMessage:
    id: int
    account_id: int | None
    channel: str
    recipient: str
    kind: str
    language: str
    subject: str
    body: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


class MessageRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def add(self, *, account_id: int | None, channel: str, recipient: str, kind: str,
            language: str, subject: str, body: str, now: dt.datetime,
            sent: bool) -> int:
        return int(self.db.execute(sa.insert(t.messages).values(
            account_id=account_id, channel=channel, recipient=recipient, kind=kind,
            language=language, subject=subject, body=body, created_at=now,
            sent_at=now if sent else None).returning(t.messages.c.id)).scalar_one())

    def get(self, message_id: int) -> SentMessage | None:
        row = self.db.execute(sa.select(t.messages).where(t.messages.c.id == message_id)).first()
        return None if row is None else _message(row)

    def sent(self, message_id: int, now: dt.datetime, provider_ref: str) -> None:
        self.db.execute(sa.update(t.messages).where(t.messages.c.id == message_id)
                        .values(sent_at=now, provider_ref=provider_ref[:80]))

    def in_channel(self, channel: str, *, account_id: int | None = None,
                   limit: int = 50) -> list[SentMessage]:
        query = (sa.select(t.messages).where(t.messages.c.channel == channel)
                 .order_by(t.messages.c.id.desc()).limit(limit))
        if account_id is not None:
            query = query.where(t.messages.c.account_id == account_id)
        return [_message(r) for r in self.db.execute(query).all()]


def _message(row: sa.Row[tuple[object, ...]]) -> SentMessage:
    m = row._mapping
    return SentMessage(m["id"], m["account_id"], m["channel"], m["recipient"], m["kind"],
                       m["language"], m["subject"], m["body"], m["created_at"], m["sent_at"])


@dataclasses.dataclass(frozen=True, slots=True)
class VerificationCode:
    id: int
    purpose: str
    account_id: int
    phone: str
    patient_id: int | None
    code_hash: str
    expires_at: dt.datetime
    attempts: int
    used_at: dt.datetime | None


class CodeRepository:
    def __init__(self, db: DbSession, keys: Keyring) -> None:
        self.db = db
        self.keys = keys

    def add(self, *, purpose: str, account_id: int, phone: str, patient_id: int | None,
            code_hash: str, now: dt.datetime, expires_at: dt.datetime) -> int:
        # Asking again replaces what was asked before: one live code per purpose and account.
        c = t.verification_codes
        self.db.execute(sa.update(c).where(c.c.account_id == account_id, c.c.purpose == purpose,
                                           c.c.used_at.is_(None), c.c.expires_at > now)
                        .values(expires_at=now))
        return int(self.db.execute(sa.insert(c).values(
            purpose=purpose, account_id=account_id, phone=phone,
            phone_index=self.keys.blind_index("phone", phone), patient_id=patient_id,
            code_hash=code_hash, created_at=now, expires_at=expires_at, attempts=0)
            .returning(c.c.id)).scalar_one())

    def live(self, account_id: int, purpose: str, now: dt.datetime) -> VerificationCode | None:
        c = t.verification_codes
        row = self.db.execute(
            sa.select(c).where(c.c.account_id == account_id, c.c.purpose == purpose,
                               c.c.used_at.is_(None), c.c.expires_at > now)
            .order_by(c.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        m = row._mapping
        return VerificationCode(m["id"], m["purpose"], m["account_id"], m["phone"],
                                m["patient_id"], m["code_hash"], m["expires_at"],
                                m["attempts"], m["used_at"])

    def attempt(self, code_id: int) -> None:
        c = t.verification_codes
        self.db.execute(sa.update(c).where(c.c.id == code_id)
                        .values(attempts=c.c.attempts + 1))

    def use(self, code_id: int, now: dt.datetime) -> None:
        c = t.verification_codes
        self.db.execute(sa.update(c).where(c.c.id == code_id).values(used_at=now))

    def sent_since(self, *, since: dt.datetime, account_id: int | None = None,
                   phone: str | None = None, patient_id: int | None = None,
                   purposes: Sequence[str] = ()) -> Sequence[dt.datetime]:
        """When codes were sent since ``since``: asked for by this account, to this phone,
        about this patient (a consent), for these purposes (any if none given)."""
        c = t.verification_codes
        query = sa.select(c.c.created_at).where(c.c.created_at >= since)
        if account_id is not None:
            query = query.where(c.c.account_id == account_id)
        if phone is not None:
            query = query.where(c.c.phone_index == self.keys.blind_index("phone", phone))
        if patient_id is not None:
            query = query.where(c.c.patient_id == patient_id)
        if purposes:
            query = query.where(c.c.purpose.in_(list(purposes)))
        return self.db.scalars(query.order_by(c.c.created_at)).all()

    # Failed real-name checks

    def identity_failed(self, now: dt.datetime, account_id: int | None,
                        id_number_index: str | None) -> None:
        self.db.execute(sa.insert(t.identity_check_failures).values(
            at=now, account_id=account_id, id_number_index=id_number_index))

    def identity_failures(self, since: dt.datetime, *, account_id: int | None = None,
                          id_number_index: str | None = None) -> list[dt.datetime]:
        """When the matching failed checks happened since ``since``, oldest first."""
        f = t.identity_check_failures
        query = sa.select(f.c.at).where(f.c.at >= since)
        if account_id is not None:
            query = query.where(f.c.account_id == account_id)
        if id_number_index is not None:
            query = query.where(f.c.id_number_index == id_number_index)
        return list(self.db.scalars(query.order_by(f.c.at)).all())

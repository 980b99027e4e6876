"""Accounts, their log-in tokens, the patients (verified identities) and who manages whom."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.crypto import Keyring
from fairslot.domain.accounts import Account, Patient, Role
from fairslot.storage import tables as t
from fairslot.storage.locks import lock_columns
from fairslot.storage.repositories import raw

__all__ = ["AccountRepository", "IdentityClaim", "PatientRepository"]


_BY_TOKEN = (
    sa.select(*(t.accounts.c[f.name] for f in dataclasses.fields(Account)))
    .join(t.auth_tokens, t.auth_tokens.c.account_id == t.accounts.c.id)
    .where(t.auth_tokens.c.token_hash == sa.bindparam("token"),
           t.auth_tokens.c.expires_at > sa.bindparam("now", type_=t.auth_tokens.c.expires_at.type))
)

_ACCOUNT_FIELDS = tuple(f.name for f in dataclasses.fields(Account))
_ACCOUNT_DECODERS = raw.decoders(t.accounts, _ACCOUNT_FIELDS, "")
# ``_BY_TOKEN`` as psycopg's text, for PostgreSQL.
_BY_TOKEN_SQL = (
    "SELECT " + ", ".join(f"a.{f}" for f in _ACCOUNT_FIELDS)
    + " FROM accounts a JOIN auth_tokens t ON t.account_id = a.id"
    " WHERE t.token_hash = %s AND t.expires_at > %s")


@dataclasses.dataclass(frozen=True)
class IdentityClaim:
    """A claim the desk made for a person: their identity to their own account."""

    id: int
    patient_id: int
    account_id: int
    requested_by: int
    created_at: dt.datetime
    expires_at: dt.datetime
    status: str
    """pending, approved, rejected or expired (a pending one past ``expires_at`` is
    expired too, until someone marks it)."""
    decided_by: int | None
    decided_at: dt.datetime | None

    def live(self, now: dt.datetime) -> bool:
        return self.status == "pending" and now < self.expires_at


class AccountRepository:
    def __init__(self, db: DbSession, keys: Keyring) -> None:
        self.db = db
        self.keys = keys

    def add(self, account: Account) -> None:
        self.db.add(account)

    def get(self, account_id: int) -> Account | None:
        return self.db.get(Account, account_id)

    def by_username(self, username: str) -> Account | None:
        return self.db.scalars(sa.select(Account).where(t.accounts.c.username == username)).first()

    def all(self, *, role: Role | None = None, limit: int = 500) -> Sequence[Account]:
        query = sa.select(Account).order_by(t.accounts.c.id).limit(limit)
        if role is not None:
            query = query.where(t.accounts.c.role == role.value)
        return self.db.scalars(query).all()

    def count_with_phone(self, phone: str, *, verified_only: bool = False) -> int:
        index = self.keys.blind_index("phone", phone)
        query = sa.select(sa.func.count()).where(t.accounts.c.phone_index == index)
        if verified_only:
            query = query.where(t.accounts.c.phone_verified_at.is_not(None))
        return int(self.db.scalar(query) or 0)

    def with_phone(self, phone: str) -> Sequence[Account]:
        index = self.keys.blind_index("phone", phone)
        return self.db.scalars(sa.select(Account).where(t.accounts.c.phone_index == index)
                               .order_by(t.accounts.c.id)).all()

    def add_token(self, token_hash: str, account_id: int, now: dt.datetime,
                  expires_at: dt.datetime) -> None:
        self.db.execute(sa.insert(t.auth_tokens).values(
            token_hash=token_hash, account_id=account_id, created_at=now, expires_at=expires_at))

    def by_token(self, token_hash: str, now: dt.datetime) -> Account | None:
        """The account a live log-in token belongs to, as a plain (unattached) object: every
        request asks this, so it is one prepared Core statement, no ORM loading. To change
        the account, load it with ``get``."""
        if self.db.get_bind().dialect.name == "postgresql":
            # On psycopg's connection itself: the same statement through SQLAlchemy cost
            # about three times as much client CPU (its execution context and psycopg's
            # column descriptions, which a tuple row does not need).
            conn = raw.connection(self.db)
            with raw.errors(), conn.cursor() as cur:
                cur.execute(_BY_TOKEN_SQL, (token_hash, now))
                found = cur.fetchone()
            if found is None:
                return None
            dialect = self.db.get_bind().dialect
            return Account(**{f: value if decode is None else decode(value, dialect)
                              for (f, _, decode), value in zip(_ACCOUNT_DECODERS, found,
                                                               strict=True)})
        row = self.db.execute(_BY_TOKEN, {"token": token_hash, "now": now}).first()
        return None if row is None else Account(**row._mapping)

    def drop_token(self, token_hash: str) -> None:
        self.db.execute(sa.delete(t.auth_tokens).where(t.auth_tokens.c.token_hash == token_hash))

    def drop_tokens_of(self, account_id: int) -> None:
        self.db.execute(sa.delete(t.auth_tokens).where(t.auth_tokens.c.account_id == account_id))


_MANAGED: dict[int, sa.Select[Any]] = {}


def _managed_statement(locks: int) -> sa.Select[Any]:
    """``is_managed_by``'s statement taking ``locks`` advisory locks (bound as ``key0``...),
    built once per count: an entry or booking at a release's peak runs it every time."""
    found = _MANAGED.get(locks)
    if found is None:
        ap = t.account_patients
        managed = sa.select(sa.func.count()).where(
            ap.c.account_id == sa.bindparam("account_id"),
            ap.c.patient_id == sa.bindparam("patient_id"),
            ap.c.removed_at.is_(None)).scalar_subquery()
        found = _MANAGED[locks] = sa.select(managed.label("managed"), *lock_columns(
            [sa.bindparam(f"key{n}", type_=sa.BigInteger) for n in range(locks)]))
    return found


class PatientRepository:
    def __init__(self, db: DbSession, keys: Keyring) -> None:
        self.db = db
        self.keys = keys

    def add(self, patient: Patient) -> None:
        self.db.add(patient)

    def get(self, patient_id: int) -> Patient | None:
        return self.db.get(Patient, patient_id)

    def by_ids(self, patient_ids: Sequence[int]) -> dict[int, Patient]:
        if not patient_ids:
            return {}
        found = self.db.scalars(sa.select(Patient).where(t.patients.c.id.in_(set(patient_ids))))
        return {p.id or 0: p for p in found}

    def by_id_number(self, id_number: str) -> Patient | None:
        index = self.keys.blind_index("id_number", id_number)
        return self.db.scalars(
            sa.select(Patient).where(t.patients.c.id_number_index == index)).first()

    def of_account(self, account_id: int) -> Sequence[Patient]:
        """The patients the account manages now (links removed since are history)."""
        ap = t.account_patients
        return self.db.scalars(
            sa.select(Patient).join(ap, ap.c.patient_id == t.patients.c.id)
            .where(ap.c.account_id == account_id, ap.c.removed_at.is_(None))
            .order_by(ap.c.added_at)
        ).all()

    def managed(self, account_id: int, patient_id: int) -> Patient | None:
        """The patient, when this account manages them now."""
        ap = t.account_patients
        return self.db.scalars(
            sa.select(Patient).join(ap, ap.c.patient_id == t.patients.c.id)
            .where(ap.c.account_id == account_id, ap.c.patient_id == patient_id,
                   ap.c.removed_at.is_(None))).first()

    def is_managed_by(self, patient_id: int, account_id: int,
                      lock_keys: Sequence[int] = ()) -> bool:
        """Whether the account manages the patient now; with ``lock_keys`` (PostgreSQL's
        advisory keys, ``UnitOfWork.lock_keys``) the same statement takes those locks, as
        the booking's ``target`` does."""
        keys = list(lock_keys)
        params: dict[str, int] = {"account_id": account_id, "patient_id": patient_id}
        params.update((f"key{n}", key) for n, key in enumerate(keys))
        managed = self.db.execute(_managed_statement(len(keys)), params).scalar_one()
        return int(managed) == 1

    def link(self, account_id: int, patient_id: int, now: dt.datetime) -> None:
        """Link, or link again after a removal (the row keeps the history of the link)."""
        ap = t.account_patients
        again = self.db.execute(sa.update(ap).where(
            ap.c.account_id == account_id, ap.c.patient_id == patient_id)
            .values(added_at=now, removed_at=None))
        if not again.rowcount:  # type: ignore[attr-defined]
            self.db.execute(sa.insert(ap).values(account_id=account_id, patient_id=patient_id,
                                                 added_at=now))

    def unlink(self, account_id: int, patient_id: int, now: dt.datetime) -> int:
        ap = t.account_patients
        result = self.db.execute(sa.update(ap).where(
            ap.c.account_id == account_id, ap.c.patient_id == patient_id,
            ap.c.removed_at.is_(None)).values(removed_at=now))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def linked_since(self, account_id: int, since: dt.datetime) -> set[int]:
        """Every patient the account manages now or managed at any time since ``since``: a
        removed link still counts against the patients-per-account quota until it ages out,
        so unlinking one person and linking another does not reset the count."""
        ap = t.account_patients
        rows = self.db.scalars(sa.select(ap.c.patient_id).where(
            ap.c.account_id == account_id,
            sa.or_(ap.c.removed_at.is_(None), ap.c.removed_at >= since))).all()
        return {int(p) for p in rows}

    def holder(self, patient_id: int) -> int | None:
        """The account that claimed the identity as its own, if anyone has."""
        p = t.patients
        found = self.db.scalar(sa.select(p.c.registered_account_id).where(
            p.c.id == patient_id, p.c.claimed_at.is_not(None)))
        return int(found) if found is not None else None

    def claimed_by(self, account_id: int) -> Sequence[Patient]:
        return self.db.scalars(sa.select(Patient).where(
            t.patients.c.registered_account_id == account_id,
            t.patients.c.claimed_at.is_not(None)).order_by(t.patients.c.id)).all()

    def managers(self, patient_id: int) -> list[tuple[int, str, dt.datetime]]:
        """The accounts that manage the patient now: (account id, username, linked at)."""
        ap = t.account_patients
        rows = self.db.execute(
            sa.select(ap.c.account_id, t.accounts.c.username, ap.c.added_at)
            .join(t.accounts, t.accounts.c.id == ap.c.account_id)
            .where(ap.c.patient_id == patient_id, ap.c.removed_at.is_(None))
            .order_by(ap.c.added_at)).all()
        return [(int(a), str(u), at) for a, u, at in rows]

    def resident_known(self, id_index: str, name_check: str) -> bool:
        stored = self.db.scalar(sa.select(t.residents.c.name_check)
                                .where(t.residents.c.id_number_index == id_index))
        return stored is not None and stored == name_check

    def add_resident(self, id_index: str, name_check: str) -> bool:
        exists = self.db.scalar(sa.select(sa.func.count())
                                .where(t.residents.c.id_number_index == id_index))
        if exists:
            return False
        self.db.execute(sa.insert(t.residents).values(id_number_index=id_index,
                                                      name_check=name_check))
        return True

    # The desk's identity claims, pending a second member of staff

    def add_claim(self, *, patient_id: int, account_id: int, requested_by: int,
                  now: dt.datetime, expires_at: dt.datetime) -> int:
        c = t.identity_claims
        return int(self.db.execute(c.insert().values(
            patient_id=patient_id, account_id=account_id, requested_by=requested_by,
            created_at=now, expires_at=expires_at, status="pending")
            .returning(c.c.id)).scalar_one())

    def claim(self, claim_id: int) -> IdentityClaim | None:
        c = t.identity_claims
        row = self.db.execute(sa.select(c).where(c.c.id == claim_id)).first()
        return IdentityClaim(**row._asdict()) if row is not None else None

    def pending_claims(self, now: dt.datetime, *,
                       patient_id: int | None = None) -> list[IdentityClaim]:
        """Pending claims not yet expired, oldest first (of one patient, if given)."""
        c = t.identity_claims
        query = sa.select(c).where(c.c.status == "pending", c.c.expires_at > now)
        if patient_id is not None:
            query = query.where(c.c.patient_id == patient_id)
        return [IdentityClaim(**row._asdict())
                for row in self.db.execute(query.order_by(c.c.id)).all()]

    def decide_claim(self, claim_id: int, status: str, now: dt.datetime,
                     decided_by: int | None) -> bool:
        """Move a pending claim to ``status``; False if it was no longer pending."""
        c = t.identity_claims
        result = self.db.execute(sa.update(c).where(
            c.c.id == claim_id, c.c.status == "pending").values(
            status=status, decided_at=now, decided_by=decided_by))
        return bool(result.rowcount)  # type: ignore[attr-defined]

"""Turn a confirmed ring from an investigation's output (``suspects.csv``) into entries to
publish, without an identifier leaving the hospital.

``suspects.csv`` names each identifier as the records export wrote it: clear (``--pii
clear``) or as this hospital's export pseudonym (``h:`` and hex; payers keep their method,
``card:h:...``). Clear values are used as they are. Export pseudonyms are resolved here, by
recomputing the export pseudonym of every ID number, phone and payer in this hospital's own
database (the master secret never leaves the server, and neither does the clear value).
Either way, only the consortium pseudonym is published; the clear value is kept, encrypted,
in this hospital's own entries so that the next epoch can re-key it."""

from __future__ import annotations

import csv
import datetime as dt
import pathlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fairslot.consortium.model import EntryKind, RingRole, SubjectType
from fairslot.consortium.store import NewEntry
from fairslot.crypto import Keyring
from fairslot.domain.errors import InvalidInput
from fairslot.storage import tables as t

__all__ = ["CUSTOMER_ROLES", "RingImport", "read_ring", "summary"]

_SUBJECTS = {"patient": SubjectType.IDENTITY, "phone": SubjectType.PHONE,
             "payer": SubjectType.PAYER, "device": SubjectType.DEVICE}
# The identifiers a ring booked for its customers: the buyers are the scalpers' victims as
# much as their clients, so they are left out unless the investigator asks for them.
CUSTOMER_ROLES = frozenset({RingRole.BUYER, RingRole.BOOKED_IDENTITY})
_SEVERITY = {RingRole.PAYMENT_HUB: 3, RingRole.HELD_IDENTITY: 3, RingRole.HOLDER: 3,
             RingRole.BUYER: 1, RingRole.BOOKED_IDENTITY: 1}


@dataclass(frozen=True, slots=True)
class RingImport:
    entries: list[NewEntry]
    skipped: dict[str, int]
    """Rows left out, by reason (accounts and IPs are not shared; customers by choice)."""
    unresolved: int


_EXPORT_PSEUDONYM = re.compile(r"(?:[a-z0-9_.-]+:)?h:[0-9a-f]{24}")


def _is_export_pseudonym(value: str) -> bool:
    """``h:`` and 24 hex characters, or a payer's ``method:h:...`` (docs/records.md)."""
    return _EXPORT_PSEUDONYM.fullmatch(value) is not None


class _Resolver:
    """Export pseudonym -> clear value, for the identifiers this hospital holds."""

    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.engine, self.keyring = engine, keyring
        self._maps: dict[SubjectType, dict[str, str]] = {}

    def _load(self, subject: SubjectType) -> dict[str, str]:
        found: dict[str, str] = {}
        queries: list[tuple[str, sa.Select[Any]]] = []
        if subject is SubjectType.IDENTITY:
            queries = [("id_number", sa.select(t.patients.c.id_number))]
        elif subject is SubjectType.PHONE:
            queries = [("phone", sa.select(t.patients.c.phone)),
                       ("phone", sa.select(t.accounts.c.phone))]
        elif subject is SubjectType.PAYER:
            queries = [("payer", sa.select(t.payments.c.payer_account).distinct()),
                       ("payer", sa.select(t.bookings.c.payer_account))]
        with self.engine.connect() as conn:
            for kind, query in queries:
                for row in conn.execute(query):
                    value = row[0]
                    if isinstance(value, str) and value:
                        hidden = self.keyring.pseudonym(kind, value)
                        if subject is SubjectType.PAYER:
                            hidden = f"{value.partition(':')[0]}:{hidden}"
                        found[hidden] = value
        return found

    def resolve(self, subject: SubjectType, value: str) -> str | None:
        if subject not in self._maps:
            self._maps[subject] = self._load(subject)
        return self._maps[subject].get(value)


def read_ring(folder: pathlib.Path, rings: Sequence[str], *, engine: Engine,
              keyring: Keyring, starts_at: dt.datetime, expires_at: dt.datetime,
              include_customers: bool = False) -> RingImport:
    path = folder / "suspects.csv"
    if not path.is_file():
        raise InvalidInput(f"no suspects.csv in {folder} (the folder `fairslot investigate "
                           "--out` wrote)", code="consortium_no_suspects")
    wanted = set(rings)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"entity_type", "entity_id", "ring_id", "role"} - set(
                reader.fieldnames or ())
            if missing:
                raise InvalidInput(f"{path} lacks the column(s) {', '.join(sorted(missing))}",
                                   code="consortium_bad_suspects")
            rows = [r for r in reader if (r.get("ring_id") or "") in wanted]
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text", code="consortium_bad_suspects") from None
    present = {r["ring_id"] for r in rows}
    if absent := wanted - present:
        raise InvalidInput(f"no ring {', '.join(sorted(absent))} in {path}",
                           code="consortium_no_ring")
    resolver = _Resolver(engine, keyring)
    skipped: dict[str, int] = {}
    unresolved = 0
    entries: list[NewEntry] = []
    seen: set[tuple[SubjectType, str]] = set()
    for row in rows:
        subject = _SUBJECTS.get(row["entity_type"])
        if subject is None:
            skipped[f"{row['entity_type']} (not shared)"] = skipped.get(
                f"{row['entity_type']} (not shared)", 0) + 1
            continue
        try:
            role = RingRole(row["role"])
        except ValueError:
            role = RingRole.MEMBER
        if role in CUSTOMER_ROLES and not include_customers:
            skipped[f"{role.value} (a customer)"] = skipped.get(f"{role.value} (a customer)",
                                                                0) + 1
            continue
        value = row["entity_id"].strip()
        if _is_export_pseudonym(value):
            clear = resolver.resolve(subject, value)
            if clear is None:
                unresolved += 1
                continue
            value = clear
        if not value or (subject, value) in seen:
            continue
        seen.add((subject, value))
        entries.append(NewEntry(EntryKind.RING_MEMBER, role, _SEVERITY.get(role, 2),
                                starts_at, expires_at, subject, value,
                                f"ring {row['ring_id']} of {folder.name}"))
    return RingImport(entries, skipped, unresolved)


def summary(items: Iterable[NewEntry]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.subject_type.value] = counts.get(item.subject_type.value, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing"

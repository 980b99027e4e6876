"""The in-memory list every look-up reads: all entries in force from every member, as
columns of numpy arrays sorted by pseudonym, so that a million entries take tens of
megabytes and a look-up is a binary search.

An ``Index`` never changes once built: applying an increment builds a new one (removing the
entries it changes and merging in their new states, in linear time), and the owner swaps the
reference, so readers on other threads never see half an increment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fairslot.consortium.model import Entry, EntryKind, RingRole, SubjectType

__all__ = ["Hit", "Index"]

_KINDS = list(EntryKind)
_ROLES: list[RingRole | None] = [None, *RingRole]
_SUBJECTS = list(SubjectType)
_NO_BITS = 40  # entry numbers below 2**40; the member's slot in the bits above


@dataclass(frozen=True, slots=True)
class Hit:
    issuer: str
    entry_no: int
    kind: EntryKind
    role: RingRole | None
    severity: int
    starts_at: dt.datetime
    expires_at: dt.datetime
    subject_type: SubjectType


def _ts(when: dt.datetime) -> int:
    return int(when.timestamp())


def _when(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


Record = tuple[str, int, str, str | None, int, dt.datetime, dt.datetime, str, str]
"""(member, entry number, kind, role, severity, start, expiry, subject type, pseudonym in
hex): an entry as the store holds it."""
Row = tuple[int, int, int, int, int, int, int, int, int]
"""(pseudonym's high 64 bits, low 64 bits, member slot << 40 | entry number, kind, role,
severity, subject type, start, expiry): one entry as the index stores it."""


def _halves(pseudonym: bytes) -> tuple[int, int]:
    return int.from_bytes(pseudonym[:8], "big"), int.from_bytes(pseudonym[8:16], "big")


class Index:
    # The pseudonym is kept as two unsigned 64-bit columns, sorted by the high half: a
    # search on integers costs a third of one on 16-byte strings, and one search per
    # identifier is enough (equal high halves are scanned, comparing the low halves).
    __slots__ = ("_expires", "_hi", "_ident", "_kind", "_lo", "_members", "_role",
                 "_severity", "_starts", "_subject")

    def __init__(self, members: Sequence[str], columns: Sequence[npt.NDArray[Any]]) -> None:
        self._members = tuple(members)
        (self._hi, self._lo, self._ident, self._kind, self._role, self._severity,
         self._subject, self._starts, self._expires) = columns

    @property
    def _columns(self) -> list[npt.NDArray[Any]]:
        return [self._hi, self._lo, self._ident, self._kind, self._role, self._severity,
                self._subject, self._starts, self._expires]

    def __len__(self) -> int:
        return int(self._hi.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self._columns)

    @staticmethod
    def empty() -> Index:
        return Index._from_rows((), [])

    @staticmethod
    def build(entries: Iterable[Entry]) -> Index:
        """From entry states (withdrawn ones are left out)."""
        return Index.empty().apply(entries)

    @staticmethod
    def _from_rows(members: Sequence[str], rows: list[Row]) -> Index:
        rows.sort(key=lambda r: r[0])
        cols = list(zip(*rows, strict=True)) if rows else [()] * 9
        types = (np.uint64, np.uint64, np.int64, np.uint8, np.uint8, np.uint8, np.uint8,
                 np.int64, np.int64)
        return Index(members, [np.array(c, dtype=d) for c, d in zip(cols, types, strict=True)])

    @staticmethod
    def from_records(records: Iterable[Record]) -> Index:
        """From stored entry rows, without making an ``Entry`` of each: a server loads a
        million of them at start."""
        members: list[str] = []
        slots: dict[str, int] = {}
        kinds = {k.value: i for i, k in enumerate(_KINDS)}
        roles = {(r.value if r else None): i for i, r in enumerate(_ROLES)}
        subjects = {s.value: i for i, s in enumerate(_SUBJECTS)}
        rows: list[Row] = []
        for member, no, kind, role, severity, starts, expires, subject, name in records:
            slot = slots.get(member)
            if slot is None:
                slot = slots[member] = len(members)
                members.append(member)
            raw = bytes.fromhex(name)
            rows.append((int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big"),
                         (slot << _NO_BITS) | no, kinds[kind], roles[role], severity,
                         subjects[subject], _ts(starts), _ts(expires)))
        return Index._from_rows(members, rows)

    def apply(self, changes: Iterable[Entry]) -> Index:
        """A new index with these entry states in place of the old ones. Later states of
        one entry in ``changes`` win; withdrawn states only remove."""
        members = list(self._members)
        slots = {m: i for i, m in enumerate(members)}
        latest: dict[int, Entry] = {}
        for entry in changes:
            slot = slots.get(entry.issuer)
            if slot is None:
                slot = slots[entry.issuer] = len(members)
                members.append(entry.issuer)
            latest[(slot << _NO_BITS) | entry.entry_no] = entry
        if not latest:
            return self
        rows: list[Row] = [(*_halves(bytes.fromhex(e.pseudonym)), ident, _KINDS.index(e.kind),
                            _ROLES.index(e.role), e.severity, _SUBJECTS.index(e.subject_type),
                            _ts(e.starts_at), _ts(e.expires_at))
                           for ident, e in latest.items() if not e.withdrawn]
        new = Index._from_rows(members, rows)
        keep = ~np.isin(self._ident, np.fromiter(latest, np.int64, len(latest)))
        old = [c[keep] for c in self._columns]
        at = np.searchsorted(old[0], new._hi)
        return Index(members, [np.insert(o, at, n) for o, n in zip(old, new._columns,
                                                                   strict=True)])

    def lookup(self, pseudonym: bytes, now_ts: int) -> list[Hit]:
        """Entries in force at ``now_ts`` (POSIX seconds) naming this 16-byte pseudonym."""
        hi, lo = _halves(pseudonym)
        his = self._hi
        i = int(his.searchsorted(np.uint64(hi)))
        n = his.shape[0]
        hits: list[Hit] = []
        while i < n and int(his[i]) == hi:
            if (int(self._lo[i]) == lo
                    and int(self._starts[i]) <= now_ts < int(self._expires[i])):
                ident = int(self._ident[i])
                hits.append(Hit(self._members[ident >> _NO_BITS],
                                ident & ((1 << _NO_BITS) - 1), _KINDS[self._kind[i]],
                                _ROLES[self._role[i]], int(self._severity[i]),
                                _when(int(self._starts[i])), _when(int(self._expires[i])),
                                _SUBJECTS[self._subject[i]]))
            i += 1
        return hits

    def count_by_member(self) -> dict[str, int]:
        slots, counts = np.unique(self._ident >> _NO_BITS, return_counts=True)
        return {self._members[int(s)]: int(c) for s, c in zip(slots, counts, strict=True)}

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


class Index:
    __slots__ = ("_expires", "_ident", "_keys", "_kind", "_members", "_role", "_severity",
                 "_starts", "_subject")

    def __init__(self, members: Sequence[str], keys: npt.NDArray[np.bytes_],
                 ident: npt.NDArray[np.int64], kind: npt.NDArray[np.uint8],
                 role: npt.NDArray[np.uint8], severity: npt.NDArray[np.uint8],
                 subject: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
                 expires: npt.NDArray[np.int64]) -> None:
        self._members = tuple(members)
        self._keys, self._ident, self._kind, self._role = keys, ident, kind, role
        self._severity, self._subject, self._starts, self._expires = (severity, subject,
                                                                       starts, expires)

    def __len__(self) -> int:
        return int(self._keys.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in (self._keys, self._ident, self._kind, self._role,
                                           self._severity, self._subject, self._starts,
                                           self._expires))

    @staticmethod
    def empty() -> Index:
        return Index._from_rows((), [])

    @staticmethod
    def build(entries: Iterable[Entry]) -> Index:
        """From entry states (withdrawn ones are left out)."""
        return Index.empty().apply(entries)

    @staticmethod
    def _from_rows(members: Sequence[str], rows: list[tuple[bytes, int, int, int, int, int,
                                                             int, int]]) -> Index:
        rows.sort(key=lambda r: r[0])
        cols = list(zip(*rows, strict=True)) if rows else [()] * 8
        return Index(members, np.array(cols[0], dtype="S16"), np.array(cols[1], np.int64),
                     np.array(cols[2], np.uint8), np.array(cols[3], np.uint8),
                     np.array(cols[4], np.uint8), np.array(cols[5], np.uint8),
                     np.array(cols[6], np.int64), np.array(cols[7], np.int64))

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
        gone = np.isin(self._ident, np.fromiter(latest, np.int64, len(latest)))
        keep = ~gone
        rows = [(bytes.fromhex(e.pseudonym), ident, _KINDS.index(e.kind), _ROLES.index(e.role),
                 e.severity, _SUBJECTS.index(e.subject_type), _ts(e.starts_at),
                 _ts(e.expires_at)) for ident, e in latest.items() if not e.withdrawn]
        new = Index._from_rows(members, rows)
        old_keys = self._keys[keep]
        at = np.searchsorted(old_keys, new._keys)

        def merged(old: npt.NDArray[Any], add: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return np.insert(old[keep], at, add)

        return Index(members, np.insert(old_keys, at, new._keys),
                     merged(self._ident, new._ident), merged(self._kind, new._kind),
                     merged(self._role, new._role), merged(self._severity, new._severity),
                     merged(self._subject, new._subject), merged(self._starts, new._starts),
                     merged(self._expires, new._expires))

    def lookup(self, pseudonym: bytes, now_ts: int) -> list[Hit]:
        """Entries in force at ``now_ts`` (POSIX seconds) naming this 16-byte pseudonym."""
        # Two searches rather than comparing items: numpy hands back an item of a bytes
        # column with its trailing zero bytes cut off, so it could miss a real match.
        i = int(np.searchsorted(self._keys, pseudonym, side="left"))
        end = int(np.searchsorted(self._keys, pseudonym, side="right"))
        hits: list[Hit] = []
        while i < end:
            if self._starts[i] <= now_ts < self._expires[i]:
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

"""The frozen entry list of a round: every entry as it stood when the window closed, with
its status, and the Merkle root over all of them.

At the close the hospital lists *every* entry ever made in the round, not only those that
will be drawn: ``in`` (drawn), ``withdrawn`` (by the patient, before the close) or
``excluded`` (with the reason, such as ``credit_suspended``, judged as of the close). The
list is sorted by ref and each entry is one leaf of an RFC 6962 tree; the root is signed
and published before the beacon exists. So nothing decided later can drop an entry
silently: leaving one out changes the root, and its owner holds a signed receipt.

A leaf is one line of ASCII, fields separated by one space (0x20)::

    <ref> <seq> <status> <choices> [<reason>]

- ``ref``: the entry's pseudonym, 1-64 characters of ``A-Z a-z 0-9 _ . -``;
- ``seq``: how many times the entry was written (1 = entered, then +1 per change or
  withdrawal), decimal without leading zeros, 1 to 2147483647; a receipt carries the same
  number, so a patient can tell whether the list has their latest version;
- ``status``: ``in``, ``withdrawn`` or ``excluded``;
- ``choices``: the session ids (same alphabet) in rank order, joined by ``,``, 1 to
  ``max_choices`` of the round's sessions, distinct; for a withdrawn entry, the last ones;
- ``reason``: only and always for ``excluded``, a token such as ``credit_suspended``.

The leaf hash is ``SHA-256(0x00 ‖ line)`` and the root is the RFC 6962 tree head of the
leaves in ref order (``fairslot.domain.merkle``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import NamedTuple

from fairslot.domain import merkle
from fairslot.domain.draw.entries import (
    MAX_CHOICES,
    TOKEN_MAX,
    Entry,
    MalformedRound,
    _collector_paused,
    _prepare,
    _Prepared,
    _tokens_ok,
)

__all__ = [
    "EXCLUDED",
    "IN",
    "SEQ_MAX",
    "STATUSES",
    "WITHDRAWN",
    "FrozenEntry",
    "FrozenList",
    "InclusionProof",
    "parse_leaf",
]

IN, WITHDRAWN, EXCLUDED = "in", "withdrawn", "excluded"
STATUSES = (IN, WITHDRAWN, EXCLUDED)
SEQ_MAX = 2**31 - 1
_T = rf"[A-Za-z0-9_.\-]{{1,{TOKEN_MAX}}}"
_LEAF = re.compile(rf"({_T}) ([1-9][0-9]{{0,9}}) (in|withdrawn|excluded) ({_T}(?:,{_T})*)"
                   rf"(?: ({_T}))?")
_TOKEN = re.compile(_T)
_SEQ = re.compile(r"[1-9][0-9]{0,9}")
# Every byte a leaf may contain, for a one-pass check of a whole list.
_LEAF_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-, "


class FrozenEntry(NamedTuple):
    """One line of the frozen list."""

    ref: str
    seq: int
    status: str
    choices: tuple[str, ...]
    reason: str | None = None

    def leaf(self) -> str:
        """The canonical leaf line (see the module docstring)."""
        line = f"{self.ref} {self.seq} {self.status} {','.join(self.choices)}"
        return line if self.reason is None else f"{line} {self.reason}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_leaf(line: object, *, max_choices: int = MAX_CHOICES) -> FrozenEntry:
    """Read one leaf line, raising ``MalformedRound`` naming what is wrong."""
    match = _LEAF.fullmatch(line) if isinstance(line, str) else None
    if match is None:
        raise MalformedRound(f"entry {_show(line)} is not '<ref> <seq> <status> <choices> "
                             "[<reason>]' (see docs/draw.md, the frozen list)")
    ref, seq_text, status, choices_text, reason = match.groups()
    seq = int(seq_text)
    if seq > SEQ_MAX:
        raise MalformedRound(f"entry {ref!r}: seq {seq} is above {SEQ_MAX}")
    if (status == EXCLUDED) != (reason is not None):
        raise MalformedRound(f"entry {ref!r}: an excluded entry, and only one, states a reason")
    choices = tuple(choices_text.split(","))
    if len(choices) > max_choices:
        raise MalformedRound(f"entry {ref!r} has {len(choices)} choices; 1 to {max_choices} "
                             "are allowed")
    if len(set(choices)) != len(choices):
        raise MalformedRound(f"entry {ref!r} names the same session twice")
    return FrozenEntry(ref, seq, status, choices, reason)


class InclusionProof(NamedTuple):
    """That one leaf is at ``index`` in the frozen list whose root is ``root``."""

    round_id: str
    leaf: str
    leaf_index: int
    size: int
    path: tuple[bytes, ...]
    root: bytes

    def to_json(self) -> dict[str, object]:
        return {"type": "fairslot-inclusion/2", "round_id": self.round_id, "leaf": self.leaf,
                "index": self.leaf_index, "size": self.size, "root": self.root.hex(),
                "path": [p.hex() for p in self.path]}

    def holds(self) -> bool:
        """Whether the path leads from the leaf to the root."""
        return merkle.verify_inclusion(self.leaf_index, self.size,
                                       merkle.leaf_hash(self.leaf.encode("ascii")),
                                       self.path, self.root)


@dataclass(frozen=True, slots=True)
class FrozenList:
    """A frozen entry list with its tree. Build it with ``freeze`` (from the platform's
    entries) or ``from_leaves`` (from a published document)."""

    leaves: tuple[str, ...]
    refs: tuple[str, ...]
    tree: merkle.Tree
    drawn_refs: list[str]
    drawn_choices: list[list[str]]
    prepared: _Prepared

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def size(self) -> int:
        return len(self.leaves)

    def drawn(self) -> list[Entry]:
        """The entries the draw takes (status ``in``), in ref order."""
        return [Entry(r, tuple(c)) for r, c in zip(self.drawn_refs, self.drawn_choices,
                                                    strict=True)]

    def index_of(self, ref: str) -> int | None:
        at = bisect.bisect_left(self.refs, ref)
        return at if at < len(self.refs) and self.refs[at] == ref else None

    def entry(self, ref: str) -> FrozenEntry | None:
        at = self.index_of(ref)
        return None if at is None else parse_leaf(self.leaves[at], max_choices=10**6)

    def proof(self, round_id: str, ref: str) -> InclusionProof:
        at = self.index_of(ref)
        if at is None:
            raise KeyError(ref)
        return InclusionProof(round_id, self.leaves[at], at, self.size,
                              tuple(self.tree.inclusion_proof(at)), self.root)

    @classmethod
    def freeze(cls, entries: Iterable[FrozenEntry], capacities: Mapping[str, int],
               max_choices: int = MAX_CHOICES) -> FrozenList:
        """Freeze the platform's entries (any order): sorts them by ref and checks them."""
        ordered = sorted(entries)
        return cls.from_leaves([e.leaf() for e in ordered], capacities, max_choices)

    @classmethod
    def from_leaves(cls, leaves: Sequence[object], capacities: Mapping[str, int],
                    max_choices: int = MAX_CHOICES) -> FrozenList:
        """Check a published list (leaf lines in ascending ref order) against the round's
        sessions and build its tree. Raises ``MalformedRound`` naming the first problem."""
        with _collector_paused():
            return _from_leaves(leaves, capacities, max_choices)


def _from_leaves(leaves: Sequence[object], capacities: Mapping[str, int],
                 max_choices: int) -> FrozenList:
    lines = list(leaves)

    def explain() -> MalformedRound:
        previous = ""
        named: dict[str, int] = {}
        for n, line in enumerate(lines):
            entry = parse_leaf(line, max_choices=max_choices)
            if n and entry.ref <= previous:
                return MalformedRound(f"entries are not in strictly ascending ref order at "
                                      f"entries[{n}] ({entry.ref!r} after {previous!r})")
            previous = entry.ref
            for session in entry.choices:
                if session not in capacities:
                    return MalformedRound(f"entry {entry.ref!r} chooses session {session!r}, "
                                          "which is not in the round")
                named[session] = 1
        return MalformedRound("the entry list is malformed")

    # Whole-list passes first (a million lines in C); only a list that fails one is walked
    # line by line, to name the problem.
    try:
        data = "\n".join(lines).encode("ascii")  # type: ignore[arg-type]
    except (TypeError, UnicodeEncodeError):
        raise explain() from None
    if data.translate(None, _LEAF_BYTES) != b"\n" * max(len(lines) - 1, 0):
        raise explain()
    parts = [line.split(" ") for line in lines]  # type: ignore[attr-defined]
    widths = set(map(len, parts))
    if not widths <= {4, 5}:
        raise explain()
    if widths == {4}:
        refs, seqs, statuses, choice_texts = map(list, zip(*parts, strict=True)) if parts \
            else ([], [], [], [])
        reasons_present = False
    else:
        refs = [p[0] for p in parts]
        seqs = [p[1] for p in parts]
        statuses = [p[2] for p in parts]
        choice_texts = [p[3] for p in parts]
        reasons_present = True
    if refs and (not _tokens_ok(refs) or not all(map(str.__lt__, refs, refs[1:]))):
        raise explain()
    if not all(_SEQ.fullmatch(s) and int(s) <= SEQ_MAX for s in set(seqs)):
        raise explain()
    status_set = set(statuses)
    if not status_set <= set(STATUSES):
        raise explain()
    if reasons_present or EXCLUDED in status_set:
        for p in parts:
            if (p[2] == EXCLUDED) != (len(p) == 5) or (len(p) == 5 and not _TOKEN.fullmatch(p[4])):
                raise explain()
    choices = [text.split(",") for text in choice_texts]
    drawn_at = [n for n, s in enumerate(statuses) if s == IN] if len(status_set) > 1 \
        else (list(range(len(lines))) if status_set == {IN} else [])
    if len(drawn_at) == len(lines):
        drawn_refs, drawn_choices = refs, choices
    else:
        drawn_refs = [refs[n] for n in drawn_at]
        drawn_choices = [choices[n] for n in drawn_at]
    try:
        prepared = _prepare(drawn_refs, drawn_choices, capacities, max_choices)
    except MalformedRound:
        raise explain() from None
    if len(drawn_at) != len(lines):
        # Withdrawn and excluded entries are not drawn, but what they name must still be
        # well formed: sessions of the round, at most max_choices, distinct.
        others = [choices[n] for n, s in enumerate(statuses) if s != IN]
        if (not set(chain.from_iterable(others)) <= set(capacities)
                or any(len(c) > max_choices or len(set(c)) != len(c) for c in others)):
            raise explain()
    tree = merkle.Tree.of_leaves(data.split(b"\n") if lines else [])
    return FrozenList(leaves=tuple(lines), refs=tuple(refs),  # type: ignore[arg-type]
                      tree=tree, drawn_refs=drawn_refs, drawn_choices=drawn_choices,
                      prepared=prepared)

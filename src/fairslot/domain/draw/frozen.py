"""The frozen entry list of a round: every entry as it stood when the window closed, with
its status, and the Merkle root over all of them.

At the close the hospital lists *every* entry ever made in the round, not only those that
will be drawn: ``in`` (drawn), ``withdrawn`` (by the patient, before the close) or
``excluded`` (with the reason, such as ``credit_suspended``, judged as of the close). The
list is sorted by ref and each entry is one leaf of an RFC 6962 tree; the root is signed
and published before the beacon exists. So nothing decided later can drop an entry
silently: leaving one out changes the root, and its owner holds a signed receipt.

A leaf is one line of ASCII, fields separated by one space (0x20)::

    <ref> <seq> <status> <choices> <reason>

- ``ref``: the entry's pseudonym, 1-64 characters of ``A-Z a-z 0-9 _ . -``;
- ``seq``: how many times the entry was written (1 = entered, then +1 per change or
  withdrawal), decimal without leading zeros, 1 to 2147483647; a receipt carries the same
  number, so a patient can tell whether the list has their latest version;
- ``status``: ``in``, ``withdrawn`` or ``excluded``;
- ``choices``: the session ids (same alphabet) in rank order, joined by ``,``, 1 to
  ``max_choices`` of the round's sessions, distinct; for a withdrawn entry, the last ones;
- ``reason``: ``-`` unless the status is ``excluded``; then a token other than ``-``
  saying why, such as ``credit_suspended``.

Every line has exactly five fields, so a list reads in whole-column passes.

The leaf hash is ``SHA-256(0x00 ‖ line)`` and the root is the RFC 6962 tree head of the
leaves in ref order (``fairslot.domain.merkle``).
"""

from __future__ import annotations

import bisect
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, compress, islice, repeat
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from fairslot.domain import merkle
from fairslot.domain.draw.entries import (
    _TOKEN_BYTES,
    MAX_CHOICES,
    TOKEN_MAX,
    Entry,
    MalformedRound,
    _by_ref,
    _collector_paused,
    _Prepared,
)

__all__ = [
    "EXCLUDED",
    "IN",
    "NO_REASON",
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
                   rf" ({_T})")
NO_REASON = "-"
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
        return (f"{self.ref} {self.seq} {self.status} {','.join(self.choices)} "
                f"{self.reason or NO_REASON}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_leaf(line: object, *, max_choices: int = MAX_CHOICES) -> FrozenEntry:
    """Read one leaf line, raising ``MalformedRound`` naming what is wrong."""
    match = _LEAF.fullmatch(line) if isinstance(line, str) else None
    if match is None:
        raise MalformedRound(f"entry {_show(line)} is not '<ref> <seq> <status> <choices> "
                             "<reason>' (see docs/draw.md, the frozen list)")
    ref, seq_text, status, choices_text, reason_text = match.groups()
    reason = None if reason_text == NO_REASON else reason_text
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

    leaves: tuple[str, ...] | list[str]
    refs: list[str]
    tree: merkle.Tree
    drawn_refs: list[str]
    drawn_choice_texts: list[str]
    prepared: _Prepared

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def size(self) -> int:
        return len(self.leaves)

    @property
    def drawn_choices(self) -> list[list[str]]:
        return [text.split(",") for text in self.drawn_choice_texts]

    def drawn(self) -> list[Entry]:
        """The entries the draw takes (status ``in``), in ref order."""
        return [Entry(r, tuple(t.split(","))) for r, t in zip(self.drawn_refs,
                                                              self.drawn_choice_texts,
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
    def freeze(cls, entries: Sequence[FrozenEntry], capacities: Mapping[str, int],
               max_choices: int = MAX_CHOICES) -> FrozenList:
        """Freeze the platform's entries (any order): sorts them by ref and checks them."""
        if not entries:
            return cls.from_leaves([], capacities, max_choices)
        with _collector_paused():
            # Column by column, so that every step is one C-level pass over a million values.
            refs, seqs, statuses, choices, reasons = zip(*entries, strict=True)
            checked = _freeze_columns(refs, seqs, statuses, choices, reasons, capacities,
                                      max_choices)
            if checked is not None:
                return checked
            # A value is off: ``from_leaves`` names the first problem, as a verifier would.
            leaves = list(map(" ".join, zip(
                refs, map(str, seqs), statuses, map(",".join, choices),
                [NO_REASON if r is None else r for r in reasons], strict=True)))
            leaves = [leaves[i] for i in _by_ref(refs)]
        return cls.from_leaves(leaves, capacities, max_choices)

    @classmethod
    def from_leaves(cls, leaves: Sequence[object], capacities: Mapping[str, int],
                    max_choices: int = MAX_CHOICES) -> FrozenList:
        """Check a published list (leaf lines in ascending ref order) against the round's
        sessions and build its tree. Raises ``MalformedRound`` naming the first problem."""
        with _collector_paused():
            return _from_leaves(list(leaves), capacities, max_choices)


def _explain(lines: list[object], capacities: Mapping[str, int],
             max_choices: int) -> MalformedRound:
    """The first problem of a list that failed a whole-list check, found line by line."""
    previous = ""
    for n, line in enumerate(lines):
        try:
            entry = parse_leaf(line, max_choices=max_choices)
        except MalformedRound as exc:
            return MalformedRound(f"entries[{n}]: {exc}")
        if n and entry.ref <= previous:
            return MalformedRound(f"entries are not in strictly ascending ref order at "
                                  f"entries[{n}] ({entry.ref!r} after {previous!r})")
        previous = entry.ref
        for session in entry.choices:
            if session not in capacities:
                return MalformedRound(f"entry {entry.ref!r} chooses session {session!r}, "
                                      "which is not in the round")
    return MalformedRound("the entry list is malformed")


def _from_leaves(lines: list[object], capacities: Mapping[str, int],
                 max_choices: int) -> FrozenList:
    # Whole-list passes (a million lines in a few C calls); only a list that fails one is
    # walked line by line, to name the problem.
    n = len(lines)
    sessions = list(capacities)
    if not n:
        return FrozenList([], [], merkle.Tree([]), [], [],
                          _Prepared(sessions, [*capacities.values(), 0],
                                    np.full((0, 3), len(sessions), dtype=np.intp), [], True))
    try:
        text = "\n".join(lines)  # type: ignore[arg-type]
        data = text.encode("ascii")
    except (TypeError, UnicodeEncodeError):
        raise _explain(lines, capacities, max_choices) from None
    if data.translate(None, _LEAF_BYTES) != b"\n" * (n - 1):
        raise _explain(lines, capacities, max_choices)
    # Exactly four spaces on every line: five fields each. The spaces before each line's
    # end are counted by a binary search of the space positions among the line ends.
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.append(np.flatnonzero(raw == 10), len(raw))
    spaces = np.searchsorted(np.flatnonzero(raw == 32), ends)
    if spaces[0] != 4 or bool(np.any(np.diff(spaces) != 4)):
        raise _explain(lines, capacities, max_choices)
    fields = text.replace("\n", " ").split(" ")
    refs, seqs, statuses, choice_texts, reasons = (fields[k::5] for k in range(5))
    status = np.array(statuses, dtype=object)
    excluded = status == EXCLUDED
    drawn_mask = status == IN
    # The bytes are already known to be token characters, commas and spaces: a ref is a
    # token when it holds no comma and has 1 to 64 of them.
    if (",".join(refs).count(",") != n - 1 or min(map(len, refs)) < 1
            or max(map(len, refs)) > TOKEN_MAX
            or not all(map(str.__lt__, refs, islice(refs, 1, None)))
            or not all(_SEQ.fullmatch(s) and int(s) <= SEQ_MAX for s in set(seqs))
            or not set(statuses) <= set(STATUSES)
            or not all(r == NO_REASON or _TOKEN.fullmatch(r) for r in set(reasons))
            or not np.array_equal(excluded, np.array(reasons, dtype=object) != NO_REASON)):
        raise _explain(lines, capacities, max_choices)
    # Choices: 1 to max_choices sessions of the round, distinct within an entry.
    counts = np.fromiter(map(str.count, choice_texts, repeat(",")), dtype=np.intp, count=n) + 1
    index = {session: number for number, session in enumerate(sessions)}
    try:
        flat = np.array(list(map(index.__getitem__, ",".join(choice_texts).split(","))),
                        dtype=np.intp)
    except KeyError:
        raise _explain(lines, capacities, max_choices) from None
    table = _choice_table(counts, flat, len(sessions), max_choices)
    if table is None:
        raise _explain(lines, capacities, max_choices)
    return _listed(lines, refs, data, choice_texts, drawn_mask, table,  # type: ignore[arg-type]
                   capacities)


def _choice_table(counts: npt.NDArray[np.intp], flat: npt.NDArray[np.intp], pad: int,
                  max_choices: int) -> npt.NDArray[np.intp] | None:
    """The entries' choices as a table of session numbers (row ``i``: entry ``i``'s choices,
    best first, padded with ``pad`` to at least three columns), from the number of choices
    of each entry and all choices in a row; ``None`` unless every entry has 1 to
    ``max_choices`` distinct choices."""
    n = len(counts)
    widest = int(counts.max())
    if int(counts.min()) < 1 or widest > max_choices:
        return None
    table = np.full((n, max(widest, 3)), pad, dtype=np.intp)
    starts = np.cumsum(counts) - counts
    for rank in range(widest):
        rows = np.flatnonzero(counts > rank) if rank else np.arange(n)
        table[rows, rank] = flat[starts[rows] + rank]
    for a in range(widest):
        for b in range(a + 1, widest):
            if bool(np.any((table[:, a] == table[:, b]) & (table[:, b] != pad))):
                return None
    return table


def _listed(leaves: list[str], refs: list[str], data: bytes, choice_texts: list[str],
            drawn_mask: npt.NDArray[np.bool_], table: npt.NDArray[np.intp],
            capacities: Mapping[str, int]) -> FrozenList:
    """The frozen list of checked leaves (``data``: the lines joined by newlines, ASCII)."""
    if bool(drawn_mask.all()):
        drawn_refs, drawn_texts, drawn_table = refs, choice_texts, table
    else:
        keep = drawn_mask.tolist()
        drawn_refs = list(compress(refs, keep))
        drawn_texts = list(compress(choice_texts, keep))
        drawn_table = table[drawn_mask]
    prepared = _Prepared(list(capacities), [*capacities.values(), 0], drawn_table, [], True)
    # The leaf hash input is 0x00 ‖ line: put the prefix in front of every line at once.
    tree = merkle.Tree(merkle.prefixed_leaf_hashes((b"\x00" + data.replace(b"\n", b"\n\x00"))
                                                   .split(b"\n")))
    return FrozenList(leaves=leaves, refs=refs, tree=tree, drawn_refs=drawn_refs,
                      drawn_choice_texts=drawn_texts, prepared=prepared)


def _freeze_columns(refs: Sequence[Any], seqs: Sequence[Any], statuses: Sequence[Any],
                    choices: Sequence[Any], reasons: Sequence[Any],
                    capacities: Mapping[str, int], max_choices: int) -> FrozenList | None:
    """The frozen list of entries whose every value is plainly valid, checked as the
    columns they came in (in their own order, which is kind to the memory caches) instead
    of by reading back the lines they make; ``None`` as soon as anything is off or merely
    unusual, and the caller then lets ``from_leaves`` name the problem.

    Whatever this accepts, ``from_leaves`` accepts as the same list: refs, session ids and
    reasons are plain ``str`` tokens (so no field holds a space or a comma), a seq is an
    ``int`` from 1 to ``SEQ_MAX`` (its decimal form has no leading zero), the refs are
    distinct (they are then put in ascending order), and the choices meet the same table
    check."""
    sessions = list(capacities)
    n = len(refs)
    ref_data = _token_data(refs)
    try:
        if not (ref_data is not None and _tokens(sessions)
                and set(map(type, seqs)) <= {int} and min(seqs) >= 1 and max(seqs) <= SEQ_MAX
                and set(map(type, statuses)) <= {str} and set(statuses) <= set(STATUSES)):
            return None
        status = np.array(statuses, dtype=object)
        stated = np.fromiter(map(operator.is_not, reasons, repeat(None)), dtype=bool, count=n)
        named = set(reasons)
        named.discard(None)
        if (not np.array_equal(status == EXCLUDED, stated) or NO_REASON in named
                or not _tokens(list(named))):
            return None
        counts = np.fromiter(map(len, choices), dtype=np.intp, count=n)
        chosen = list(chain.from_iterable(choices))
        if not set(map(type, chosen)) <= {str}:
            return None
        index = {session: number for number, session in enumerate(sessions)}
        flat = np.fromiter(map(index.__getitem__, chosen), dtype=np.intp, count=len(chosen))
    except (TypeError, ValueError, KeyError):
        return None
    table = _choice_table(counts, flat, len(sessions), max_choices)
    if table is None:
        return None
    # In ref order: token refs are ASCII without NUL, so NumPy's byte strings sort them as
    # ``str`` does (about twice as fast as ``sorted``), and equal neighbours are a ref listed
    # twice.
    keys = np.array(ref_data.split(b"\n"))
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    if bool(np.any(ranked[1:] == ranked[:-1])):
        return None
    # Each line built once, in the entries' order, then gathered in ref order through
    # object arrays (references copied in C). Seqs are few distinct numbers: each is
    # written once.
    texts = list(map(",".join, choices))
    seq_text = {seq: str(seq) for seq in set(seqs)}
    leaves = np.array(list(map(" ".join, zip(
        refs, map(seq_text.__getitem__, seqs), statuses, texts,
        [NO_REASON if r is None else r for r in reasons], strict=True))), dtype=object)
    drawn = (status == IN)[order]
    drawn_order = order[drawn]
    by_number = np.array(refs, dtype=object)
    lines: list[str] = leaves[order].tolist()
    prepared = _Prepared(sessions, [*capacities.values(), 0],
                         np.take(table, drawn_order, axis=0), [], True)
    return FrozenList(leaves=lines, refs=by_number[order].tolist(), tree=_tree(lines),
                      drawn_refs=by_number[drawn_order].tolist(),
                      drawn_choice_texts=np.array(texts, dtype=object)[drawn_order].tolist(),
                      prepared=prepared)


def _tree(lines: list[str]) -> merkle.Tree:
    """The tree of leaf lines that are checked ASCII without newlines: the hash input of a
    leaf is 0x00 ‖ line, so the prefix goes in front of every line in one join."""
    data = ("\x00" + "\n\x00".join(lines)).encode("ascii")
    return merkle.Tree(merkle.prefixed_leaf_hashes(data.split(b"\n")))


def _token_data(values: Sequence[object]) -> bytes | None:
    """The values joined by newlines as ASCII when every one is a ``str`` of 1 to
    ``TOKEN_MAX`` token characters (and there is at least one); ``None`` otherwise."""
    if not values or not set(map(type, values)) <= {str}:
        return None
    strings = cast(Sequence[str], values)
    try:
        data = "\n".join(strings).encode("ascii")
    except UnicodeEncodeError:
        return None
    if (data.translate(None, _TOKEN_BYTES) != b"\n" * (len(strings) - 1)
            or min(map(len, strings)) < 1 or max(map(len, strings)) > TOKEN_MAX):
        return None
    return data


def _tokens(values: Sequence[object]) -> bool:
    """Whether every value is a ``str`` of 1 to ``TOKEN_MAX`` token characters."""
    return not values or _token_data(values) is not None

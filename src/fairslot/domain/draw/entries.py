"""Entries of a round and the rules they follow: tokens (refs and session ids), choices, and
the checks that make an entry list drawable, done in whole-column passes so that a million
entries are checked in well under a second; plus the v1 flat entries digest."""

from __future__ import annotations

import gc
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain, islice, repeat
from typing import NamedTuple, NoReturn

import numpy as np
import numpy.typing as npt

from fairslot.domain.errors import InvalidInput

__all__ = [
    "MAX_CHOICES",
    "TOKEN_MAX",
    "Entry",
    "MalformedRound",
    "canonical_entries",
    "entries_digest",
    "validate_entries",
]

MAX_CHOICES = 3
TOKEN_MAX = 64

# Refs and session ids are restricted to a small ASCII alphabet so that a verifier in any
# language hashes exactly the same bytes: no Unicode normalisation, no escaping, and the
# separators of the canonical form (space, newline) can never occur inside a value.
_TOKEN = re.compile(rf"[A-Za-z0-9_.\-]{{1,{TOKEN_MAX}}}")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_.\-\n]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

_sha256 = hashlib.sha256


class MalformedRound(InvalidInput):
    """A round document (or entry list) that does not follow the format."""

    code = "malformed_round"


class Entry(NamedTuple):
    """One patient's entry in a round.

    ``ref`` is an opaque pseudonym the server assigns at random (it must not be chosen by the
    patient or derived from their identity); ``choices`` are 1 to 3 distinct session ids,
    best first."""

    ref: str
    choices: tuple[str, ...]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk computation, restoring its state after.

    A million-entry draw creates millions of small tuples, none of them cyclic garbage; the
    collector would walk every live object again and again as they pile up, which costs
    more than the draw itself (measured: verification 12.4 s with it, 7.5 s without)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                # Everything allocated meanwhile sits in the youngest generation, and the
                # first collection after re-enabling would walk all of it (about 0.4 s at
                # a million entries). Moving it to the oldest generation leaves it to the
                # rare full collections, like any long-lived data.
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _first_bad_token(values: Iterable[object]) -> object | None:
    for value in values:
        if not isinstance(value, str) or _TOKEN.fullmatch(value) is None:
            return value
    return None


def _tokens_ok(values: list[str]) -> bool:
    # One C-level pass over the joined text instead of a regex call per value: it matters at
    # a million entries. Length bounds catch empty and over-long values; counting newlines
    # catches a value that smuggles in the separator.
    if not values:
        return True
    try:
        joined = "\n".join(values)
    except TypeError:
        return False
    return (
        _TOKEN_CHARS.fullmatch(joined) is not None
        and joined.count("\n") == len(values) - 1
        and min(map(len, values)) >= 1
        and max(map(len, values)) <= TOKEN_MAX
    )


def _check_columns(
    refs: list[str],
    choices: Sequence[Sequence[str]],
    capacities: Mapping[str, int] | None,
    max_choices: int,
) -> None:
    """Raise ``MalformedRound`` naming the first problem in an entry list given as columns."""
    if not _tokens_ok(refs):
        bad = _first_bad_token(refs)
        raise MalformedRound(
            f"entry ref {bad!r} is not 1-{TOKEN_MAX} characters of A-Z a-z 0-9 _ . -"
        )
    if len(set(refs)) != len(refs):
        _refuse_duplicate(refs)
    lengths = list(map(len, choices))
    if lengths and (min(lengths) < 1 or max(lengths) > max_choices):
        for ref, chosen in zip(refs, choices, strict=True):
            if not 0 < len(chosen) <= max_choices:
                raise MalformedRound(
                    f"entry {ref!r} has {len(chosen)} choices; 1 to {max_choices} are allowed"
                )
    # Only the distinct session ids need checking: a few thousand, not millions. When the
    # round's sessions are given, membership implies a valid id (capacities are checked).
    named: set[object]
    try:
        named = set(chain.from_iterable(choices))
    except TypeError:  # an unhashable value, such as a list inside the choices
        named = {object()}
    wrong = (named.difference(capacities) if capacities is not None
             else {v for v in named if not isinstance(v, str) or not _TOKEN.fullmatch(v)})
    if wrong:
        for ref, chosen in zip(refs, choices, strict=True):
            for value in chosen:
                if not isinstance(value, str) or _TOKEN.fullmatch(value) is None:
                    raise MalformedRound(
                        f"entry {ref!r} chooses {value!r}, which is not a valid session id"
                    )
                if capacities is not None and value not in capacities:
                    raise MalformedRound(
                        f"entry {ref!r} chooses session {value!r}, which is not in the round"
                    )
    if list(map(len, map(set, choices))) != lengths:
        for ref, chosen in zip(refs, choices, strict=True):
            if len(set(chosen)) != len(chosen):
                raise MalformedRound(f"entry {ref!r} names the same session twice")


def _refuse_duplicate(refs: Iterable[str]) -> NoReturn:
    seen: set[str] = set()
    for ref in refs:
        if ref in seen:
            raise MalformedRound(f"entry ref {ref!r} appears more than once")
        seen.add(ref)
    raise AssertionError("unreachable: called for refs with a duplicate")


def _check_capacities(capacities: Mapping[str, int]) -> None:
    bad = _first_bad_token(capacities)
    if bad is not None:
        raise MalformedRound(f"session id {bad!r} is not 1-{TOKEN_MAX} characters of "
                             "A-Z a-z 0-9 _ . -")
    for session, capacity in capacities.items():
        if type(capacity) is not int or capacity < 0:
            raise MalformedRound(
                f"capacity of session {session!r} must be a whole number >= 0, got {capacity!r}"
            )


class _Prepared(NamedTuple):
    """A checked entry list in the form the draw works on.

    ``sessions`` lists the round's session ids (an id's position is its number), ``room``
    their capacities followed by a 0 for the padding number ``len(sessions)``; row ``i`` of
    ``table`` holds entry ``i``'s choices as numbers, best first, padded to at least three
    columns; ``encoded`` holds the refs as ASCII bytes."""

    sessions: list[str]
    room: list[int]
    table: npt.NDArray[np.intp]
    encoded: list[bytes]
    ascending: bool  # the refs are listed in ascending order


def _prepare(
    refs: list[str],
    choices: Sequence[Sequence[str]],
    capacities: Mapping[str, int],
    max_choices: int,
    *,
    unique_checked_later: bool = False,
) -> _Prepared:
    """Check an entry list against the round's sessions in whole-column passes and number
    its choices. The capacities must already be checked. A draw may pass
    ``unique_checked_later``: equal refs have equal keys, which its sort finds for free.

    Any problem is explained by ``_check_columns``, which walks the entries one by one and
    raises ``MalformedRound`` for the first problem; this function only detects that there is
    one, so the two always agree on what is accepted and on the message."""
    def explain() -> NoReturn:
        _check_columns(refs, choices, capacities, max_choices)
        raise AssertionError("unreachable: the column check found no problem to name")

    n = len(refs)
    sessions = list(capacities)
    pad = len(sessions)
    if not n:
        return _Prepared(sessions, [*capacities.values(), 0],
                         np.full((0, 3), pad, dtype=np.intp), [], True)
    # Refs: ASCII tokens of 1-64 characters, unique. Deleting every allowed byte must leave
    # exactly the n - 1 separators; exported documents list the refs in ascending order,
    # which proves them unique without building a set.
    try:
        data = "\n".join(refs).encode("ascii")
    except (TypeError, UnicodeEncodeError):
        explain()
    if data.translate(None, _TOKEN_BYTES) != b"\n" * (n - 1):
        explain()
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    lengths = np.diff(ends, prepend=-1, append=len(data)) - 1
    if int(lengths.min()) < 1 or int(lengths.max()) > TOKEN_MAX:
        explain()
    ascending = all(map(str.__lt__, refs, islice(refs, 1, None)))
    if not unique_checked_later and not ascending and len(set(refs)) != n:
        explain()
    # Choices: 1 to max_choices of the round's sessions, distinct within an entry.
    try:
        counts = np.fromiter(map(len, choices), dtype=np.intp, count=n)
        total = int(counts.sum())
        index = {session: number for number, session in enumerate(sessions)}
        flat = np.fromiter(map(index.get, chain.from_iterable(choices), repeat(-1)),
                           dtype=np.intp, count=total)
    except (TypeError, ValueError):  # a value that is not a list or not hashable
        explain()
    widest = int(counts.max())
    if int(counts.min()) < 1 or widest > max_choices or (total and int(flat.min()) < 0):
        explain()
    table = np.full((n, max(widest, 3)), pad, dtype=np.intp)
    starts = np.cumsum(counts) - counts
    for rank in range(widest):
        rows = np.flatnonzero(counts > rank) if rank else np.arange(n)
        table[rows, rank] = flat[starts[rows] + rank]
    for a in range(widest):
        for b in range(a + 1, widest):
            if bool(np.any((table[:, a] == table[:, b]) & (table[:, b] != pad))):
                explain()
    return _Prepared(sessions, [*capacities.values(), 0], table, data.split(b"\n"), ascending)


def validate_entries(
    entries: Sequence[Entry],
    capacities: Mapping[str, int] | None = None,
    *,
    max_choices: int = MAX_CHOICES,
) -> None:

    """Raise ``MalformedRound`` (an ``InvalidInput``) unless the entries can be drawn.

    Refs must be unique; each entry has 1..``max_choices`` distinct session ids; with
    ``capacities`` every chosen session must belong to the round."""
    if capacities is not None:
        _check_capacities(capacities)
    _check_columns(*_columns(entries), capacities, max_choices)


def _columns(entries: Sequence[Entry]) -> tuple[list[str], list[tuple[str, ...]]]:
    refs = [e.ref for e in entries]
    choices = [e.choices for e in entries]
    if not set(map(type, choices)) <= {tuple}:
        bad = next(e for e in entries if not isinstance(e.choices, tuple))
        raise MalformedRound(f"entry {bad.ref!r}: choices must be a tuple of session ids")
    return refs, choices


def _canonical_columns(refs: Sequence[str], choices: Sequence[Sequence[str]],
                       ascending: bool | None = None) -> bytes:
    if ascending is None:
        ascending = all(map(str.__lt__, refs, islice(refs, 1, None)))
    if ascending:
        # Already in ref order, as in an exported document.
        lines = [f"{ref} {' '.join(chosen)}\n" for ref, chosen in zip(refs, choices,
                                                                         strict=True)]
    else:
        lines = [f"{refs[i]} {' '.join(choices[i])}\n" for i in _by_ref(refs)]
    return "".join(lines).encode("ascii")


def _by_ref(refs: Sequence[str]) -> list[int]:
    """Positions of the refs in ref order. ASCII refs sort the same as bytes and as code
    points, and NumPy sorts a million of them about twice as fast as ``sorted``."""
    try:
        data = "\n".join(refs).encode("ascii")
    except UnicodeEncodeError:
        data = b"\0"
    if b"\0" in data or data.count(b"\n") != len(refs) - 1:  # not refs that a draw accepts
        return sorted(range(len(refs)), key=refs.__getitem__)
    ordered: list[int] = np.argsort(np.array(data.split(b"\n")), kind="stable").tolist()
    return ordered


def canonical_entries(entries: Iterable[Entry]) -> bytes:
    """The canonical serialisation of a frozen entry list.

    One line per entry, sorted by ref (byte order): the ref, then each choice in rank order,
    separated by single spaces, ending in a newline; ASCII. The values cannot contain spaces
    or newlines, so the text parses back unambiguously."""
    listed = list(entries)
    return _canonical_columns([e.ref for e in listed], [e.choices for e in listed])


def entries_digest(entries: Iterable[Entry]) -> str:
    """Lowercase hex SHA-256 of ``canonical_entries(entries)``; independent of entry order."""
    return _sha256(canonical_entries(entries)).hexdigest()

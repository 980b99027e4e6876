"""The verifiable draw of a release round: seed and commitment, the frozen entry list and its
digest, the draw order, random serial dictatorship, and the round document anyone can check.

Everything here is a pure function of its arguments. The byte-level definition lives in
``docs/draw.md``; this module is its reference implementation, so the two change together.

A round goes through three public moments:

1. window opens: ``seed = new_seed()`` is kept secret and ``commitment(seed)`` is published
   together with the capacities;
2. window closes: the entries are frozen and ``entries_digest(entries)`` is published;
3. draw: ``run_draw(seed, entries, capacities, beacon)`` allocates the slots, and the round
   document (``export_round``) reveals the seed so that ``verify_round`` can recompute it all.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import re
import secrets
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, islice, repeat
from typing import Any, NamedTuple, NoReturn

import numpy as np
import numpy.typing as npt

from fairslot.domain.errors import InvalidInput

__all__ = [
    "FORMAT",
    "MAX_CHOICES",
    "SEED_BYTES",
    "Award",
    "DrawResult",
    "Entry",
    "MalformedRound",
    "Round",
    "Verification",
    "canonical_entries",
    "commitment",
    "draw_keys",
    "draw_order",
    "entries_digest",
    "export_round",
    "load_round",
    "new_seed",
    "next_in_line",
    "round_key",
    "run_draw",
    "validate_entries",
    "verify_round",
]

FORMAT = "fairslot-round/1"
SEED_BYTES = 32
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


class Award(NamedTuple):
    """A winning entry: the session it got and the rank (1 = first choice) of that session."""

    ref: str
    session: str
    rank: int


@dataclass(frozen=True, slots=True)
class DrawResult:
    """The outcome of a draw.

    ``winners`` maps each winning ref to its award and iterates in draw order; ``waitlist``
    holds every losing ref in draw order (its head is offered the first freed slot)."""

    winners: Mapping[str, Award]
    waitlist: tuple[str, ...]

    @property
    def awards(self) -> tuple[Award, ...]:
        """The awards in draw order."""
        return tuple(self.winners.values())


@dataclass(frozen=True, slots=True)
class Round:
    """Everything a round publishes. ``seed`` and ``result`` stay ``None`` until the draw.

    ``parameters`` is free-form public metadata (window times, doctor, policy); it is
    published but does not enter any hash."""

    round_id: str
    capacities: Mapping[str, int]
    entries: tuple[Entry, ...]
    commitment: str
    entries_digest: str
    beacon: str = ""
    seed: bytes | None = None
    result: DrawResult | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify_round`` found. ``ok`` is true only when every check passed; ``reasons``
    says what failed, most fundamental first. ``malformed`` means the document could not be
    read as a round at all (the counts are then zero)."""

    ok: bool
    reasons: tuple[str, ...] = ()
    malformed: bool = False
    round_id: str = ""
    entries: int = 0
    sessions: int = 0
    winners: int = 0
    waitlisted: int = 0

    def summary(self) -> str:
        if self.ok:
            return (
                f"round {self.round_id}: {self.entries} entries, {self.sessions} sessions, "
                f"{self.winners} winners, {self.waitlisted} on the waitlist; seed, entries "
                "and results all check out"
            )
        return "; ".join(self.reasons)


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
            gc.enable()


# --- seed and commitment -----------------------------------------------------------------


def new_seed() -> bytes:
    """A fresh 32-byte seed from the operating system's CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    """The published commitment to a seed: lowercase hex SHA-256 of its 32 bytes.

    A 256-bit random seed cannot be guessed from its hash, so publishing the commitment when
    the window opens binds the operator to the seed without revealing it."""
    if len(seed) != SEED_BYTES:
        raise InvalidInput(f"a seed is {SEED_BYTES} bytes, got {len(seed)}", code="bad_seed")
    return _sha256(seed).hexdigest()


# --- entries -----------------------------------------------------------------------------


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


# --- draw order --------------------------------------------------------------------------


def round_key(seed: bytes, beacon: str = "") -> bytes:
    """The 32-byte key that every entry's draw key is derived from: SHA-256(seed ‖ beacon).

    The seed has a fixed length, so the concatenation with the UTF-8 beacon is unambiguous."""
    if len(seed) != SEED_BYTES:
        raise InvalidInput(f"a seed is {SEED_BYTES} bytes, got {len(seed)}", code="bad_seed")
    return _sha256(seed + beacon.encode("utf-8")).digest()


def _hash_function() -> Callable[[bytes], Any]:
    # CPython's own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before) starts a hash much
    # faster than OpenSSL's, which is what a million 1-block messages cost; the digests are
    # the same (a unit test checks against ``hashlib``).
    for name in ("_sha2", "_sha256"):
        try:
            function: Callable[[bytes], Any] = importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
        return function
    return _sha256


_short_sha256 = _hash_function()
_short_digest = type(_short_sha256(b"")).digest


def _key_bytes(key: bytes, encoded: Sequence[bytes]) -> bytes:
    """Every entry's draw key, SHA-256(key ‖ ref), concatenated: 32 bytes per entry."""
    return b"".join(map(_short_digest, map(_short_sha256, map(key.__add__, encoded))))


def _keys(key: bytes, refs: Sequence[str]) -> list[bytes]:
    if not refs:
        return []
    keys = _key_bytes(key, "\n".join(refs).encode("ascii").split(b"\n"))
    return [keys[n:n + 32] for n in range(0, len(keys), 32)]


def draw_keys(seed: bytes, refs: Sequence[str], beacon: str = "") -> list[bytes]:
    """Each ref's draw key, SHA-256(round_key(seed, beacon) ‖ ASCII(ref)), in input order."""
    return _keys(round_key(seed, beacon), refs)


def _prefixes(keys: bytes) -> npt.NDArray[np.uint64]:
    """The first 8 bytes of each 32-byte key as an unsigned big-endian number."""
    return np.frombuffer(keys, dtype=">u8")[::4].astype(np.uint64)


def _order_keys(keys: bytes, refs: Sequence[str]) -> npt.NDArray[np.intp]:
    """Entry numbers in draw order: ascending by key, ties by ref.

    Sorts the 64-bit key prefixes, then puts each run of equal prefixes (at a million
    entries, one draw in about 37 million has one) in order by the full key and the ref. Equal refs
    have equal keys, so a duplicate ref always shows up here and is refused."""
    prefixes = _prefixes(keys)
    order = np.argsort(prefixes, kind="stable").astype(np.intp)
    ranked = prefixes[order]
    tied = np.flatnonzero(ranked[1:] == ranked[:-1]).tolist()
    start = 0
    while start < len(tied):
        end = start
        while end + 1 < len(tied) and tied[end + 1] == tied[end] + 1:
            end += 1
        first, last = tied[start], tied[end] + 1
        run = order[first:last + 1].tolist()
        run.sort(key=lambda i: (keys[32 * i:32 * i + 32], refs[i]))
        if len({refs[i] for i in run}) != len(run):
            _refuse_duplicate(refs)
        order[first:last + 1] = run
        start = end + 1
    return order


def _order(key: bytes, refs: Sequence[str]) -> npt.NDArray[np.intp]:
    if not refs:
        return np.zeros(0, dtype=np.intp)
    return _order_keys(_key_bytes(key, "\n".join(refs).encode("ascii").split(b"\n")), refs)


def draw_order(seed: bytes, entries: Sequence[Entry], beacon: str = "") -> list[str]:
    """The refs in draw order: ascending by draw key (bytes compared as unsigned), ties by ref.

    Each entry's place depends only on the seed, the beacon and its own ref, so neither the
    order in which entries were submitted nor any other entry moves it relative to the rest,
    and once the seed is committed the operator has nothing left to steer."""
    refs = [e.ref for e in entries]
    return list(map(refs.__getitem__, _order(round_key(seed, beacon), refs).tolist()))


# --- allocation --------------------------------------------------------------------------


def _allocate(ranked: npt.NDArray[np.intp], room: list[int]) -> npt.NDArray[np.intp]:
    """Random serial dictatorship over entries already in draw order (``ranked`` holds their
    choices as session numbers, padded with a number whose room is 0). Returns the rank each
    entry won (1 = first choice), 0 for an entry that joins the waitlist. ``room`` is used up.

    The walk is sequential by nature (each award changes what the next entry finds), so it
    runs over plain lists of small integers: no strings, hashing or per-entry objects."""
    n, width = ranked.shape
    won = np.ones(n, dtype=np.intp)
    if width == 3:
        first, second, third = (ranked[:, k].tolist() for k in range(3))
        seconds: list[int] = []
        thirds: list[int] = []
        lost: list[int] = []
        for position, session in enumerate(first):
            if room[session]:
                room[session] -= 1
            elif room[other := second[position]]:
                room[other] -= 1
                seconds.append(position)
            elif room[other := third[position]]:
                room[other] -= 1
                thirds.append(position)
            else:
                lost.append(position)
        won[seconds] = 2
        won[thirds] = 3
        won[lost] = 0
        return won
    for position, row in enumerate(ranked.tolist()):
        for rank, session in enumerate(row, 1):
            if room[session]:
                room[session] -= 1
                won[position] = rank
                break
        else:
            won[position] = 0
    return won


class _Outcome(NamedTuple):
    """A draw's results as columns: the winners' refs, sessions and ranks in draw order, and
    the waitlist."""

    refs: list[str]
    sessions: list[str]
    ranks: list[int]
    waitlist: list[str]

    def awards(self) -> list[Award]:
        # tuple.__new__ through partial builds the named tuples without a Python-level call.
        return list(map(partial(tuple.__new__, Award), zip(self.refs, self.sessions,
                                                           self.ranks, strict=True)))

    def result(self) -> DrawResult:
        return DrawResult(winners=dict(zip(self.refs, self.awards(), strict=True)),
                          waitlist=tuple(self.waitlist))


def _draw_prepared(key: bytes, refs: list[str], prepared: _Prepared) -> _Outcome:
    if not refs:
        return _Outcome([], [], [], [])
    order = _order_keys(_key_bytes(key, prepared.encoded), refs)
    ranked = prepared.table[order]
    won = _allocate(ranked, list(prepared.room))
    winning = np.flatnonzero(won)
    ranks = won[winning]
    # Gathering through object arrays copies references in C, in draw order.
    by_number = np.array(refs, dtype=object)
    names = np.array(prepared.sessions, dtype=object)
    return _Outcome(
        refs=by_number[order[winning]].tolist(),
        sessions=names[ranked[winning, ranks - 1]].tolist(),
        ranks=ranks.tolist(),
        waitlist=by_number[order[won == 0]].tolist(),
    )


def run_draw(
    seed: bytes,
    entries: Sequence[Entry],
    capacities: Mapping[str, int],
    beacon: str = "",
    *,
    max_choices: int = MAX_CHOICES,
) -> DrawResult:
    """Draw a round: random serial dictatorship over ``draw_order``.

    In draw order, each entry gets its highest-ranked session that still has room; an entry
    none of whose sessions has room joins the waitlist. Raises ``MalformedRound`` for an
    invalid entry list and ``InvalidInput`` for a seed that is not 32 bytes."""
    _check_capacities(capacities)
    with _collector_paused():
        refs, choices = _columns(entries)
        prepared = _prepare(refs, choices, capacities, max_choices, unique_checked_later=True)
        return _draw_prepared(round_key(seed, beacon), refs, prepared).result()


def next_in_line(
    waitlist: Sequence[str],
    choices: Mapping[str, Sequence[str]],
    session: str,
    skip: Container[str] = frozenset(),
) -> str | None:
    """Who is offered a freed slot of ``session``: the first ref on the waitlist, in draw
    order, that chose ``session`` and is not in ``skip`` (already offered, declined, booked
    elsewhere or suspended). ``None`` once nobody is left: only then may the slot become a
    first-come-first-served leftover. ``choices`` maps each ref to its ranked sessions."""
    for ref in waitlist:
        if ref not in skip and session in choices[ref]:
            return ref
    return None


# --- the round document ------------------------------------------------------------------


def export_round(round_: Round) -> dict[str, Any]:
    """The round as a JSON-able dict (see ``docs/draw.md`` for the schema).

    Entries are listed by ref so that a patient can find their own. Refuses to put a seed in
    the document of a round that has not been drawn: that would reveal it too early."""
    if round_.result is None and round_.seed is not None:
        raise ValueError("refusing to export the seed of a round that has not been drawn")
    entries = sorted(round_.entries)
    result = round_.result
    return {
        "format": FORMAT,
        "round_id": round_.round_id,
        "parameters": dict(round_.parameters),
        "commitment": round_.commitment,
        "entries_digest": round_.entries_digest,
        "seed": None if round_.seed is None else round_.seed.hex(),
        "beacon": round_.beacon,
        "capacities": dict(round_.capacities),
        "entries": [{"ref": e.ref, "choices": list(e.choices)} for e in entries],
        "results": None if result is None else {
            "winners": [
                {"ref": a.ref, "session": a.session, "rank": a.rank}
                for a in result.winners.values()
            ],
            "waitlist": list(result.waitlist),
        },
    }


def _need(doc: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    if key not in doc:
        raise MalformedRound(f"{what} has no {key!r}")
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedRound(f"{what}: {key!r} must be a {_KIND_NAMES[kind]}, got "
                             f"{type(value).__name__}")
    return value


_KIND_NAMES: dict[type, str] = {
    str: "string", int: "whole number", list: "list", dict: "JSON object",
}


def _read_columns(raw: list[Any]) -> tuple[list[str], list[list[str]]]:
    # Fast path first: a handful of C-level passes over a million entries. Values are
    # checked afterwards by ``_prepare``; only the container shapes matter here. Only a JSON
    # object can be indexed by "ref" (a string or a list raises TypeError), and one with
    # exactly two keys, both present, has no other field.
    try:
        if set(map(len, raw)) <= {2}:
            refs = [item["ref"] for item in raw]
            lists = [item["choices"] for item in raw]
            if set(map(type, lists)) <= {list}:
                return refs, lists
    except (KeyError, TypeError):
        pass
    # Something is off: find the first offending entry and say precisely what.
    for n, item in enumerate(raw):
        what = f"entries[{n}]"
        if not isinstance(item, dict):
            raise MalformedRound(f"{what} must be a JSON object")
        extra = set(item).difference({"ref", "choices"})
        if extra:
            raise MalformedRound(f"{what} has unknown fields {sorted(extra)}")
        _need(item, "ref", str, what)
        _need(item, "choices", list, what)
    raise AssertionError("unreachable: the fast path accepts every well-formed list")


def _read_results(raw: Any) -> _Outcome:
    if not isinstance(raw, dict):
        raise MalformedRound("'results' must be a JSON object or null")
    winners_raw = _need(raw, "winners", list, "results")
    waitlist = _need(raw, "waitlist", list, "results")
    if not set(map(type, waitlist)) <= {str}:
        raise MalformedRound("results.waitlist must be a list of entry refs")
    if set(map(type, winners_raw)) <= {dict} and set(map(len, winners_raw)) <= {3}:
        try:
            refs = [item["ref"] for item in winners_raw]
            sessions = [item["session"] for item in winners_raw]
            ranks = [item["rank"] for item in winners_raw]
        except KeyError:
            pass
        else:
            if (set(map(type, refs)) <= {str} and set(map(type, sessions)) <= {str}
                    and set(map(type, ranks)) <= {int}):
                return _Outcome(refs, sessions, ranks, waitlist)
    winners: list[Award] = []
    for n, item in enumerate(winners_raw):
        what = f"results.winners[{n}]"
        if not isinstance(item, dict):
            raise MalformedRound(f"{what} must be a JSON object")
        winners.append(Award(_need(item, "ref", str, what), _need(item, "session", str, what),
                             _need(item, "rank", int, what)))
    return _Outcome([a.ref for a in winners], [a.session for a in winners],
                    [a.rank for a in winners], waitlist)


class _Loaded(NamedTuple):
    round_id: str
    parameters: dict[str, Any]
    commitment: str
    entries_digest: str
    seed: bytes | None
    beacon: str
    capacities: dict[str, int]
    refs: list[str]
    choices: list[list[str]]
    prepared: _Prepared
    stated: _Outcome | None  # the published results, None before the draw


def _read(doc: Mapping[str, Any]) -> _Loaded:
    """Parse a round document into columns, raising ``MalformedRound`` with a clear message."""
    if not isinstance(doc, Mapping):
        raise MalformedRound("a round document must be a JSON object")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise MalformedRound(f"unknown format {fmt!r}; this verifier reads {FORMAT!r}")
    round_id = _need(doc, "round_id", str, "the round")
    parameters = _need(doc, "parameters", dict, "the round")
    promised = _need(doc, "commitment", str, "the round")
    digest = _need(doc, "entries_digest", str, "the round")
    for name, value in (("commitment", promised), ("entries_digest", digest)):
        if _HEX64.fullmatch(value) is None:
            raise MalformedRound(f"{name!r} must be 64 lowercase hex digits")
    seed_hex = doc.get("seed")
    seed: bytes | None = None
    if seed_hex is not None:
        if not isinstance(seed_hex, str) or _HEX64.fullmatch(seed_hex) is None:
            raise MalformedRound("'seed' must be 64 lowercase hex digits (32 bytes) or null")
        seed = bytes.fromhex(seed_hex)
    beacon = doc.get("beacon", "")
    if not isinstance(beacon, str):
        raise MalformedRound("'beacon' must be a string")
    capacities = _need(doc, "capacities", dict, "the round")
    _check_capacities(capacities)
    max_choices = parameters.get("max_choices", MAX_CHOICES)
    if type(max_choices) is not int or max_choices < 1:
        raise MalformedRound("parameters.max_choices must be a whole number >= 1")
    refs, choices = _read_columns(_need(doc, "entries", list, "the round"))
    prepared = _prepare(refs, choices, capacities, max_choices)
    results = doc.get("results")
    return _Loaded(round_id, parameters, promised, digest, seed, beacon, capacities, refs,
                   choices, prepared, None if results is None else _read_results(results))


def load_round(doc: Mapping[str, Any]) -> Round:
    """Read a round document (as produced by ``export_round``) back into a ``Round``.

    Checks the shape only, not the hashes or results (that is ``verify_round``'s job).
    Raises ``MalformedRound`` with a message naming the offending field."""
    loaded = _read(doc)
    result = None
    if loaded.stated is not None:
        result = DrawResult(winners={a.ref: a for a in loaded.stated.awards()},
                            waitlist=tuple(loaded.stated.waitlist))
    return Round(
        round_id=loaded.round_id,
        capacities=loaded.capacities,
        entries=tuple(map(Entry, loaded.refs, map(tuple, loaded.choices))),
        commitment=loaded.commitment,
        entries_digest=loaded.entries_digest,
        beacon=loaded.beacon,
        seed=loaded.seed,
        result=result,
        parameters=loaded.parameters,
    )


def _check_stated(loaded: _Loaded, winners: list[Award], waitlist: list[str]) -> list[str]:
    """Checks on the published results that need no seed: they name the problem plainly."""
    reasons: list[str] = []
    chosen = dict(zip(loaded.refs, loaded.choices, strict=True))
    used: dict[str, int] = {}
    seen: set[str] = set()
    for award in winners:
        if award.ref not in chosen:
            reasons.append(f"winner {award.ref!r} is not among the entries")
            break
        if award.ref in seen:
            reasons.append(f"entry {award.ref!r} wins more than once")
            break
        seen.add(award.ref)
        picks = chosen[award.ref]
        if not 1 <= award.rank <= len(picks) or picks[award.rank - 1] != award.session:
            reasons.append(f"winner {award.ref!r} is given {award.session!r} as choice "
                           f"{award.rank}, but its choices are {list(picks)}")
            break
        used[award.session] = used.get(award.session, 0) + 1
    for session, count in sorted(used.items()):
        if count > loaded.capacities[session]:
            reasons.append(f"session {session!r} has {count} winners but capacity "
                           f"{loaded.capacities[session]}")
            break
    listed = seen.union(waitlist)
    if len(waitlist) != len(set(waitlist)) or seen.intersection(waitlist):
        reasons.append("an entry appears twice among winners and waitlist")
    elif len(listed) != len(chosen) or not listed.issubset(chosen):
        missing = sorted(set(chosen).difference(listed))
        stray = sorted(listed.difference(chosen))
        if missing:
            reasons.append(f"entry {missing[0]!r} is neither a winner nor on the waitlist")
        if stray:
            reasons.append(f"waitlist names {stray[0]!r}, which is not an entry")
    return reasons


def _first_difference(kind: str, stated: Sequence[Any], computed: Sequence[Any]) -> str | None:
    # A length mismatch is reported after the common prefix, hence no strict zip.
    for n, (a, b) in enumerate(zip(stated, computed, strict=False)):
        if a != b:
            return f"{kind} #{n + 1} is {_show(a)} but the draw gives {_show(b)}"
    if len(stated) != len(computed):
        return (f"the document lists {len(stated)} {kind} entries but the draw gives "
                f"{len(computed)}")
    return None


def _show(item: Any) -> str:
    if isinstance(item, Award):
        return f"{item.ref} -> {item.session} (choice {item.rank})"
    return repr(item)


def verify_round(doc: Mapping[str, Any] | Round) -> Verification:
    """Recompute a round from its document and compare with what it publishes.

    Checks, in order: the document's shape; SHA-256(seed) equals the commitment; the digest
    of the entries equals ``entries_digest``; the published results are self-consistent (each
    winner chose its session at that rank, wins once, capacities hold, every entry is a
    winner or waitlisted); and the recomputed winners and waitlist equal the published ones,
    naming the first difference. Never raises for a bad document: ``malformed`` says so."""
    with _collector_paused():
        return _verify(doc)


def _verify(doc: Mapping[str, Any] | Round) -> Verification:
    try:
        loaded = _read(export_round(doc) if isinstance(doc, Round) else doc)
    except InvalidInput as exc:
        return Verification(ok=False, malformed=True, reasons=(f"malformed document: {exc}",))
    reasons: list[str] = []
    if loaded.seed is None:
        reasons.append("the round has not been drawn: no seed is revealed")
    elif commitment(loaded.seed) != loaded.commitment:
        reasons.append(f"the seed does not match the commitment: SHA-256(seed) is "
                       f"{commitment(loaded.seed)}, the commitment is {loaded.commitment}")
    digest = _sha256(_canonical_columns(loaded.refs, loaded.choices,
                                        loaded.prepared.ascending)).hexdigest()
    if digest != loaded.entries_digest:
        reasons.append(f"the entries do not match the published digest: they hash to "
                       f"{digest}, the document says {loaded.entries_digest}")
    stated = loaded.stated
    if stated is None:
        reasons.append("the document has no results")
    else:
        differences: list[str] = []
        if loaded.seed is not None:
            # The entries were checked while reading the document: draw them as they are,
            # and compare column by column (awards are only built to name a difference).
            computed = _draw_prepared(round_key(loaded.seed, loaded.beacon), loaded.refs,
                                      loaded.prepared)
            if computed != stated:
                for problem in (
                    _first_difference("winner", stated.awards(), computed.awards()),
                    _first_difference("waitlist", stated.waitlist, computed.waitlist),
                ):
                    if problem is not None:
                        differences.append(problem)
        # Results equal to a recomputed draw are consistent by construction; the plain
        # checks only run to explain a mismatch (or results that cannot be recomputed).
        if differences or loaded.seed is None:
            reasons.extend(_check_stated(loaded, stated.awards(), stated.waitlist))
        reasons.extend(differences)
    return Verification(
        ok=not reasons,
        reasons=tuple(reasons),
        round_id=loaded.round_id,
        entries=len(loaded.refs),
        sessions=len(loaded.capacities),
        winners=0 if stated is None else len(stated.refs),
        waitlisted=0 if stated is None else len(stated.waitlist),
    )

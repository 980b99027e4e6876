"""The draw itself: one key per entry, the draw order, and random serial dictatorship over
it (each entry in turn takes its best choice that still has room)."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from fairslot.domain.draw.entries import (
    MAX_CHOICES,
    Entry,
    _check_capacities,
    _collector_paused,
    _columns,
    _prepare,
    _Prepared,
    _refuse_duplicate,
)
from fairslot.domain.draw.seed import SEED_BYTES, round_key
from fairslot.domain.errors import InvalidInput

__all__ = [
    "Award",
    "DrawResult",
    "draw_keys",
    "draw_order",
    "frozen_round_key",
    "next_in_line",
    "run_draw",
    "stream_keys",
]


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
    return hashlib.sha256


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


# Entries walked per block; before each block, the entries none of whose sessions has
# room left are set aside at once (room only ever shrinks, so they would find none).
_BLOCK = 8192


def _allocate(ranked: npt.NDArray[np.intp], room: list[int]) -> npt.NDArray[np.intp]:
    """Random serial dictatorship over entries already in draw order (``ranked`` holds their
    choices as session numbers, padded with a number whose room is 0). Returns the rank each
    entry won (1 = first choice), 0 for an entry that joins the waitlist. ``room`` is used up.

    The walk is sequential by nature (each award changes what the next entry finds), so it
    runs over plain lists of small integers: no strings, hashing or per-entry objects. Once
    the popular sessions are full, most entries find none of theirs with room; those are
    found block by block in whole-array passes and skip the walk."""
    n, width = ranked.shape
    won = np.zeros(n, dtype=np.intp)
    for start in range(0, n, _BLOCK):
        block = ranked[start:start + _BLOCK]
        has_room = np.array(room, dtype=bool)
        alive = np.flatnonzero(has_room[block].any(axis=1))
        rows = block[alive]
        positions = (alive + start).tolist()
        if width == 3:
            firsts: list[int] = []
            seconds: list[int] = []
            thirds: list[int] = []
            for position, session, second, third in zip(
                    positions, *(rows[:, k].tolist() for k in range(3)), strict=True):
                if room[session]:
                    room[session] -= 1
                    firsts.append(position)
                elif room[second]:
                    room[second] -= 1
                    seconds.append(position)
                elif room[third]:
                    room[third] -= 1
                    thirds.append(position)
            won[firsts] = 1
            won[seconds] = 2
            won[thirds] = 3
            continue
        for position, row in zip(positions, rows.tolist(), strict=True):
            for rank, session in enumerate(row, 1):
                if room[session]:
                    room[session] -= 1
                    won[position] = rank
                    break
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
    return _draw_with_keys(_key_bytes(key, prepared.encoded), refs, prepared)


def _draw_with_keys(keys: bytes, refs: list[str], prepared: _Prepared) -> _Outcome:
    """Random serial dictatorship in the order of ``keys`` (32 bytes per entry, in the order
    of ``refs``), ties by ref."""
    if not refs:
        return _Outcome([], [], [], [])
    order = _order_keys(keys, refs)
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


def frozen_round_key(seed: bytes, root: bytes, randomness: bytes) -> bytes:
    """The key of a ``fairslot-round/2`` draw: SHA-256(seed ‖ frozen root ‖ beacon
    randomness), three 32-byte values, so the concatenation is unambiguous."""
    if len(seed) != SEED_BYTES or len(root) != 32 or len(randomness) != 32:
        raise InvalidInput("seed, root and randomness are 32 bytes each", code="bad_seed")
    return hashlib.sha256(seed + root + randomness).digest()


def stream_keys(key: bytes, count: int) -> bytes:
    """The draw keys of a ``fairslot-round/2`` draw: the first ``32 * count`` bytes of
    SHAKE-256(key); the i-th 32 bytes belong to the i-th drawn entry in ref order. One call
    for all entries instead of one hash per entry (a million keys in about 0.1 s)."""
    return hashlib.shake_256(key).digest(32 * count) if count else b""


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

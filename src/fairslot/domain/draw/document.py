"""The round document of format ``fairslot-round/1`` (export, load, verify).

Kept so that rounds published before ``fairslot-round/2`` can still be read; it has no
frozen list, no chain beacon and no signatures, so it can only show that the arithmetic
of a draw is right, not that nobody steered it (``docs/draw.md``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fairslot.domain.draw.allocation import Award, DrawResult, _draw_prepared, _Outcome
from fairslot.domain.draw.entries import (
    MAX_CHOICES,
    Entry,
    MalformedRound,
    _canonical_columns,
    _check_capacities,
    _collector_paused,
    _prepare,
    _Prepared,
)
from fairslot.domain.draw.seed import commitment, round_key
from fairslot.domain.errors import InvalidInput

__all__ = [
    "FORMAT",
    "Round",
    "Verification",
    "export_round",
    "load_round",
    "verify_round",
]


FORMAT = "fairslot-round/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_sha256 = hashlib.sha256


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

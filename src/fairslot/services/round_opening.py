"""Opening a round the one way every round is opened (docs/draw.md, section 1): the seed
and its commitment, the capacities, the chain and the beacon round fixed in advance, signed
as the round's *opening* and appended to the public log of rounds. A release round
(``services.release.rounds``) and a short request window for freed slots
(``services.waitlist``) both go through here, so every draw can be verified the same way."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fairslot.domain import draw, merkle
from fairslot.domain.draw import log as roundlog
from fairslot.domain.draw import statements
from fairslot.domain.draw.signing import digest
from fairslot.domain.rounds import Round, RoundKind, RoundStatus
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = ["append_log", "create_round", "sign_opening"]


def create_round(uow: UnitOfWork, deps: Deps, *, department_id: int, kind: RoundKind,
                 opens: dt.datetime, closes: dt.datetime, now: dt.datetime,
                 detail: dict[str, Any] | None = None, session_id: int | None = None) -> int:
    """A new open round with a fresh seed and its commitment. Its opening is signed by
    ``sign_opening`` once its sessions and capacities are added."""
    seed = deps.random.token_bytes(draw.SEED_BYTES)
    round_id = uow.rounds.create(
        department_id=department_id, opens_at=opens, closes_at=closes,
        status=RoundStatus.OPEN.value, seed=seed.hex(), commitment=draw.commitment(seed),
        beacon="", beacon_source="", entries_count=0, kind=kind.value)
    uow.events.append("round.opened", now, session_id=session_id,
                      detail={"round": round_id, "kind": kind.value, **(detail or {})})
    return round_id


def sign_opening(uow: UnitOfWork, deps: Deps, round_: Round,
                 now: dt.datetime) -> dict[str, Any]:
    """Sign and store the round's opening (its sessions' capacities as they are now), name
    its beacon round and log it."""
    capacities = {str(sid): cap for sid, cap in uow.rounds.capacities(round_.id).items()}
    chain = deps.beacons.chain
    opening = statements.opening_statement(
        deps.draw_key, round_id=str(round_.id), opens_at=round_.opens_at,
        closes_at=round_.closes_at, seed=bytes.fromhex(round_.seed), capacities=capacities,
        chain=chain, beacon_delay=deps.settings.draw_beacon_delay_seconds)
    uow.draw.add_statement(round_.id, "opening", opening, digest(opening), now,
                           signing_key=deps.draw_key.public_hex)
    uow.rounds.update(round_.id, beacon_source=(
        f"drand chain {chain.hash.hex()} round {opening['beacon_round']}"))
    append_log(uow, deps, round_.id, roundlog.opened_record(str(round_.id), digest(opening)),
               now)
    return opening


def append_log(uow: UnitOfWork, deps: Deps, round_id: int, record: dict[str, Any],
               now: dt.datetime) -> None:
    """Append a record to the public log of rounds and sign a checkpoint of the whole log."""
    uow.lock(("draw_log", 0))
    position, leaf = uow.draw.append_log(round_id, record["kind"], record, now)
    frontier = uow.draw.frontier(position) if position else []
    if frontier is None:  # a checkpoint from before frontiers were kept: read the log once
        frontier = merkle.frontier_of(merkle.leaf_hashes(uow.draw.log_leaves()[:position]))
    frontier = merkle.frontier_push(frontier, position, merkle.leaf_hash(leaf))
    checkpoint = roundlog.sign_checkpoint(deps.draw_key, position + 1,
                                          merkle.frontier_root(frontier), now)
    uow.draw.add_checkpoint(checkpoint, now, frontier)

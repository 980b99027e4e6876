"""Hot doctors of an fcfs hospital: a doctor whose session's slots all went within
``hot_sellout_minutes`` of its release is one people race for. The scheduler marks such a
doctor hot and records a ``doctor.draw_proposed`` event, the operator's prompt to move the
doctor to the draw policy (``catalog.set_release_policy``). Until the operator decides,
every release of a hot fcfs doctor opens with a short request window and a draw
(``RoundKind.OPENING``, opened by ``open_due_rounds``), so the race is gone at once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import Conflict, NotFound
from fairslot.domain.schedule import Doctor, ReleasePolicy
from fairslot.services import accounts, catalog
from fairslot.services.deps import Deps, Units
from fairslot.storage.uow import UnitOfWork

__all__ = ["Decision", "Proposal", "decide_proposal", "proposals", "propose_draw_policy"]

PROPOSED = "doctor.draw_proposed"
DECIDED = "doctor.draw_proposal_decided"

LOOKBACK = dt.timedelta(days=14)
"""How far back a sold-out release still makes a doctor hot."""


def propose_draw_policy(units: Units, deps: Deps) -> int:
    """Mark every fcfs doctor whose recent release sold out within the hot time, and
    propose the draw policy for them; returns how many doctors were proposed."""
    now = deps.clock.now()
    within = dt.timedelta(minutes=deps.settings.hot_sellout_minutes)
    proposed: set[int] = set()
    with units() as uow:
        for session_id, doctor_id, release_at, earliest, last in uow.schedule.fcfs_sellouts(
                now - LOOKBACK, now):
            # The race starts at the release; for a session nobody could book then (one
            # scheduled after its release time) or nobody wanted then, at its first booking.
            start = release_at if earliest - release_at <= within else earliest
            if doctor_id in proposed or last - start > within:
                continue
            doctor = uow.schedule.doctor(doctor_id)
            if doctor is None or doctor.hot:
                continue
            doctor.hot = True
            proposed.add(doctor_id)
            uow.events.append(PROPOSED, now, session_id=session_id, detail={
                "doctor": doctor_id, "policy": "draw",
                "sold_out_s": round((last - start).total_seconds(), 3),
                "why": f"every slot went within {deps.settings.hot_sellout_minutes} min of "
                       "the release; its releases now open with a request window"})
        uow.commit()
    return len(proposed)


class Decision(enum.StrEnum):
    ACCEPTED = "accepted"
    """The doctor moves to the draw policy (``catalog.set_release_policy``)."""
    DECLINED = "declined"
    """The doctor keeps its policy; while it is marked hot its releases still open with a
    short request window."""


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One ``doctor.draw_proposed`` event and what the operator made of it."""

    id: int
    at: dt.datetime
    doctor: Doctor | None
    session_id: int | None
    sold_out_s: float | None
    decision: Decision | None
    decided_at: dt.datetime | None
    decided_by: int | None


_LIMIT = 200


def proposals(uow: UnitOfWork, deps: Deps, staff: Account) -> list[Proposal]:
    """The most recent proposals, newest first, each with its decision if made."""
    accounts.require_role(staff, Role.OPERATOR)
    decided: dict[int, tuple[Any, dict[str, Any]]] = {}
    for row in uow.events.recent(_LIMIT * 2, DECIDED):
        detail = dict(row.detail or {})
        decided.setdefault(int(detail.get("proposal", 0)), (row, detail))
    out = []
    for row in uow.events.recent(_LIMIT, PROPOSED):
        detail = dict(row.detail or {})
        made = decided.get(int(row.id))
        sold = detail.get("sold_out_s")
        out.append(Proposal(
            int(row.id), row.at, uow.schedule.doctor(int(detail.get("doctor", 0))),
            row.session_id, float(sold) if sold is not None else None,
            Decision(made[1]["decision"]) if made else None,
            made[0].at if made else None, made[0].account_id if made else None))
    return out


def decide_proposal(uow: UnitOfWork, deps: Deps, staff: Account, proposal_id: int,
                    decision: Decision) -> Proposal:
    """Accept (move the doctor to the draw policy) or decline one proposal, once."""
    accounts.require_role(staff, Role.OPERATOR)
    found = next((p for p in proposals(uow, deps, staff) if p.id == proposal_id), None)
    if found is None or found.doctor is None:
        raise NotFound("no such proposal", code="proposal_not_found")
    if found.decision is not None:
        raise Conflict("this proposal was decided already", code="proposal_decided")
    now = deps.clock.now()
    uow.events.append(DECIDED, now, account_id=staff.id, session_id=found.session_id,
                      detail={"proposal": proposal_id, "doctor": found.doctor.id,
                              "decision": decision.value})
    if decision is Decision.ACCEPTED:
        catalog.set_release_policy(uow, deps, found.doctor.id or 0, ReleasePolicy.DRAW)
    else:
        uow.commit()
    return dataclasses.replace(found, decision=decision, decided_at=now,
                               decided_by=staff.id)

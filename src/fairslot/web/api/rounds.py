"""Release rounds: the public record of each draw, and a patient's entries and inbox."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, Field

from fairslot.domain.accounts import Account, Role
from fairslot.guard.policy import RouteGroup
from fairslot.guard.service import TOKEN_HEADER
from fairslot.services import notifications, release
from fairslot.web.deps import (
    CallerDep,
    DepsDep,
    GuardedScope,
    UowDep,
    action_token,
    context,
)
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.routing import ReleasingRoute
from fairslot.web.schemas import Strict

__all__ = ["router"]

router = APIRouter(route_class=ReleasingRoute, responses=PROBLEM_RESPONSES)
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
ENTER_ACTION = "enter"


class RoundSessionOut(BaseModel):
    session_id: int
    capacity: int
    starts_at: dt.datetime
    first_choice_entries: int
    cancellation_rate: float | None = Field(
        description="share of this doctor's past bookings that were cancelled or expired")


class RoundEntryOut(BaseModel):
    ref: str
    choices: list[int]
    outcome: str | None
    position: int | None


class RoundOut(BaseModel):
    id: int
    department_id: int
    opens_at: dt.datetime
    closes_at: dt.datetime
    status: str
    kind: str = Field(description="release (a draw session's window), late, leftover (freed "
                      "slots) or opening (a hot fcfs doctor's release); docs/release.md")
    commitment: str = Field(description="SHA-256 of the seed, published when the window opens")
    entries_digest: str | None = Field(
        description="the frozen list's Merkle root, published at the close")
    seed: str | None = Field(description="revealed at the draw")
    beacon: str = Field(description="the drand beacon's signature, once the round is drawn")
    stage: str = Field(description="open, closed, frozen (waiting for the beacon) or drawn")
    beacon_round: int | None = Field(
        description="the drand round whose beacon the draw uses, fixed at the opening")
    beacon_due_at: dt.datetime | None
    beacon_late: bool = Field(
        description="the beacon's time is past and the round still waits for it")
    note: str = Field(description="where the round is, in words (the public page's)")
    entries_count: int
    sessions: list[RoundSessionOut]
    entries: list[RoundEntryOut] = Field(description="pseudonymous, published after the draw")

    @classmethod
    def of(cls, v: release.RoundView) -> RoundOut:
        r = v.round
        return cls(id=r.id, department_id=r.department_id, opens_at=r.opens_at,
                   closes_at=r.closes_at, status=r.status.value, kind=r.kind.value,
                   commitment=r.commitment,
                   entries_digest=r.entries_digest, seed=r.revealed_seed, beacon=r.beacon,
                   stage=v.stage.stage, beacon_round=v.stage.beacon_round,
                   beacon_due_at=v.stage.beacon_due_at, beacon_late=v.stage.beacon_late,
                   note=v.stage.note, entries_count=v.entries_count,
                   sessions=[RoundSessionOut(session_id=s.session.id or 0,
                                             capacity=s.capacity,
                                             starts_at=s.session.starts_at,
                                             first_choice_entries=s.first_choice_entries,
                                             cancellation_rate=s.cancellation_rate)
                             for s in v.sessions],
                   entries=[RoundEntryOut(ref=e.ref, choices=list(e.choices),
                                          outcome=e.outcome.value if e.outcome else None,
                                          position=e.position) for e in v.entries])


class EntryIn(Strict):
    patient_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
    choices: Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]],
                       Field(min_length=1, max_length=3)]


class EntryOut(BaseModel):
    id: int
    round_id: int
    ref: str
    patient_id: int
    choices: list[int]
    withdrawn: bool
    outcome: str | None
    position: int | None
    booking_id: int | None
    waitlist_ahead: int | None
    receipt: dict[str, Any] | None = Field(
        description="the hospital's signed receipt of this entry's latest write; keep it: "
                    "`fairslot draw verify ROUND.json --receipt RECEIPT.json` checks it "
                    "against the frozen list (docs/draw.md, section 6)")

    @classmethod
    def of(cls, v: release.EntryView) -> EntryOut:
        e = v.entry
        return cls(id=e.id, round_id=e.round_id, ref=e.ref, patient_id=e.patient_id,
                   choices=list(e.choices), withdrawn=e.withdrawn,
                   outcome=e.outcome.value if e.outcome else None, position=e.position,
                   booking_id=e.booking_id, waitlist_ahead=v.waitlist_ahead,
                   receipt=v.receipt)


class EntryScreen(BaseModel):
    round: RoundOut
    action_token: str
    token_header: str


class NotificationOut(BaseModel):
    id: int
    at: dt.datetime
    kind: str
    text: str


@router.get("/rounds", tags=["rounds"])
def open_rounds(uow: UowDep, deps: DepsDep) -> list[RoundOut]:
    return [RoundOut.of(v) for v in release.open_rounds(uow, deps)]


@router.get("/rounds/{round_id}", tags=["rounds"])
def get_round(round_id: IdPath, uow: UowDep, deps: DepsDep) -> RoundOut:
    return RoundOut.of(release.round_view(uow, deps, round_id))


@router.get("/rounds/{round_id}/export", tags=["rounds"])
def export_round(round_id: IdPath, uow: UowDep, deps: DepsDep) -> dict[str, Any]:
    """The round document (``fairslot-round/2``, docs/draw.md) at the stage the round has
    reached, for ``fairslot draw verify``: its opening from the start, the frozen list from
    the close, the beacon, results and seed once drawn."""
    return release.export_round_document(uow, deps, round_id)


@router.get("/draw/log", tags=["rounds"])
def draw_log(uow: UowDep, deps: DepsDep,
             from_size: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
             ) -> dict[str, Any]:
    """The public log of rounds with its latest signed checkpoint; with ``from_size``, the
    checkpoint and a consistency proof from that size instead (``fairslot draw audit``)."""
    return release.log_document(uow, deps, from_size)


@router.get("/draw/checkpoint", tags=["rounds"])
def draw_checkpoint(uow: UowDep, deps: DepsDep,
                    size: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
                    ) -> dict[str, Any]:
    """The latest signed checkpoint of the log of rounds (or the one of ``size`` records):
    keep it, and later check that the log still extends it."""
    return release.checkpoint_of(uow, deps, size)


@router.get("/rounds/{round_id}/entry-screen", tags=["rounds"])
async def entry_screen(round_id: IdPath, request: Request) -> EntryScreen:
    """The screen before entering: the round and the single-use action token that
    ``POST /rounds/{id}/entries`` needs (issued only while the window is open)."""
    # As the booking screen: the reads in one thread hop, then the guard's screens limits
    # (a screen that issues no token counts nothing).
    async with GuardedScope(request, RouteGroup.SCREENS) as use:

        def read() -> tuple[Account, release.RoundView]:
            account = use.account(Role.PATIENT)
            release.check_enterable_now(use.uow, use.deps, round_id)
            return account, release.round_view(use.uow, use.deps, round_id)

        account, view = await use.run(read)
        await use.check()
        return EntryScreen(round=RoundOut.of(view), token_header=TOKEN_HEADER,
                           action_token=action_token(request, account, ENTER_ACTION,
                                                     round_id))


@router.post("/rounds/{round_id}/entries", status_code=201, tags=["rounds"])
async def enter(round_id: IdPath, body: EntryIn, request: Request,
                idempotency_key: Annotated[str | None, Header(
                    max_length=80, pattern=r"^[A-Za-z0-9_.:\-]+$")] = None) -> EntryOut:
    """Enter the round (or change your entry) with up to three sessions, best first, with
    the entry screen's action token. A retry with the same ``Idempotency-Key`` returns the
    entry the first request made (and needs no new token), so a lost answer is harmless."""
    # The request's scope opened here rather than as a dependency (a hot path at a
    # round's peak; see ``GuardedScope``).
    async with GuardedScope(request, RouteGroup.ENTERING, need_token=ENTER_ACTION) as use:
        done = None
        if idempotency_key:
            key = idempotency_key

            def again() -> release.EntryView | None:
                # Reads before the entry's transaction, in autocommit (as below).
                use.uow.autocommit()
                return release.entry_by_key(use.uow, use.deps, use.claimed, key)

            done = await use.run(again)
        await use.check(patient_id=str(body.patient_id), target=str(round_id),
                        spend_token=done is None)
        if done is None:

            def use_case() -> release.EntryView:
                if not idempotency_key:
                    # The log-in token's look-up without a BEGIN of its own: the entry opens
                    # its transaction with its first locked statement (PostgreSQL).
                    use.uow.autocommit()
                return release.enter(use.uow, use.deps, use.account(Role.PATIENT), round_id,
                                     body.patient_id, body.choices, use.context(),
                                     idempotency_key=idempotency_key)

            done = await use.run(use_case)
    return EntryOut.of(done)


@router.delete("/entries/{entry_id}", tags=["rounds"])
def withdraw(entry_id: IdPath, request: Request, caller: CallerDep, uow: UowDep,
             deps: DepsDep) -> EntryOut:
    """Withdraw the entry while the window is open; the answer carries the signed receipt
    of the withdrawal."""
    account = caller.account(Role.PATIENT)
    return EntryOut.of(release.withdraw(uow, deps, account, entry_id, context(request)))


@router.get("/entries/{entry_id}/proof", tags=["rounds"])
def entry_proof(entry_id: IdPath, caller: CallerDep, uow: UowDep,
                deps: DepsDep) -> dict[str, Any]:
    """After the close: the proof that the entry's line is in the frozen list under the
    signed root (``fairslot draw verify ROUND.json --proof PROOF.json``)."""
    account = caller.account(Role.PATIENT)
    return release.entry_proof(uow, deps, account, entry_id)


@router.get("/me/entries", tags=["rounds"])
def my_entries(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[EntryOut]:
    account = caller.account()
    return [EntryOut.of(v) for v in release.my_entries(uow, deps, account)]


@router.get("/me/inbox", tags=["account"])
def inbox(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[NotificationOut]:
    account = caller.account()
    return [NotificationOut(id=n.id, at=n.at, kind=n.kind, text=n.text)
            for n in notifications.inbox(uow, deps, account)]

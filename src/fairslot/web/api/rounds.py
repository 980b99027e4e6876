"""Release rounds: the public record of each draw, and a patient's entries and inbox."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from fairslot.domain.accounts import Role
from fairslot.guard.policy import RouteGroup
from fairslot.guard.service import TOKEN_HEADER, Guard
from fairslot.services import notifications, release
from fairslot.web.deps import (
    CallerDep,
    ClaimedAccount,
    DepsDep,
    UowDep,
    action_token,
    authenticated,
    context,
    screen,
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
    entries_digest: str | None
    seed: str | None = Field(description="revealed at the draw")
    beacon: str
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
                   entries_count=v.entries_count,
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

    @classmethod
    def of(cls, v: release.EntryView) -> EntryOut:
        e = v.entry
        return cls(id=e.id, round_id=e.round_id, ref=e.ref, patient_id=e.patient_id,
                   choices=list(e.choices), withdrawn=e.withdrawn,
                   outcome=e.outcome.value if e.outcome else None, position=e.position,
                   booking_id=e.booking_id, waitlist_ahead=v.waitlist_ahead)


class EntryScreen(BaseModel):
    round: RoundOut
    action_token: str
    token_header: str


class NotificationOut(BaseModel):
    id: int
    at: dt.datetime
    kind: str
    text: str


class BeaconIn(Strict):
    beacon: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")]


@router.get("/rounds", tags=["rounds"])
def open_rounds(uow: UowDep, deps: DepsDep) -> list[RoundOut]:
    return [RoundOut.of(v) for v in release.open_rounds(uow, deps)]


@router.get("/rounds/{round_id}", tags=["rounds"])
def get_round(round_id: IdPath, uow: UowDep, deps: DepsDep) -> RoundOut:
    return RoundOut.of(release.round_view(uow, deps, round_id))


@router.get("/rounds/{round_id}/export", tags=["rounds"])
def export_round(round_id: IdPath, uow: UowDep, deps: DepsDep) -> dict[str, Any]:
    """The drawn round as a document for ``fairslot draw verify`` (format in docs/draw.md)."""
    return release.export_round_document(uow, deps, round_id)


@router.get("/rounds/{round_id}/entry-screen", tags=["rounds"])
def entry_screen(round_id: IdPath, request: Request, caller: CallerDep, uow: UowDep,
                 deps: DepsDep) -> EntryScreen:
    account = caller.account(Role.PATIENT)
    view = release.round_view(uow, deps, round_id)
    screen(request, account)
    return EntryScreen(round=RoundOut.of(view), token_header=TOKEN_HEADER,
                       action_token=action_token(request, account, ENTER_ACTION, round_id))


@router.post("/rounds/{round_id}/entries", status_code=201, tags=["rounds"])
async def enter(round_id: IdPath, body: EntryIn, request: Request, claimed: ClaimedAccount,
                uow: UowDep, deps: DepsDep,
                idempotency_key: Annotated[str | None, Header(
                    max_length=80, pattern=r"^[A-Za-z0-9_.:\-]+$")] = None) -> EntryOut:
    """Enter the round (or change your entry) with up to three sessions, best first, with
    the entry screen's action token. A retry with the same ``Idempotency-Key`` returns the
    entry the first request made (and needs no new token), so a lost answer is harmless."""
    done = None
    if idempotency_key:
        done = await run_in_threadpool(release.entry_by_key, uow, deps, claimed,
                                       idempotency_key)
    guard: Guard = request.app.state.guard
    await guard.check(request, RouteGroup.ENTERING, account_id=str(claimed),
                      patient_id=str(body.patient_id), target=str(round_id),
                      need_token=None if done else ENTER_ACTION)
    if done is not None:
        return EntryOut.of(done)

    def use_case() -> release.EntryView:
        account = authenticated(request, uow, Role.PATIENT)
        return release.enter(uow, deps, account, round_id, body.patient_id, body.choices,
                             context(request), idempotency_key=idempotency_key)

    return EntryOut.of(await run_in_threadpool(use_case))


@router.delete("/entries/{entry_id}", status_code=204, tags=["rounds"])
def withdraw(entry_id: IdPath, request: Request, caller: CallerDep, uow: UowDep,
             deps: DepsDep) -> Response:
    account = caller.account(Role.PATIENT)
    release.withdraw(uow, deps, account, entry_id, context(request))
    return Response(status_code=204)


@router.get("/me/entries", tags=["rounds"])
def my_entries(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[EntryOut]:
    account = caller.account()
    return [EntryOut.of(v) for v in release.my_entries(uow, deps, account)]


@router.get("/me/inbox", tags=["account"])
def inbox(caller: CallerDep, uow: UowDep, deps: DepsDep) -> list[NotificationOut]:
    account = caller.account()
    return [NotificationOut(id=n.id, at=n.at, kind=n.kind, text=n.text)
            for n in notifications.inbox(uow, deps, account)]


@router.put("/admin/rounds/{round_id}/beacon", tags=["operator"])
def set_beacon(caller: CallerDep, round_id: IdPath, body: BeaconIn, uow: UowDep,
               deps: DepsDep) -> RoundOut:
    """Enter the round's public beacon value (named as its source when the window
    opened): once, after the window closes; the draw waits for it."""
    caller.account(Role.OPERATOR)
    return RoundOut.of(release.set_beacon(uow, deps, round_id, body.beacon))

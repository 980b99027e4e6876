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
from fairslot.services import release
from fairslot.web.deps import CurrentAccount, PlatformDep, action_token, context, require
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.schemas import Strict

__all__ = ["router"]

router = APIRouter(responses=PROBLEM_RESPONSES)
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
ENTER_ACTION = "enter"
PatientOnly = require(Role.PATIENT)


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
    commitment: str = Field(description="SHA-256 of the seed, published when the window opens")
    entries_digest: str | None
    seed: str | None = Field(description="revealed at the draw")
    beacon: str
    entries_count: int
    sessions: list[RoundSessionOut]
    entries: list[RoundEntryOut] = Field(description="pseudonymous, published after the draw")

    @classmethod
    def of(cls, v: release.RoundView) -> RoundOut:
        return cls(id=v.id, department_id=v.department_id, opens_at=v.opens_at,
                   closes_at=v.closes_at, status=v.status, commitment=v.commitment,
                   entries_digest=v.entries_digest, seed=v.seed, beacon=v.beacon,
                   entries_count=v.entries_count,
                   sessions=[RoundSessionOut(**s) for s in v.sessions],
                   entries=[RoundEntryOut(**e) for e in v.entries])


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
        return cls(**v.__dict__)


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
def open_rounds(platform: PlatformDep) -> list[RoundOut]:
    with platform.uow() as uow:
        ids = [r.id for r in uow.rounds.open_rounds(platform.clock.now())]
    return [RoundOut.of(release.round_view(platform, i)) for i in ids]


@router.get("/rounds/{round_id}", tags=["rounds"])
def get_round(round_id: IdPath, platform: PlatformDep) -> RoundOut:
    return RoundOut.of(release.round_view(platform, round_id))


@router.get("/rounds/{round_id}/export", tags=["rounds"])
def export_round(round_id: IdPath, platform: PlatformDep) -> dict[str, Any]:
    """The drawn round as a document for ``fairslot draw verify`` (format in docs/draw.md)."""
    return release.export_round_document(platform, round_id)


@router.get("/rounds/{round_id}/entry-screen", tags=["rounds"], dependencies=[PatientOnly])
def entry_screen(round_id: IdPath, request: Request, account: CurrentAccount,
                 platform: PlatformDep) -> EntryScreen:
    view = release.round_view(platform, round_id)
    return EntryScreen(round=RoundOut.of(view), token_header=TOKEN_HEADER,
                       action_token=action_token(request, account, ENTER_ACTION, round_id))


@router.post("/rounds/{round_id}/entries", status_code=201, tags=["rounds"],
             dependencies=[PatientOnly])
async def enter(round_id: IdPath, body: EntryIn, request: Request, account: CurrentAccount,
                platform: PlatformDep,
                idempotency_key: Annotated[str | None, Header(
                    max_length=80, pattern=r"^[A-Za-z0-9_.:\-]+$")] = None) -> EntryOut:
    """Enter the round (or change your entry) with up to three sessions, best first, with
    the entry screen's action token. A retry with the same ``Idempotency-Key`` returns the
    entry the first request made (and needs no new token), so a lost answer is harmless."""
    guard: Guard = request.app.state.guard
    done = None
    if idempotency_key:
        done = await run_in_threadpool(release.entry_by_key, platform, account,
                                       idempotency_key)
    await guard.check(request, RouteGroup.ENTERING, account_id=str(account.id),
                      patient_id=str(body.patient_id), target=str(round_id),
                      need_token=None if done else ENTER_ACTION)
    if done is not None:
        return EntryOut.of(done)
    view = await run_in_threadpool(release.enter, platform, account, round_id, body.patient_id,
                                   body.choices, context(request),
                                   idempotency_key=idempotency_key)
    return EntryOut.of(view)


@router.delete("/entries/{entry_id}", status_code=204, tags=["rounds"],
               dependencies=[PatientOnly])
def withdraw(entry_id: IdPath, request: Request, account: CurrentAccount,
             platform: PlatformDep) -> Response:
    release.withdraw(platform, account, entry_id, context(request))
    return Response(status_code=204)


@router.get("/me/entries", tags=["rounds"])
def my_entries(account: CurrentAccount, platform: PlatformDep) -> list[EntryOut]:
    return [EntryOut.of(v) for v in release.my_entries(platform, account)]


@router.get("/me/inbox", tags=["account"])
def inbox(account: CurrentAccount, platform: PlatformDep) -> list[NotificationOut]:
    with platform.uow() as uow:
        rows = uow.rounds.inbox(account.id or 0)
    return [NotificationOut(id=r.id, at=r.at, kind=r.kind, text=r.text) for r in rows]


@router.put("/admin/rounds/{round_id}/beacon", tags=["operator"],
            dependencies=[require(Role.OPERATOR)])
def set_beacon(round_id: IdPath, body: BeaconIn, platform: PlatformDep) -> RoundOut:
    """Enter the round's public beacon value (named as its source when the window
    opened): once, after the window closes; the draw waits for it."""
    return RoundOut.of(release.set_beacon(platform, round_id, body.beacon))

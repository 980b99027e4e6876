"""Draw rounds: a round's page (its sessions, entries so far and the odds, where its draw
is and what it waits for, then the result, the patient's own entries with their outcome,
waitlist rank and withdraw), and entering a family patient with up to three sessions, best
first."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Form, Query, Request
from fastapi.responses import JSONResponse, Response

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError
from fairslot.services import accounts, booking, catalog, release
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import DepsDep, UowDep, context, screen
from fairslot.web.pages.common import (
    PageId,
    Retry,
    Viewer,
    action_token,
    check_csrf,
    done_message,
    guard_check,
    local,
    page_router,
    redirect,
    refused,
    render,
    retry_after,
)

__all__ = ["router"]

router = page_router()


def _entry_page(request: Request, uow: UnitOfWork, deps: Deps, account: Account,
                round_id: int, *, status: int = 200, error: FairslotError | str | None = None,
                retry: Retry | None = None, chosen: list[int] | None = None) -> Response:
    view = release.round_view(uow, deps, round_id)
    doctors = {s.session.doctor_id: catalog.doctor(uow, deps, s.session.doctor_id)
               for s in view.sessions}
    options = [{"session": s.session, "doctor": doctors[s.session.doctor_id],
                "entries": s.first_choice_entries} for s in view.sessions]
    department, _ = catalog.department(uow, deps, view.round.department_id)
    if retry is None:
        release.check_enterable_now(uow, deps, round_id)
        screen(request, account)
    token = retry.token if retry else action_token(request, account, "enter", str(round_id))
    return render(request, "enter.html", status=status, view=view, options=options,
                  department=department, patients=accounts.list_patients(uow, deps, account),
                  token=token, error=error, challenge=retry.challenge if retry else None,
                  chosen=chosen or [], closes=local(deps, view.round.closes_at),
                  max_choices=3)


@router.get("/me/entries/{entry_id}/{kind}.json")
def entry_file(entry_id: PageId, kind: Literal["receipt", "proof"], request: Request,
               who: Viewer, uow: UowDep, deps: DepsDep) -> Response:
    """The patient's signed receipt of their entry, or (after the close) its inclusion
    proof, as a file for ``fairslot draw verify ROUND.json --receipt/--proof``."""
    account = who.logged_in(Role.PATIENT)
    use_case = release.entry_receipt if kind == "receipt" else release.entry_proof
    body = use_case(uow, deps, account, entry_id)
    return JSONResponse(body, headers={
        "Content-Disposition": f'attachment; filename="entry-{entry_id}-{kind}.json"'})


@router.get("/rounds/{round_id}/enter")
def entry_form(round_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
               session_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
               ) -> Response:
    account = who.logged_in(Role.PATIENT)
    return _entry_page(request, uow, deps, account, round_id,
                       chosen=[session_id] if session_id else [])


@router.post("/rounds/{round_id}/enter")
def enter(round_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
          csrf: Annotated[str, Form()] = "",
          patient_id: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
          choice1: Annotated[str, Form(max_length=12)] = "",
          choice2: Annotated[str, Form(max_length=12)] = "",
          choice3: Annotated[str, Form(max_length=12)] = "",
          action_token_: Annotated[str, Form(alias="action_token", max_length=300)] = "",
          altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    # Only plain ASCII digits are a session number ("²" is a digit to str.isdigit).
    choices = [int(c) for c in (choice1.strip(), choice2.strip(), choice3.strip())
               if c.isascii() and c.isdigit() and len(c) <= 10 and 0 < int(c) < 2**31]
    try:
        guard_check(request, "entering", account_id=str(account.id),
                    patient_id=str(patient_id), need_token="enter", target=str(round_id),
                    token=action_token_, pow_payload=altcha or None)
        release.enter(uow, deps, account, round_id, patient_id, choices, context(request))
    except FairslotError as exc:
        refused(uow)
        retry = retry_after(exc, "enter", round_id, action_token_,
                            lambda: action_token(request, account, "enter", str(round_id)))
        return _entry_page(request, uow, deps, account, round_id, status=exc.status,
                           error=exc, retry=retry, chosen=choices)
    return redirect("/me?done=entered#entries")


def _round_page(request: Request, uow: UnitOfWork, deps: Deps, account: Account | None,
                round_id: int, *, status: int = 200,
                error: FairslotError | str | None = None,
                notice: str | None = None) -> Response:
    view = release.round_view(uow, deps, round_id)
    now = deps.clock.now()
    department, hospital = catalog.department(uow, deps, view.round.department_id)
    doctors = {s.session.doctor_id: catalog.doctor(uow, deps, s.session.doctor_id)
               for s in view.sessions}
    sessions = []
    for s in view.sessions:
        # The chance of a first choice: slots over first-choice entries so far (a later
        # choice can still win a slot others leave).
        # Slots freed since a short round opened are at stake too (they go to its waitlist).
        slots = s.capacity + s.joined
        odds = min(1.0, slots / s.first_choice_entries) if s.first_choice_entries else 1.0
        sessions.append({"session": s.session, "doctor": doctors[s.session.doctor_id],
                         "capacity": s.capacity, "joined": s.joined,
                         "entries": s.first_choice_entries,
                         "odds": round(odds * 100), "cancellation_rate": s.cancellation_rate,
                         "starts": local(deps, s.session.starts_at)})
    mine: list[dict[str, Any]] = []
    is_open = view.round.is_open_at(now)
    if account is not None and account.role is Role.PATIENT:
        names = {p.id: p.name for p in accounts.list_patients(uow, deps, account)}
        for e in release.my_entries(uow, deps, account):
            if e.entry.round_id != round_id:
                continue
            won = None
            if e.entry.booking_id:
                won = booking.get_booking(uow, deps, account, e.entry.booking_id)
            mine.append({"view": e, "name": names.get(e.entry.patient_id, ""), "won": won,
                         "can_withdraw": is_open and not e.entry.withdrawn})
    return render(request, "round.html", status=status, view=view, department=department,
                  hospital=hospital, sessions=sessions, mine=mine, is_open=is_open,
                  opens=local(deps, view.round.opens_at),
                  closes=local(deps, view.round.closes_at),
                  drawn_at=local(deps, view.round.drawn_at), error=error, notice=notice,
                  stage=view.stage, due=local(deps, view.stage.beacon_due_at))


@router.get("/rounds/{round_id}")
def round_page(round_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
               done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """Public: the round's sessions and odds, its commitment, the beacon it waits for (and
    whether it is late), its frozen root and, once drawn, its seed and document; a
    patient's own entries."""
    guard_check(request, "browsing")
    return _round_page(request, uow, deps, who.account(), round_id,
                       notice=done_message(done))


@router.post("/entries/{entry_id}/withdraw")
def withdraw(entry_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             csrf: Annotated[str, Form()] = "",
             round_id: Annotated[int, Form(ge=1, le=2**31 - 1)] = 1) -> Response:
    account = who.logged_in(Role.PATIENT)
    check_csrf(request, csrf)
    try:
        release.withdraw(uow, deps, account, entry_id, context(request))
    except FairslotError as exc:
        refused(uow)
        return _round_page(request, uow, deps, account, round_id, status=exc.status,
                           error=exc)
    return redirect(f"/rounds/{round_id}?done=withdrawn")

"""The operator's page of hot-doctor draw proposals: an fcfs doctor whose session sold out
within ``hot_sellout_minutes`` of its release is proposed for the draw policy
(``services.release.hot``); here an operator accepts (the doctor moves to the draw) or
declines each proposal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.domain.accounts import Role
from fairslot.domain.errors import InvalidInput
from fairslot.services.release import hot
from fairslot.web.deps import DepsDep, UowDep
from fairslot.web.i18n import N_
from fairslot.web.pages.common import (
    PageId,
    Viewer,
    check_csrf,
    page_router,
    redirect,
    render,
)

__all__ = ["router"]

router = page_router()

_DONE = {"accepted": N_("Proposal accepted: the doctor's future releases are drawn"),
         "declined": N_("Proposal declined: the doctor keeps its release policy")}


@router.get("/operator/proposals")
def proposals(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
              done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    account = who.logged_in(Role.OPERATOR)
    return render(request, "proposals.html", proposals=hot.proposals(uow, deps, account),
                  zone=deps.settings.zone, minutes=deps.settings.hot_sellout_minutes,
                  notice=_DONE.get(done or ""))


@router.post("/operator/proposals/{proposal_id}")
def decide(proposal_id: PageId, request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
           csrf: Annotated[str, Form()] = "",
           decision: Annotated[str, Form(max_length=20)] = "") -> Response:
    account = who.logged_in(Role.OPERATOR)
    check_csrf(request, csrf)
    try:
        chosen = hot.Decision(decision)
    except ValueError:
        raise InvalidInput("accept or decline the proposal", code="invalid_decision") from None
    hot.decide_proposal(uow, deps, account, proposal_id, chosen)
    return redirect(f"/operator/proposals?done={chosen.value}#proposal-{proposal_id}")

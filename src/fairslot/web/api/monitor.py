"""The monitor's alerts and decisions over the API (investigators and operators): list and
read alerts with their evidence, change an alert's status with who and why, make a decision
by hand and lift one. Decisions reach the guard of every worker within a second."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import InvalidInput, NotFound
from fairslot.monitoring.alerts import STATUSES
from fairslot.monitoring.decisions import lifetime as parse_lifetime
from fairslot.monitoring.live import ServerMonitoring
from fairslot.monitoring.runner import Monitor
from fairslot.monitoring.scenarios import Entity
from fairslot.web.deps import CallerDep
from fairslot.web.problems import PROBLEM_RESPONSES
from fairslot.web.routing import ReleasingRoute
from fairslot.web.schemas import Strict

__all__ = ["hand_monitor", "router"]

router = APIRouter(route_class=ReleasingRoute, responses=PROBLEM_RESPONSES,
                   tags=["monitoring"])
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
WATCHERS = (Role.INVESTIGATOR, Role.OPERATOR)


def hand_monitor(request: Request) -> Monitor:
    monitoring: ServerMonitoring = request.app.state.monitoring
    if monitoring.hand is None:
        raise NotFound("monitoring is not running on this server", code="monitor_off")
    return monitoring.hand


def actor(account: Account) -> str:
    return f"{account.role.value}:{account.username}"


def _entity(text: str) -> Entity:
    try:
        return Entity.parse(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_entity") from None


@router.get("/monitor/alerts")
def alerts(request: Request, caller: CallerDep,
           status: Annotated[str, Query(max_length=80, description=(
               "Comma-separated statuses, or all"))] = "open,acknowledged",
           scenario: Annotated[str | None, Query(max_length=40)] = None,
           entity: Annotated[str | None, Query(max_length=160)] = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Alerts, latest activity first (``status=all`` for every status)."""
    caller.account(*WATCHERS)
    statuses = None if status == "all" else [s.strip() for s in status.split(",")]
    if statuses is not None and not set(statuses) <= set(STATUSES):
        raise InvalidInput(f"unknown status; known: {', '.join(STATUSES)}, all",
                           code="invalid_status")
    store = hand_monitor(request).store
    return [a.as_dict() for a in store.alerts(
        statuses=statuses, scenario=scenario,
        entity=_entity(entity) if entity else None, limit=limit)]


@router.get("/monitor/alerts/{alert_id}")
def alert(alert_id: IdPath, request: Request, caller: CallerDep) -> dict[str, Any]:
    """One alert with its evidence, its status history and the decisions it brought."""
    caller.account(*WATCHERS)
    store = hand_monitor(request).store
    found = store.alert(alert_id)
    if found is None:
        raise NotFound(f"no alert {alert_id}", code="alert_not_found")
    return {**found.as_dict(),
            "history": [{"at": h.at, "status": h.status, "by": h.actor, "reason": h.reason}
                        for h in store.history(alert_id)],
            "decisions": [d.as_dict() for d in store.decisions(alert_id=alert_id)]}


class StatusIn(Strict):
    status: Literal["open", "acknowledged", "resolved", "false_positive"]
    reason: str | None = Field(None, max_length=500)


@router.post("/monitor/alerts/{alert_id}/status")
def set_status(alert_id: IdPath, body: StatusIn, request: Request,
               caller: CallerDep) -> dict[str, Any]:
    """Acknowledge, resolve, mark a false positive (say why) or reopen an alert."""
    account = caller.account(*WATCHERS)
    change = hand_monitor(request).set_status(alert_id, body.status, actor(account),
                                              body.reason)
    return change.alert.as_dict()


@router.get("/monitor/decisions")
def decisions(request: Request, caller: CallerDep,
              active: Annotated[bool, Query()] = True,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Decisions, newest first; by default only those in force now."""
    caller.account(*WATCHERS)
    monitor = hand_monitor(request)
    now = monitor.clock.now()
    return [d.as_dict() for d in monitor.store.decisions(
        active_at=now if active else None, limit=limit)]


class DecisionIn(Strict):
    action: Literal["raise_level", "require_pow", "hold_bookings", "block"]
    entity: str = Field(max_length=160, description="TYPE:ID, e.g. account:1234")
    lifetime: str = Field(max_length=12, description="30m, 6h, 7d")
    level: Literal["elevated", "under_attack"] | None = None
    reason: str = Field(min_length=1, max_length=500)


@router.post("/monitor/decisions", status_code=201)
def decide(body: DecisionIn, request: Request, caller: CallerDep) -> dict[str, Any]:
    """A decision by hand, with a lifetime and a reason; enforced like the monitor's."""
    account = caller.account(*WATCHERS)
    made = hand_monitor(request).decide(body.action, _entity(body.entity),
                                        parse_lifetime(body.lifetime), actor(account),
                                        body.reason, body.level)
    return made.as_dict()


class LiftIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/monitor/decisions/{decision_id}/lift")
def lift(decision_id: IdPath, body: LiftIn, request: Request,
         caller: CallerDep) -> dict[str, Any]:
    """End a decision now, everywhere (within a second), with the reason."""
    account = caller.account(*WATCHERS)
    return hand_monitor(request).lift(decision_id, actor(account), body.reason).as_dict()

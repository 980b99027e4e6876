"""The duty operator's console: live traffic and refusals, bookings and cancellations per
minute, entries per open round, top requesters, open alerts and decisions in force, the
guard's levels (set here), and the review queue of held bookings. Server-rendered; the
figures update through server-sent events (``/operator/console/stream``) and are drawn by
uPlot, served from ``/static/vendor/uplot`` (no CDN)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import InvalidInput
from fairslot.guard.policy import GuardLevel, RouteGroup
from fairslot.guard.service import Guard
from fairslot.monitoring.live import ServerMonitoring
from fairslot.services import audit, catalog, console, review
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web import alert_summaries, i18n
from fairslot.web.deps import DepsDep, UowDep, context, get_platform
from fairslot.web.i18n import N_
from fairslot.web.pages.common import (
    PageId,
    Viewer,
    check_csrf,
    done_message,
    page_router,
    redirect,
    refused,
    render,
)

__all__ = ["router"]

router = page_router()
WATCHERS = (Role.OPERATOR, Role.INVESTIGATOR)
TICK_SECONDS = 2.0

SEVERITY_LABELS = {"low": N_("Low"), "medium": N_("Medium"), "high": N_("High"),
                   "critical": N_("Critical")}
STATUS_LABELS = {"open": N_("Open"), "acknowledged": N_("Acknowledged"),
                 "resolved": N_("Resolved"), "false_positive": N_("False positive")}
ACTION_LABELS = {"raise_level": N_("Raise guard level"), "require_pow": N_("Proof of work"),
                 "hold_bookings": N_("Hold bookings for review"), "block": N_("Block")}
LEVEL_LABELS = {"normal": N_("Normal"), "elevated": N_("Elevated"),
                "under_attack": N_("Under attack")}
# What each monitoring scenario watches for, as its alerts are titled on the page (the code
# stays beside it: docs/monitoring.md explains each by its code).
SCENARIO_TITLES = {
    "rate_ip_prefix": N_("Too many requests from one network"),
    "rate_account": N_("Too many requests from one account"),
    "rate_device": N_("Too many requests from one device"),
    "guard_refusals": N_("Refused by the guard again and again"),
    "fanout_ip": N_("One address acting for many patients"),
    "fanout_device": N_("One device acting for many patients"),
    "fanout_account": N_("One account acting for many patients"),
    "fanout_phone": N_("One phone behind many patients"),
    "payer_fanout": N_("One payer paying for many patients"),
    "fast_action": N_("Actions faster than a person"),
    "release_snipe": N_("Slots taken the moment they open"),
    "early_tokens": N_("Booking screens collected before release"),
    "waitlist_fast_accept": N_("Waitlist offers taken faster than a person"),
    "launder": N_("Slot passed on by cancelling and rebooking"),
    "identity_spread": N_("One patient booking in many departments"),
    "lockstep": N_("Accounts acting in lockstep"),
    "bad_identities": N_("Made-up identities tried"),
    "bad_identity_burst": N_("Burst of made-up identities"),
    "ip_rotation": N_("Address changing request by request"),
    "surge_registrations": N_("Surge of new accounts"),
    "surge_links": N_("Surge of identity links"),
    "blacklisted": N_("Activity of a blacklisted entity"),
}
# What an alert or a decision names (an entity's type; its id is shown as it is).
ENTITY_LABELS = {"account": N_("Account"), "patient": N_("Patient"), "payer": N_("Payer"),
                 "phone": N_("Phone"), "device": N_("Device"), "ip": N_("IP address"),
                 "ip_prefix": N_("Network"), "session": N_("Session"),
                 "route_group": N_("Route group"), "platform": N_("Platform"),
                 "guard_key": N_("Guard key")}
# Why the guard refused a request (the ``reason`` of its ``guard.deny`` events), and the
# booking rules' refusals, as the operator reads them; the code stays beside the label.
REFUSAL_LABELS = {
    "rate_limited": N_("Over a rate limit"),
    "busy": N_("Another request of the same account in progress"),
    "overloaded": N_("Server overloaded, request shed"),
    "shared_state_down": N_("Shared counters (Redis) unavailable"),
    "blocked": N_("Blocked by a decision in force"),
    "login_backoff": N_("Too many failed logins"),
    "challenge_required": N_("Proof of work required"),
    "token_missing": N_("Action started outside its page"),
    "token_invalid": N_("Invalid or mismatched page token"),
    "token_replayed": N_("Page token used twice"),
    "token_too_early": N_("Confirmed faster than a person"),
    "token_expired": N_("Page token expired"),
    "quota_active_bookings": N_("Too many active bookings"),
    "quota_departments_per_week": N_("Too many departments this week"),
    "quota_entries_per_round": N_("Too many entries in the round"),
    "refused": N_("Refused (no reason given)"),
}
# How this server runs the monitor (settings ``monitor_mode``, resolved).
MODE_LABELS = {"embedded": N_("embedded in this server"),
               "stream": N_("separate monitor via Redis stream"),
               "off": N_("off"), "auto": N_("automatic")}
# The words the console's script puts into the live lists, in the visitor's language.
SCRIPT_WORDS = {"none": N_("None"), "booked": N_("booked"), "cancelled": N_("cancelled"),
                "live": N_("live"), "reconnecting": N_("reconnecting"), "time": N_("Time"),
                "rate": N_("req/s"),
                "account": N_("account %(n)s"),
                "entry": N_("round %(round)s · %(department)s · %(entries)s "
                            "entries · closes %(closes)s")}


def _monitoring(request: Request) -> ServerMonitoring:
    monitoring: ServerMonitoring = request.app.state.monitoring
    return monitoring


def _live_counts(request: Request) -> tuple[int, int]:
    hand = _monitoring(request).hand
    if hand is None:
        return 0, 0
    return (len(hand.store.alerts(statuses=["open"], limit=1000)),
            len(hand.store.decisions(active_at=hand.clock.now(), limit=1000)))


def _for_page(uow: UnitOfWork, deps: Deps, figures: dict[str, Any]) -> dict[str, Any]:
    """The figures with each open round's department by name and its closing time in the
    hospital's zone (``department_name``, ``closes``), as the page and its script show them."""
    names = {d.id: d.name for _, departments in catalog.hospitals(uow, deps)
             for d in departments}
    zone = deps.settings.zone
    for entry in figures["entries"]:
        entry["department_name"] = names.get(entry["department"], str(entry["department"]))
        closes = dt.datetime.fromisoformat(entry["closes_at"]).astimezone(zone)
        entry["closes"] = closes.strftime("%m-%d %H:%M")
    return figures


@router.get("/operator/console")
def console_page(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                 done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    account = who.logged_in(*WATCHERS)
    figures = console.figures(uow, deps, account)
    shown = _for_page(uow, deps, figures.as_dict())
    hand = _monitoring(request).hand
    alerts = hand.store.alerts(limit=50) if hand is not None else []
    decisions = hand.store.decisions(active_at=deps.clock.now(), limit=100) \
        if hand is not None else []
    reviewer = account.role in review.REVIEWERS
    queue = review.queue(uow, deps, account) if reviewer else []
    guard: Guard = request.app.state.guard
    levels = anyio.from_thread.run(guard.levels)
    lang = i18n.of_request(request)
    # A monitor's decision names the alert it answers: its reason is shown from that alert,
    # in the page's language (the stored English reason stays for the API and the audit).
    raised_by = {a.id: a for a in alerts}
    for d in decisions:
        if hand is not None and d.alert_id is not None and d.alert_id not in raised_by:
            found = hand.store.alert(d.alert_id)
            if found is not None:
                raised_by[found.id] = found
    return render(request, "console.html", account=account, figures=figures,
                  entries=shown["entries"], figures_json=json.dumps(shown, ensure_ascii=False),
                  alerts=alerts, decisions=decisions, queue=queue, reviewer=reviewer,
                  levels={g.value: lv.value for g, lv in levels.items()},
                  level_choices=[lv.value for lv in GuardLevel],
                  mode=_monitoring(request).mode, mode_labels=MODE_LABELS,
                  refusal_labels=REFUSAL_LABELS, severity_labels=SEVERITY_LABELS,
                  status_labels=STATUS_LABELS, action_labels=ACTION_LABELS,
                  level_labels=LEVEL_LABELS, scenario_titles=SCENARIO_TITLES,
                  entity_labels=ENTITY_LABELS, timezone=deps.settings.timezone,
                  zone=deps.settings.zone, console_words=_script_words(request),
                  alert_summary=lambda alert: alert_summaries.summary(lang, alert),
                  raised_by=raised_by, notice=done_message(done))


def _script_words(request: Request) -> str:
    """The script's words, and each refusal reason's label under ``reason:<code>``."""
    catalogue = i18n.translations(i18n.of_request(request).code)
    words = {key: catalogue.gettext(text) for key, text in SCRIPT_WORDS.items()}
    words.update({f"reason:{code}": catalogue.gettext(text)
                  for code, text in REFUSAL_LABELS.items()})
    return json.dumps(words, ensure_ascii=False)


@router.get("/operator/console/stream")
async def console_stream(
        request: Request, who: Viewer,
        ticks: Annotated[int, Query(ge=1, le=1_000_000)] = 1_000_000) -> Response:
    """Server-sent events: one ``figures`` event every two seconds (``ticks`` of them, for
    tests and scripts), each with the console's figures and the counts of open alerts and
    decisions in force. Each read uses a unit of work of its own, so an open stream holds
    no database connection while it waits."""
    def authenticate() -> Account:
        found = who.logged_in(*WATCHERS)
        # The request's unit of work gives its connection back: held for the stream's
        # life, every open console would keep one of the pool's connections.
        who.uow.release()
        return found

    account = await run_in_threadpool(authenticate)
    platform = get_platform(request)

    def read() -> dict[str, Any]:
        with platform.uow() as uow:
            data = _for_page(uow, platform.deps,
                             console.figures(uow, platform.deps, account).as_dict())
        data["open_alerts"], data["active_decisions"] = _live_counts(request)
        return data

    async def events() -> AsyncIterator[bytes]:
        for n in range(ticks):
            if n:
                await asyncio.sleep(TICK_SECONDS)
            if await request.is_disconnected():
                return
            data = await run_in_threadpool(read)
            yield f"event: figures\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store",
                                      "X-Accel-Buffering": "no"})


@router.post("/operator/console/level")
def set_level(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
              csrf: Annotated[str, Form()] = "",
              group: Annotated[str, Form(max_length=40)] = "",
              level: Annotated[str, Form(max_length=40)] = "") -> Response:
    account = who.logged_in(Role.OPERATOR)
    check_csrf(request, csrf)
    try:
        chosen_group, chosen_level = RouteGroup(group), GuardLevel(level)
    except ValueError:
        raise InvalidInput("unknown route group or level",
                           code="invalid_level") from None
    guard: Guard = request.app.state.guard
    anyio.from_thread.run(guard.set_level, chosen_group, chosen_level)
    audit.guard_level_changed(uow, deps, account, chosen_group.value, chosen_level.value)
    return redirect("/operator/console?done=level_saved#levels")


def _actor(request: Request, who: Viewer) -> tuple[Any, str]:
    account = who.logged_in(*WATCHERS)
    return account, f"{account.role.value}:{account.username}"


@router.post("/operator/console/alerts/{alert_id}/status")
def alert_status(alert_id: PageId, request: Request, who: Viewer,
                 csrf: Annotated[str, Form()] = "",
                 status: Annotated[str, Form(max_length=20)] = "",
                 reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    _, actor = _actor(request, who)
    check_csrf(request, csrf)
    hand = _monitoring(request).hand
    if hand is None:
        raise InvalidInput("monitoring is off", code="monitor_off")
    hand.set_status(alert_id, status, actor, reason.strip() or None)
    return redirect("/operator/console#alerts")


@router.post("/operator/console/decisions/{decision_id}/lift")
def lift_decision(decision_id: PageId, request: Request, who: Viewer,
                  csrf: Annotated[str, Form()] = "",
                  reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    _, actor = _actor(request, who)
    check_csrf(request, csrf)
    hand = _monitoring(request).hand
    if hand is None:
        raise InvalidInput("monitoring is off", code="monitor_off")
    hand.lift(decision_id, actor, reason)
    return redirect("/operator/console#decisions")


@router.post("/operator/console/reviews/{booking_id}")
def review_booking(booking_id: PageId, request: Request, who: Viewer, uow: UowDep,
                   deps: DepsDep, csrf: Annotated[str, Form()] = "",
                   decision: Annotated[str, Form(max_length=10)] = "",
                   reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    account = who.logged_in(Role.INVESTIGATOR)
    check_csrf(request, csrf)
    if decision not in ("approve", "reject"):
        raise InvalidInput("approve or reject", code="invalid_review")
    try:
        review.decide(uow, deps, account, booking_id, decision == "approve", reason,
                      context(request))
    except Exception:
        refused(uow)
        raise
    return redirect("/operator/console#reviews")

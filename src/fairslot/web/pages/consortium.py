"""The blacklist officer's page (``/consortium``): this hospital's part in the list shared
with other hospitals (docs/consortium.md). What this hospital published and its state, the
members' feeds received and their latest entries, the requests here that matched an entry
and what was done, appeals both ways; for the officers (investigators, admins), forms to
publish entries (identifiers typed, a patient of this hospital, or a ring from an
investigation run on the pages), withdraw one, and decide an appeal. Operators read it and
change nothing. Everything goes through ``services.shared_list``, as the CLI does:
role-checked there, audited with who did it. Pseudonymous: no identifier is ever shown, and
what an officer typed is never echoed back."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from fairslot.consortium.model import EntryKind, RingRole, SubjectType
from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError, InvalidInput
from fairslot.services import shared_list
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import DepsDep, UowDep
from fairslot.web.i18n import N_
from fairslot.web.pages.common import (
    Viewer,
    check_csrf,
    done_message,
    local,
    page_router,
    redirect,
    refused,
    render,
)
from fairslot.web.pages.desk import REVIEW_POINTS
from fairslot.web.pages.investigations import investigation_jobs

__all__ = ["router"]

router = page_router()

KIND_NAMES = {"ring_member": N_("Ring member"),
              "no_show_suspension": N_("No-show suspension")}
ROLE_NAMES = {"member": N_("Member"), "payment_hub": N_("Payment hub"), "payer": N_("Payer"),
              "holder": N_("Holder"), "booker": N_("Booker"),
              "held_identity": N_("Held identity"), "booked_identity": N_("Booked identity"),
              "buyer": N_("Buyer")}
SUBJECT_NAMES = {"identity": N_("ID number"), "phone": N_("Phone"),
                 "payer": N_("Payment account"), "device": N_("Device")}
OUTCOME_NAMES = {"refuse": N_("Refused"), "hold": N_("Held for review"),
                 "lower_quota": N_("Lower quotas"), "ignore": N_("Let through")}
APPEAL_NAMES = {"pending": N_("Waiting to reach the hospital"), "delivered": N_("Delivered"),
                "refused": N_("Refused by the issuer"), "received": N_("To decide"),
                "withdrawn": N_("List entry withdrawn"), "upheld": N_("Entry upheld")}
REVIEW_NAMES = {"pending": N_("Waiting for the desk"), "cleared": N_("Cleared here"),
                "refused": N_("Refused here")}
# The audit log's events (the store's ``action`` keys) as the page names them; the key
# stays beside the label, as the API and the exported log spell it.
AUDIT_NAMES = {"key.created": N_("Signing key created"),
               "epoch.added": N_("Pseudonym epoch added"),
               "epoch.retired": N_("Pseudonym epoch retired"),
               "member.added": N_("Member hospital added"),
               "member.removed": N_("Member hospital removed"),
               "policy.set": N_("Outcome policy set"),
               "entry.added": N_("Entry added"),
               "entry.published": N_("Entry published"),
               "entry.withdrawn": N_("List entry withdrawn"),
               "feed.rekeyed": N_("Feed re-keyed"),
               "feed.applied": N_("Member's feed applied"),
               "feed.refused": N_("Member's feed refused"),
               "appeal.updated": N_("Appeal updated"),
               "appeal.out.pending": N_("Appeal sent"),
               "appeal.in.received": N_("Appeal received"),
               "review.opened": N_("Held for the desk's review"),
               "review.pending": N_("Match waiting for the desk"),
               "review.cleared": N_("Match cleared here"),
               "review.refused": N_("Match refused here")}


def _state(entry: Any, now: dt.datetime) -> str:
    if entry.withdrawn:
        return "withdrawn"
    if entry.expires_at <= now:
        return "expired"
    if entry.starts_at > now:
        return "future"
    return "in_force"


STATE_NAMES = {"withdrawn": N_("Withdrawn"), "expired": N_("Expired"),
               "future": N_("Not started"), "in_force": N_("In force")}


def _page(request: Request, uow: UnitOfWork, deps: Deps, account: Account, *,
          status: int = 200, error: FairslotError | str | None = None,
          notice: str | None = None, form: dict[str, str] | None = None) -> Response:
    view = shared_list.officer_view(uow, deps, account)
    now = deps.clock.now()
    matches = []
    for m in view.matches:
        patient = uow.patients.get(m.patient_id) if m.patient_id is not None else None
        matches.append({"m": m, "patient": patient, "at": local(deps, m.at),
                        "reviews": [view.reviews[e] for e in m.entries if e in view.reviews]})
    jobs = [j for j in investigation_jobs(request).all(account) if j.stage == "done"] \
        if view.may_publish else []
    return render(request, "consortium.html", status=status, error=error, notice=notice,
                  view=view, now=now, matches=matches, jobs=jobs, form=form or {},
                  own=[{"o": o, "state": _state(o.entry, now),
                        "created": local(deps, o.created_at),
                        "expires": local(deps, o.entry.expires_at),
                        "withdrawn": local(deps, o.withdrawn_at)}
                       for o in reversed(view.own)],
                  received=[{"e": e, "state": _state(e, now),
                             "expires": local(deps, e.expires_at)} for e in view.received],
                  members=[{"s": s, "head": local(deps, s.member.head_at)}
                           for s in view.members],
                  appeals_in=[a for a in view.appeals if a.direction == "in"],
                  appeals_out=[a for a in view.appeals if a.direction == "out"],
                  audit=[{**row, "when": local(deps, row["at"])} for row in view.audit],
                  local=lambda when: local(deps, when),
                  kinds=KIND_NAMES, roles=ROLE_NAMES, subjects=SUBJECT_NAMES,
                  outcomes=OUTCOME_NAMES, points=REVIEW_POINTS, appeal_names=APPEAL_NAMES,
                  review_names=REVIEW_NAMES, state_names=STATE_NAMES,
                  audit_names=AUDIT_NAMES)


def _officer(who: Viewer) -> Account:
    return who.logged_in(Role.INVESTIGATOR, Role.OPERATOR)


@router.get("/consortium")
def officer_page(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                 done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    return _page(request, uow, deps, _officer(who), notice=done_message(done))


def _choice(enum: Any, value: str, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise InvalidInput(f"choose {what}", code="consortium_bad_choice") from None


def _int(value: str, what: str) -> int:
    # ASCII digits only ("²".isdigit() holds but int() refuses it) and within the
    # database's integer (PostgreSQL refuses a larger patient number with an error).
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) >= 2**31:
        raise InvalidInput(f"{what} is a whole number", code="consortium_bad_number")
    return int(text)


@router.post("/consortium/entries")
def publish_entry(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                  csrf: Annotated[str, Form()] = "",
                  kind: Annotated[str, Form(max_length=30)] = "",
                  role: Annotated[str, Form(max_length=30)] = "",
                  severity: Annotated[str, Form(max_length=3)] = "2",
                  days: Annotated[str, Form(max_length=6)] = "",
                  subject: Annotated[str, Form(max_length=16)] = "",
                  identifier: Annotated[str, Form(max_length=200)] = "",
                  patient: Annotated[str, Form(max_length=12)] = "",
                  source: Annotated[str, Form(max_length=400)] = "") -> Response:
    """Publish one entry: an identifier typed (never shown again) or one of this
    hospital's patients by number, with the evidence summary and a lifetime in days."""
    account = _officer(who)
    check_csrf(request, csrf)
    # What was typed comes back on a refusal, except the identifier.
    form = {"kind": kind, "role": role, "severity": severity, "days": days,
            "subject": subject, "patient": patient, "source": source}
    try:
        chosen = _choice(EntryKind, kind, "the entry's kind")
        ring_role = _choice(RingRole, role, "the ring member's role") if role else None
        identifiers = [(_choice(SubjectType, subject, "what the identifier is"),
                        identifier)] if identifier.strip() else []
        published = shared_list.publish(
            uow, deps, account, kind=chosen, role=ring_role,
            severity=_int(severity, "the severity"), days=_int(days, "the lifetime"),
            source=source, identifiers=identifiers,
            patient_id=_int(patient, "the patient's number") if patient.strip() else None)
    except FairslotError as exc:
        refused(uow)
        return _page(request, uow, deps, account, status=exc.status, error=exc, form=form)
    return redirect(f"/consortium?done=shared_published#entry-{published[0].entry_no}")


@router.post("/consortium/rings")
def publish_ring(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                 csrf: Annotated[str, Form()] = "",
                 job: Annotated[str, Form(max_length=80)] = "",
                 rings: Annotated[str, Form(max_length=200)] = "",
                 days: Annotated[str, Form(max_length=6)] = "365",
                 customers: Annotated[str, Form(max_length=5)] = "") -> Response:
    """Publish the rings an investigator confirmed from an investigation run on the pages
    (its suspects.csv stays on this server)."""
    account = _officer(who)
    check_csrf(request, csrf)
    form = {"job": job, "rings": rings, "ring_days": days}
    try:
        found = investigation_jobs(request).get(account, job) if job else None
        if found is None or found.stage != "done":
            raise InvalidInput("choose a finished investigation", code="consortium_no_job")
        shared_list.publish_ring(uow, deps, account, found.folder / "out",
                                 rings.replace(",", " ").split(),
                                 days=_int(days, "the lifetime"),
                                 include_customers=customers == "yes")
    except FairslotError as exc:
        refused(uow)
        return _page(request, uow, deps, account, status=exc.status, error=exc, form=form)
    return redirect("/consortium?done=shared_ring_published#own")


@router.post("/consortium/withdraw")
def withdraw(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
             csrf: Annotated[str, Form()] = "",
             entry: Annotated[str, Form(max_length=12)] = "",
             reason: Annotated[str, Form(max_length=400)] = "") -> Response:
    """Withdraw one of this hospital's entries, with the reason (kept here)."""
    account = _officer(who)
    check_csrf(request, csrf)
    try:
        shared_list.withdraw(uow, deps, account, _int(entry, "the entry"), reason)
    except FairslotError as exc:
        refused(uow)
        return _page(request, uow, deps, account, status=exc.status, error=exc)
    return redirect("/consortium?done=shared_withdrawn#own")


@router.post("/consortium/appeals")
def decide_appeal(request: Request, who: Viewer, uow: UowDep, deps: DepsDep,
                  csrf: Annotated[str, Form()] = "",
                  ref: Annotated[str, Form(max_length=40)] = "",
                  decision: Annotated[str, Form(max_length=10)] = "",
                  note: Annotated[str, Form(max_length=600)] = "") -> Response:
    """Decide an appeal another hospital forwarded: withdraw the entry or uphold it."""
    account = _officer(who)
    check_csrf(request, csrf)
    try:
        if decision not in ("withdraw", "uphold"):
            raise InvalidInput("choose withdraw or uphold", code="invalid_decision")
        shared_list.decide_appeal(uow, deps, account, ref, withdraw=decision == "withdraw",
                                  note=note)
    except FairslotError as exc:
        refused(uow)
        return _page(request, uow, deps, account, status=exc.status, error=exc)
    return redirect("/consortium?done=appeal_decided#appeals")

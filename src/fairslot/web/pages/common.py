"""What every page shares: templates and their filters, errors shown as pages, the viewer
(from the session cookie), CSRF tokens, the guard from a threaded handler, local times."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import inspect
import math
import pathlib
import secrets
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any
from urllib.parse import quote

import anyio.from_thread
import jinja2
from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from fairslot.clock import ZONE_NAMES
from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import BookingStatus
from fairslot.domain.errors import FairslotError, Forbidden, TooManyRequests, Unauthenticated
from fairslot.domain.identity import mask_id_number, mask_name, mask_phone
from fairslot.domain.schedule import Period
from fairslot.guard.errors import ActionTokenRefused, ChallengeRequired
from fairslot.services import accounts
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web import i18n
from fairslot.web.deps import SESSION_COOKIE, UowDep, get_deps
from fairslot.web.i18n import N_
from fairslot.web.routing import ReleasingRoute

__all__ = [
    "CSRF_COOKIE",
    "DONE_MESSAGES",
    "HERE",
    "PageId",
    "Retry",
    "Viewer",
    "Visitor",
    "action_token",
    "check_csrf",
    "done_message",
    "error_page",
    "explain",
    "guard_check",
    "guard_release",
    "install_errors",
    "local",
    "page_router",
    "redirect",
    "refused",
    "render",
    "retry_after",
    "secure_cookies",
    "today",
]

PageId = Annotated[int, Path(ge=1, le=2**31 - 1)]
"""An id in a page's path: a database integer (a larger one is no page, not a 500)."""

HERE = pathlib.Path(__file__).parent.parent
TEMPLATES_DIR = HERE / "templates"
CSRF_COOKIE = "fs_csrf"

_HEADERS = {
    # Pages carry tokens and personal data: never cached, never framed (a framed booking
    # page is a clickjacking target), scripts and styles from this origin only.
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}

STATUS_LABELS = {
    BookingStatus.HELD: N_("Awaiting payment"),
    BookingStatus.PAID: N_("Paid"),
    BookingStatus.CHECKED_IN: N_("Checked in"),
    BookingStatus.NO_SHOW: N_("No-show"),
    BookingStatus.CANCELLED: N_("Cancelled"),
    BookingStatus.EXPIRED: N_("Expired"),
    BookingStatus.REFUNDED: N_("Refunded"),
}
PERIOD_LABELS = {Period.MORNING: N_("Morning"), Period.AFTERNOON: N_("Afternoon")}
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
ERROR_HEADLINES = {
    400: N_("Request refused"),
    401: N_("Please log in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Could not be done"),
    422: N_("Please check your input"),
    429: N_("Too many requests"),
    502: N_("Payment not completed"),
    503: N_("Busy, please retry"),
}
# Messages after a redirect are chosen by a fixed code, so nothing a link carries is shown.
DONE_MESSAGES = {
    "registered": N_("Welcome: your account is ready"),
    "patient_added": N_("Patient added"),
    "booked": N_("Booked: please pay before the deadline"),
    "booked_review": N_("Booked. The hospital is reviewing this booking; you can pay once it "
                        "is confirmed."),
    "paid": N_("Paid"),
    "appealed": N_("Appeal sent to the hospital that listed the entry"),
    "cancelled": N_("Booking cancelled"),
    "withdrawn": N_("Entry withdrawn"),
    "checked_in": N_("Checked in"),
    "desk_booked": N_("Booked and paid at the desk"),
    "desk_paid": N_("Paid at the desk"),
    "desk_entered": N_("Entered in the draw at the desk"),
    "desk_cancelled": N_("Cancelled at the desk"),
    "desk_claim_pending": N_("Claim recorded: it takes effect when a second member of staff "
                             "approves it"),
    "claim_approved": N_("Claim approved: the identity is the person's own account's now"),
    "claim_rejected": N_("Claim rejected: nothing changed hands"),
    "review_decided": N_("Decision recorded"),
    "shared_published": N_("Published on the shared list: the other hospitals apply it "
                           "from their next sync"),
    "shared_ring_published": N_("The ring's identifiers are published on the shared list"),
    "shared_withdrawn": N_("Entry withdrawn: the other hospitals stop applying it at their "
                           "next sync"),
    "appeal_decided": N_("Appeal decided; the hospital that forwarded it learns the outcome "
                         "through the feed"),
    "hospital_added": N_("Hospital added"),
    "department_added": N_("Department added"),
    "doctor_added": N_("Doctor added"),
    "sessions_scheduled": N_("Sessions scheduled, with their numbered slots"),
    "sessions_existed": N_("Those sessions already existed: nothing changed"),
    "entered": N_("Entered: the draw is at the release time"),
    "policy_saved": N_("Release policy saved"),
    "level_saved": N_("Guard level saved"),
    "user_saved": N_("Account saved"),
}


# What a page says for an error whose own (English) text the catalogue does not have, by
# its code; placeholders are filled from the error's extra values.
ERROR_TEXTS = {
    "number_out_of_range": N_("A number you typed is out of range: check it and try again."),
    "quota_active_bookings": N_("This patient already holds %(used)s of %(limit)s active "
                                "bookings: cancel or attend one first."),
    "quota_departments_per_week": N_("This patient has visits with %(used)s departments this "
                                     "week (limit %(limit)s)."),
    "quota_entries_per_round": N_("Entries per round reached: %(used)s of %(limit)s; change "
                                  "an entry instead."),
    "quota_account_patients": N_("This account booked for %(used)s different patients "
                                 "recently (limit %(limit)s)."),
    "quota_phone_patients": N_("This phone booked for %(used)s different patients recently "
                               "(limit %(limit)s)."),
    "quota_payer_patients": N_("This payer paid for %(used)s different patients recently "
                               "(limit %(limit)s)."),
    "quota_patients_per_account": N_("An account manages at most %(limit)s patients."),
    "quota_accounts_per_phone": N_("This phone number already backs the most accounts it "
                                   "may."),
    "credit_suspended": N_("Booking and entering draws are suspended until %(until)s "
                           "(missed visits or late cancellations)."),
    "consortium_suspended": N_("Booking and entering draws are suspended until %(until)s "
                               "by another hospital of the consortium (missed "
                               "appointments); you can appeal from your account page."),
    "consortium_held": N_("This request waits for a member of staff to review an entry "
                          "another hospital put on the shared list; the registration desk "
                          "can tell you more, and you can appeal from your account page."),
    "consortium_refused": N_("Refused: an entry another hospital put on the shared list "
                             "names this request; you can appeal from your account page."),
    "consortium_off": N_("This hospital is not in a consortium of hospitals sharing a list."),
    "consortium_no_key": N_("This hospital has no consortium key yet: the operator runs "
                            "`fairslot consortium keys` first."),
    "consortium_no_epoch": N_("This hospital holds no consortium epoch key yet: the operator "
                              "adds it with `fairslot consortium epoch add`."),
    "consortium_no_evidence": N_("Summarise the evidence the entry rests on (1 to 300 "
                                 "characters; it stays at this hospital)."),
    "consortium_bad_days": N_("An entry lasts 1 to 3650 days."),
    "consortium_bad_severity": N_("The severity is 1, 2 or 3."),
    "consortium_bad_role": N_("A role goes with a ring member's entry only."),
    "consortium_bad_choice": N_("Please choose from the list."),
    "consortium_bad_number": N_("Please give a whole number."),
    "consortium_no_identifier": N_("Name an identifier or one of this hospital's patients."),
    "consortium_bad_identifier": N_("The identifier holds a control character; please type "
                                    "it again."),
    "consortium_no_reason": N_("Please give the reasons."),
    "consortium_no_job": N_("Choose a finished investigation."),
    "consortium_no_ring": N_("Name the rings the investigator confirmed (e.g. R3)."),
    "consortium_empty_ring": N_("Nothing to publish from these rings."),
    "consortium_unresolved": N_("%(count)s identifiers of the investigation are not this "
                                "hospital's pseudonyms; nothing was published."),
    "consortium_no_suspects": N_("This investigation has no suspects list."),
    "consortium_no_entry": N_("There is no such entry."),
    "consortium_already_withdrawn": N_("This entry was already withdrawn."),
    "consortium_no_appeal": N_("There is no such appeal."),
    "consortium_appeal_decided": N_("This appeal was already decided."),
    "patient_not_found": N_("There is no such patient."),
    "forbidden_role": N_("This needs another staff role."),
    "slot_unavailable": N_("No free slot is left in this session."),
    "session_started": N_("This session has started."),
    "under_review": N_("The hospital is reviewing this booking; it can be paid once it is "
                       "confirmed."),
    "illegal_transition": N_("This booking cannot be changed that way any more; please "
                             "reload the page to see its status."),
    "payment_failed": N_("The payment did not go through; please try again."),
    "code_wrong": N_("Wrong code (%(tries_left)s tries left)."),
    "codes_rate_limited": N_("Too many codes were sent; please try again later."),
    # Both a short password and a guessable one (a common word, the user's own phone).
    "weak_password": N_("This password is too short or too easy to guess; please choose a "
                        "longer one, for example a few unrelated words."),
    "identity_checks_limited": N_("Too many failed real-name checks; please try again "
                                  "later or bring the ID card to the registration desk."),
    "invalid_choices": N_("Choose different sessions, each once, best first."),
    "cancel_cutoff_passed": N_("It is too close to the visit to cancel online; please "
                               "contact the hospital."),
    "payment_deadline_passed": N_("The payment deadline has passed."),
    "check_in_not_open": N_("Check-in is not open yet for this session."),
    "session_over": N_("This session is over."),
    "rate_limited": N_("Too many requests; please wait a moment and try again."),
    "login_backoff": N_("Too many failed log-ins; please wait a moment and try again."),
    "blocked": N_("Access from here is suspended for now."),
    "overloaded": N_("The service is busy; please try again in a few seconds."),
    "challenge_required": N_("Checking this device…"),
    "booking_in_progress": N_("Another booking of yours is in progress; please wait."),
    "token_missing": N_("This action must be started from its page; please go back and "
                        "retry."),
    "token_invalid": N_("This page has expired or is not for this action; please reload "
                        "it."),
    "token_replayed": N_("This page was already used; please reload it to try again."),
    "token_too_early": N_("Please take a moment to check the details, then confirm again."),
    "token_expired": N_("This page has expired; please reload it."),
    "invalid_id_number": N_("Please check the ID number."),
    "invalid_name": N_("Please check the name."),
    "invalid_phone": N_("Please check the phone number."),
    "desk_quota": N_("This desk account made %(used)s bookings and entries this shift "
                     "(limit %(limit)s)."),
    "desk_rate": N_("At most %(limit)s desk bookings and entries a minute; please wait a "
                    "moment."),
    "desk_typed_quota": N_("This desk account typed %(used)s ID numbers this shift (limit "
                           "%(limit)s); read the card."),
}


# The guard's refusals as a patient reads them: what happened, what to do and when to try
# again (``%(when)s``, from the refusal's ``Retry-After``), with a headline of their own.
REFUSAL_HEADLINES = {
    "rate_limited": N_("Too many requests"),
    "login_backoff": N_("Too many failed log-ins"),
    "booking_in_progress": N_("A booking is still being processed"),
    "blocked": N_("Access suspended"),
    "overloaded": N_("The service is busy"),
    "token_missing": N_("Please start again from the page"),
    "token_invalid": N_("This page has expired"),
    "token_replayed": N_("Already sent"),
    "token_expired": N_("This page has expired"),
}
REFUSAL_TEXTS = {
    "rate_limited": N_("Too many requests came from this connection or account in a short "
                       "time, so this one was not carried out. Please try again %(when)s."),
    "login_backoff": N_("There were too many failed log-ins for this account. Please check "
                        "the user name and password and try again %(when)s."),
    "booking_in_progress": N_("Your previous booking or payment is still being processed. "
                              "Look at My account first: it may have gone through. If not, "
                              "try again %(when)s."),
    "blocked": N_("Access from this connection, device or account is suspended for now, so "
                  "nothing was done. You can try again %(when)s. If you think this is a "
                  "mistake, please contact the hospital's help desk with the error code "
                  "below."),
    "overloaded": N_("Many people are using the service right now, so this request was not "
                     "carried out. Please try again %(when)s."),
    # An action token is refused on a form's page, which comes back with a fresh one.
    "token_replayed": N_("This form was already sent once. Look at My account first: what "
                         "it asked for may already be done. If not, confirm again below."),
    "token_expired": N_("This page was open too long and has expired, so nothing was done. "
                        "Please check the details and confirm again below."),
    "token_invalid": N_("This form does not belong to this page or has expired, so nothing "
                        "was done. Please check the details and confirm again below."),
}
# When to try again, from the seconds to wait.
WHEN_SECONDS = N_("in %(n)s seconds")
WHEN_MINUTES = N_("in about %(n)s minutes")
WHEN_LATER = N_("after %(time)s (%(zone)s)")
MOMENT = N_("%(time)s %(zone)s")
"""A moment in an error's words, with the zone's name (``ZONE_NAMES``)."""


def refusal_wait(exc: FairslotError) -> int | None:
    """The seconds a guard refusal asks to wait (its ``Retry-After``), if it says."""
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if isinstance(headers, dict) else None
    if value is None:
        value = getattr(exc, "retry_after", None)
    try:
        return max(1, int(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def when_words(lang: i18n.Language, seconds: int, now: dt.datetime | None,
               zone: dt.tzinfo | None, zone_id: str | None) -> Markup:
    """``in 40 seconds``, ``in about 5 minutes`` or ``after 11-29 10:00 (Beijing time)``."""
    if seconds <= 90:
        return i18n.translate(lang, WHEN_SECONDS, n=seconds)
    if seconds <= 90 * 60 or now is None or zone is None:
        return i18n.translate(lang, WHEN_MINUTES, n=math.ceil(seconds / 60))
    until = (now + dt.timedelta(seconds=seconds)).astimezone(zone)
    label = ZONE_NAMES.get(zone_id or "")
    return i18n.translate(lang, WHEN_LATER, time=until.strftime("%m-%d %H:%M"),
                          zone=i18n.translate(lang, label) if label else zone_id or "")


def _shown(value: Any, zone: dt.tzinfo | None,
           named: Callable[[str], str] = str) -> str:
    """An error's value as a page shows it: a moment (an ISO timestamp, as the errors carry
    them) in the hospital's time zone to the minute, with the zone's name (``named``),
    anything else as it is."""
    when = value if isinstance(value, dt.datetime) else None
    if when is None and isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            when = None
    if when is None or when.tzinfo is None:
        return str(value)
    return named(when.astimezone(zone).strftime("%Y-%m-%d %H:%M")) if zone else str(value)


def explain(lang: i18n.Language, error: FairslotError | str,
            zone: dt.tzinfo | None = None, now: dt.datetime | None = None,
            zone_id: str | None = None) -> Markup:
    """An error (or a notice) in the visitor's language: the catalogue's words for its own
    text, else the page's words for its code, else its own text marked as English. Moments
    in the error's values are shown in ``zone`` (the hospital's). A guard refusal that says
    how long to wait is worded with what to do and when (``REFUSAL_TEXTS``)."""
    if isinstance(error, FairslotError) and error.code in REFUSAL_TEXTS:
        refusal = REFUSAL_TEXTS[error.code]
        wait = refusal_wait(error)
        if "%(when)s" not in refusal:
            return i18n.translate(lang, refusal)
        if wait is not None:
            return i18n.translate(lang, refusal,
                                  when=when_words(lang, wait, now, zone, zone_id))
    text = error if isinstance(error, str) else error.detail
    coded = isinstance(error, FairslotError) and error.code in ERROR_TEXTS
    # The English catalogue knows every English text, but a service's own words carry its
    # moments as ISO stamps in UTC: those errors take the page's words, as in Chinese.
    timed = isinstance(error, FairslotError) and coded and any(
        _shown(v, zone) != str(v) for v in error.extra.values())
    if i18n.known(lang, text) and not timed:
        return i18n.translate(lang, text)
    if isinstance(error, FairslotError) and coded:
        label = ZONE_NAMES.get(zone_id or "")

        def named(time: str) -> str:
            if not label:
                return time
            return i18n.translate(lang, MOMENT, time=time, zone=i18n.translate(lang, label))

        values = {k: _shown(v, zone, named) for k, v in error.extra.items()}
        if isinstance(error, TooManyRequests):
            values.setdefault("retry_after", str(error.retry_after))
        try:
            return i18n.translate(lang, ERROR_TEXTS[error.code], **values)
        except (KeyError, ValueError):
            pass
    return Markup('<span lang="en">%s</span>') % text


# -- templates ----------------------------------------------------------------------------

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,  # every value is escaped unless a template says otherwise (none does)
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
# New-style gettext (placeholders filled and escaped by the call); the callables
# themselves come with each render, in the visitor's language.
_env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
templates = Jinja2Templates(env=_env)


def _yuan(cents: int) -> str:
    return f"¥{cents // 100}.{cents % 100:02d}"


def _label(table: Mapping[Any, str]) -> Callable[..., str]:
    @jinja2.pass_context
    def translate(context: Any, value: Any) -> str:
        text = table.get(value)
        return str(context["gettext"](text)) if text else str(value)

    return translate


@jinja2.pass_context
def _weekday(context: Any, value: dt.date) -> str:
    return str(context["gettext"](WEEKDAYS[value.weekday()]))



# The guard's route groups, as the guard pages name them.
GROUP_LABELS = {"browsing": N_("Browsing"), "search": N_("Search"), "login": N_("Log-in"),
                "registration": N_("Registration"), "screens": N_("Action pages"),
                "entering": N_("Draw entries"),
                "booking": N_("Booking and cancelling"), "payment": N_("Paying")}

_env.filters.update(yuan=_yuan, period=_label(PERIOD_LABELS), weekday=_weekday,
                    zone_name=_label(ZONE_NAMES), group_name=_label(GROUP_LABELS),
                    mask_name=mask_name, mask_id=mask_id_number, mask_phone=mask_phone,
                    status=_label(STATUS_LABELS))


_env.globals.update(
    role_names={"patient": N_("Patient"), "registration": N_("Registration desk"),
                "operator": N_("Operator"), "investigator": N_("Investigator"),
                "admin": N_("Administrator")},
    stage_names={"queued": N_("Queued"), "unpacking": N_("Unpacking the export"),
                 "reading": N_("Reading the records"),
                 "investigating": N_("Looking for rings"),
                 "writing": N_("Writing the report"), "done": N_("Done"),
                 "failed": N_("Failed")},
    outcome_names={"won": N_("Won"), "waitlist": N_("Waitlist"),
                   "offered": N_("Offered a slot"), "passed": N_("Left the waitlist"),
                   "excluded": N_("Not in the draw")},
)


def done_message(code: str | None) -> str | None:
    """The message for a ``?done=`` code (English; translated when shown)."""
    return DONE_MESSAGES.get(code or "")


# -- errors become pages --------------------------------------------------------------------


class PageRoute(ReleasingRoute):
    """Turns the platform's typed errors into pages: a missing log-in becomes a redirect to
    the log-in page, anything else a page with the error's words and status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except Unauthenticated:
                target = request.url.path
                if request.method == "GET" and request.url.query:
                    target += "?" + request.url.query
                return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            except FairslotError as exc:
                return error_page(request, exc.status, exc, exc.code)

        return handler


def page_router() -> APIRouter:
    """A router whose routes show errors as pages (one per audience module)."""
    return APIRouter(include_in_schema=False, route_class=PageRoute)


def error_page(request: Request, status: int, detail: str | FairslotError,
               code: str) -> Response:
    headline = REFUSAL_HEADLINES.get(code) or ERROR_HEADLINES.get(
        status, N_("Something went wrong"))
    # A refused page view can simply be asked for again (a refused form is sent again from
    # its own page, with a fresh token). Never ``//host``: the link stays on this site.
    again = "/" + request.url.path.lstrip("/\\") + (
        f"?{request.url.query}" if request.url.query else "") \
        if code in REFUSAL_HEADLINES and request.method == "GET" else None
    response = render(request, "error.html", status=status, headline=headline,
                      detail=detail, code=code, again=again)
    for name in ("Retry-After", "Cache-Control"):
        value = (getattr(detail, "headers", None) or {}).get(name)
        if value:
            response.headers[name] = value
    return response


def _wants_page(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or path in ("/healthz", "/readyz"):
        return False
    return "text/html" in request.headers.get("accept", "")


def install_errors(app: FastAPI) -> None:
    """A browser asking for an unknown page gets a friendly page, while API clients keep
    their problem+json. Call after the problem+json handlers are installed."""
    api_http = app.exception_handlers[StarletteHTTPException]
    api_invalid = app.exception_handlers[RequestValidationError]

    async def delegate(handler: Any, request: Request, exc: Exception) -> Response:
        result = handler(request, exc)
        response: Response = await result if inspect.isawaitable(result) else result
        return response

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _wants_page(request) and exc.status_code in (404, 405):
            return error_page(request, 404, N_("There is no such page."),
                              "not_found")
        return await delegate(api_http, request, exc)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        # Page routes take only integer ids in their paths: a malformed one is no page.
        if _wants_page(request):
            return error_page(request, 404, N_("There is no such page."),
                              "not_found")
        return await delegate(api_invalid, request, exc)

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)


# -- who is asking, CSRF -------------------------------------------------------------------


class Visitor:
    """Who is looking at the page, from the ``fs_session`` cookie only (pages never read a
    bearer header, so a page's cookie is all a form's CSRF token has to be bound to). Found
    out when the page asks, in its own thread and unit of work (see ``web.deps.Caller``)."""

    _unknown = object()

    def __init__(self, request: Request, uow: UnitOfWork) -> None:
        self._request = request
        self.uow = uow
        self._account: Any = self._unknown

    def account(self) -> Account | None:
        if self._account is self._unknown and self.uow.closed:
            # An error page rendered after the request's unit of work closed (a malformed
            # path): shown as to a visitor, without opening a transaction nobody would end.
            return None
        if self._account is self._unknown:
            token = self._request.cookies.get(SESSION_COOKIE)
            found = None
            if token:
                try:
                    found = accounts.authenticate(self.uow, get_deps(self._request), token)
                except Unauthenticated:
                    found = None
            self._account = found
            self._request.state.viewer = found
            if found is not None:
                self._request.state.account_id = found.id
        account: Account | None = self._account
        return account

    def logged_in(self, *roles: Role) -> Account:
        """The account, or a redirect to the log-in page; with ``roles``, one of them."""
        account = self.account()
        if account is None:
            raise Unauthenticated("log in first")
        if roles and account.role not in roles and account.role is not Role.ADMIN:
            if roles == (Role.PATIENT,):
                # A staff account on a patient's page (a doctor's Book button, say): the
                # desk books for a patient at the registration desk instead.
                raise Forbidden(N_("This page is for patients' own accounts. Staff book "
                                   "for a patient at the registration desk."),
                                code="forbidden_role")
            raise Forbidden(N_("This page is for staff with another role."),
                            code="forbidden_role")
        return account


async def visitor(request: Request, uow: UowDep) -> Visitor:
    found = Visitor(request, uow)
    request.state.visitor = found
    return found


Viewer = Annotated[Visitor, Depends(visitor)]


def _csrf_binding(request: Request) -> str | None:
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return "s:" + session
    anon = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    return "a:" + anon if anon else None


def csrf_token(request: Request) -> str:
    """The form token of this browser session: an HMAC of the session cookie (or, before
    log-in, of a random ``fs_csrf`` cookie). Another site can make the browser send the
    cookie but cannot read a page to learn the token."""
    binding = _csrf_binding(request)
    if binding is None:
        request.state.new_csrf = secrets.token_urlsafe(24)
        binding = "a:" + request.state.new_csrf
    key = get_deps(request).keyring.derive("pages-csrf/v1")
    return hmac.new(key, binding.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, submitted: str) -> None:
    """A form's post needs the page's CSRF token, and when the browser names the page's
    origin (``Origin``, sent with every cross-site post), this site's own."""
    binding = _csrf_binding(request)
    if not _same_origin(request) or binding is None or not hmac.compare_digest(
            csrf_token(request).encode(), submitted.encode()):  # bytes: any text
        raise Forbidden(N_("This form has expired; reload the page and try again."),
                        code="csrf_failed")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by older browsers and non-browser clients
        return True
    host = request.headers.get("host", "")
    return origin.lower() in (f"http://{host}".lower(), f"https://{host}".lower())


def secure_cookies(request: Request) -> bool:
    setting = get_deps(request).settings.session_cookie_secure
    return request.url.scheme == "https" if setting is None else setting


def render(request: Request, name: str, *, status: int = 200, **values: Any) -> Response:
    if "viewer" not in values:
        found = getattr(request.state, "visitor", None)
        values["viewer"] = found.account() if found is not None else None
    lang = i18n.of_request(request)
    values.update(i18n.template_callables(lang))
    values["lang"] = lang
    values["languages"] = i18n.LANGUAGES.values()
    values["here"] = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    values["csrf"] = csrf_token(request)
    values.setdefault("error", None)
    values.setdefault("notice", None)
    if isinstance(values["error"], ChallengeRequired) and (values.get("challenge")
                                                           or values.get("retry")):
        # Not an error: the challenged form says "Checking this device…" and sends itself
        # again (a page without such a form keeps the words as its error).
        values["error"] = None
    # Errors and notices are English texts from the services and the pages: shown in the
    # visitor's language when the catalogue has them, otherwise as they are, marked English.
    # A guard refusal shown on a form is headed by what happened, not "Please check:".
    refused_by = getattr(values["error"], "code", None)
    values["error_headline"] = REFUSAL_HEADLINES.get(refused_by or "")
    platform = getattr(request.app.state, "platform", None)
    zone = platform.deps.settings.zone if platform is not None else None
    zone_id = platform.deps.settings.timezone if platform is not None else None
    now = platform.deps.clock.now() if platform is not None else None
    for key in ("error", "notice", "detail"):
        if values.get(key):
            values[key] = explain(lang, values[key], zone, now, zone_id)
    response = templates.TemplateResponse(request, name, values, status_code=status)
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="lax",
                            secure=secure_cookies(request))
    response.headers.update(_HEADERS)
    response.headers["Content-Language"] = lang.tag
    return response


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def refused(uow: UnitOfWork) -> None:
    """After a use case refused: undo what it did, so the page shown next reads a clean
    state (and holds no lock)."""
    uow.rollback()


# -- the guard, when the application has one -------------------------------------------------


def _guard(request: Request) -> Any:
    return getattr(request.app.state, "guard", None)


def guard_check(request: Request, group: str, **keys: Any) -> Any:
    """Run the guard from a (threaded) page handler; None when the app has no guard."""
    guard = _guard(request)
    if guard is None:
        return None
    return anyio.from_thread.run(functools.partial(guard.check, request, group, **keys))


def guard_release(request: Request, passed: Any) -> None:
    guard = _guard(request)
    if guard is not None and passed is not None:
        anyio.from_thread.run(guard.release, passed)


def action_token(request: Request, account: Account, action: str, target: str) -> str:
    guard = _guard(request)
    return guard.issue_token(str(account.id), action, target) if guard is not None else ""


@dataclasses.dataclass(frozen=True)
class Retry:
    """A form to show again after a refusal: its action, the token to keep and, when the
    guard asked for one, the proof-of-work challenge the browser solves before resending."""

    action: str
    target: int
    token: str
    challenge: dict[str, Any] | None = None
    payer: str = ""


def retry_after(exc: FairslotError, action: str, target: int, token: str,
                fresh: Callable[[], str], payer: str = "") -> Retry:
    if isinstance(exc, ChallengeRequired):
        # The challenge is checked before the token, so the token is still unspent.
        return Retry(action, target, token, exc.extra.get("challenge"), payer)
    if isinstance(exc, ActionTokenRefused) and exc.code == "token_too_early":
        return Retry(action, target, token, None, payer)
    return Retry(action, target, fresh(), None, payer)


# -- time -----------------------------------------------------------------------------------


def today(deps: Deps) -> dt.date:
    return deps.clock.now().astimezone(deps.settings.zone).date()


def local(deps: Deps, when: dt.datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(deps.settings.zone).strftime("%Y-%m-%d %H:%M")

"""Server-rendered pages for patients, the registration desk and operators (docs/pages.md).

Plain HTML forms over the same services as the JSON API. Every POST carries a per-session
CSRF token; book, pay and cancel also carry the guard's single-use action token, issued by
the page that leads to the action (bound to account, action and target) and spent by the
POST. When the guard asks for proof of work, the page comes back with the ALTCHA challenge
on its form and ``/static/altcha-solver.js`` solves it and submits again.

Errors a user can cause are shown on the page in words, never as a traceback or JSON.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import inspect
import pathlib
import secrets
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any
from urllib.parse import quote

import anyio.from_thread
import jinja2
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import BookingStatus
from fairslot.domain.errors import FairslotError, Forbidden, InvalidInput, NotFound, Unauthenticated
from fairslot.domain.identity import mask_id_number, mask_name, mask_phone
from fairslot.domain.schedule import Period, Session
from fairslot.guard.errors import ActionTokenRefused, ChallengeRequired
from fairslot.services import accounts, booking, catalog, release
from fairslot.web.deps import SESSION_COOKIE, context, get_platform

__all__ = ["install_pages", "router"]

HERE = pathlib.Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
CSRF_COOKIE = "fs_csrf"
DAYS_AHEAD = 15

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
    BookingStatus.HELD: "待支付 Awaiting payment",
    BookingStatus.PAID: "已支付 Paid",
    BookingStatus.CHECKED_IN: "已取号 Checked in",
    BookingStatus.NO_SHOW: "爽约 No-show",
    BookingStatus.CANCELLED: "已取消 Cancelled",
    BookingStatus.EXPIRED: "已过期 Expired",
    BookingStatus.REFUNDED: "已退款 Refunded",
}
PERIOD_LABELS = {Period.MORNING: "上午 Morning", Period.AFTERNOON: "下午 Afternoon"}
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
ERROR_HEADLINES = {
    400: "请求有误 Request refused",
    401: "请先登录 Please log in",
    403: "无法继续 Not allowed",
    404: "未找到 Not found",
    409: "无法完成 Could not be done",
    422: "请检查输入 Please check your input",
    429: "操作太频繁 Too many requests",
    503: "系统繁忙 Busy, please retry",
}
# Messages after a redirect are chosen by a fixed code, so nothing a link carries is shown.
DONE_MESSAGES = {
    "registered": "注册成功，欢迎 Welcome: your account is ready",
    "patient_added": "已添加就诊人 Patient added",
    "booked": "预约成功，请在支付期限前支付 Booked: please pay before the deadline",
    "paid": "支付成功 Paid",
    "cancelled": "已取消预约 Booking cancelled",
    "checked_in": "取号成功 Checked in",
    "desk_booked": "现场挂号成功（已支付） Booked and paid at the desk",
    "desk_paid": "已收费 Paid at the desk",
    "entered": "已登记抽签，结果将在放号时公布 Entered: the draw is at the release time",
}


# -- templates ----------------------------------------------------------------------------

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,  # every value is escaped unless a template says otherwise (none does)
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=_env)


def _yuan(cents: int) -> str:
    return f"¥{cents // 100}.{cents % 100:02d}"


def _period(value: Period) -> str:
    return PERIOD_LABELS.get(value, str(value))


def _weekday(value: dt.date) -> str:
    return WEEKDAYS[value.weekday()]


_env.filters.update(yuan=_yuan, period=_period, weekday=_weekday, mask_name=mask_name,
                    mask_id=mask_id_number, mask_phone=mask_phone,
                    status=lambda s: STATUS_LABELS.get(s, str(s)))


# -- errors become pages --------------------------------------------------------------------


class PageRoute(APIRoute):
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
                return error_page(request, exc.status, exc.detail, exc.code)

        return handler


router = APIRouter(include_in_schema=False, route_class=PageRoute)


def error_page(request: Request, status: int, detail: str, code: str) -> Response:
    return render(request, "error.html", status=status,
                  headline=ERROR_HEADLINES.get(status, "出错了 Something went wrong"),
                  detail=detail, code=code)


def _wants_page(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/api/") or path in ("/healthz", "/readyz"):
        return False
    return "text/html" in request.headers.get("accept", "")


def install_pages(app: FastAPI) -> None:
    """Add the pages and ``/static`` to ``app``. Call after the problem+json handlers are
    installed: a browser asking for an unknown page gets a friendly page, while API clients
    keep their problem+json."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    api_http = app.exception_handlers[StarletteHTTPException]
    api_invalid = app.exception_handlers[RequestValidationError]

    async def delegate(handler: Any, request: Request, exc: Exception) -> Response:
        result = handler(request, exc)
        response: Response = await result if inspect.isawaitable(result) else result
        return response

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _wants_page(request) and exc.status_code in (404, 405):
            return error_page(request, 404, "这个页面不存在 There is no such page.",
                              "not_found")
        return await delegate(api_http, request, exc)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        # Page routes take only integer ids in their paths: a malformed one is no page.
        if _wants_page(request):
            return error_page(request, 404, "这个页面不存在 There is no such page.",
                              "not_found")
        return await delegate(api_invalid, request, exc)

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)


# -- who is asking, CSRF -------------------------------------------------------------------


def viewer(request: Request) -> Account | None:
    """The logged-in account, from the ``fs_session`` cookie only (pages never read a bearer
    header, so a page's cookie is all a form's CSRF token has to be bound to)."""
    token = request.cookies.get(SESSION_COOKIE)
    account = None
    if token:
        try:
            account = accounts.authenticate(get_platform(request), token)
        except Unauthenticated:
            account = None
    request.state.viewer = account
    if account is not None:
        request.state.account_id = account.id
    return account


Viewer = Annotated[Account | None, Depends(viewer)]


def _logged_in(account: Account | None, *roles: Role) -> Account:
    if account is None:
        raise Unauthenticated("log in first")
    if roles and account.role not in roles and account.role is not Role.ADMIN:
        raise Forbidden("这个页面需要员工权限 This page is for "
                        + " or ".join(r.value for r in roles) + " staff.",
                        code="forbidden_role")
    return account


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
    key = get_platform(request).keyring.derive("pages-csrf/v1")
    return hmac.new(key, binding.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, submitted: str) -> None:
    binding = _csrf_binding(request)
    if binding is None or not hmac.compare_digest(csrf_token(request), submitted):
        raise Forbidden("这个表单已失效，请刷新页面后重试 This form has expired; reload the "
                        "page and try again.", code="csrf_failed")


def _secure(request: Request) -> bool:
    setting = get_platform(request).settings.session_cookie_secure
    return request.url.scheme == "https" if setting is None else setting


def render(request: Request, name: str, *, status: int = 200, **values: Any) -> Response:
    values.setdefault("viewer", getattr(request.state, "viewer", None))
    values["csrf"] = csrf_token(request)
    values.setdefault("error", None)
    values.setdefault("notice", None)
    response = templates.TemplateResponse(request, name, values, status_code=status)
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="lax",
                            secure=_secure(request))
    response.headers.update(_HEADERS)
    return response


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _safe_next(value: str | None) -> str | None:
    """Only a path on this site, never ``//elsewhere`` or ``https://elsewhere``."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


def _home_of(account: Account) -> str:
    return {Role.PATIENT: "/me", Role.REGISTRATION: "/desk",
            Role.OPERATOR: "/operator"}.get(account.role, "/")


# -- the guard, when the application has one -------------------------------------------------


def _guard(request: Request) -> Any:
    return getattr(request.app.state, "guard", None)


def _guard_check(request: Request, group: str, **keys: Any) -> Any:
    """Run the guard from a (threaded) page handler; None when the app has no guard."""
    guard = _guard(request)
    if guard is None:
        return None
    return anyio.from_thread.run(functools.partial(guard.check, request, group, **keys))


def _guard_release(request: Request, passed: Any) -> None:
    guard = _guard(request)
    if guard is not None and passed is not None:
        anyio.from_thread.run(guard.release, passed)


def _action_token(request: Request, account: Account, action: str, target: str) -> str:
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


def _retry_after(exc: FairslotError, action: str, target: int, token: str,
                 fresh: Callable[[], str], payer: str = "") -> Retry:
    if isinstance(exc, ChallengeRequired):
        # The challenge is checked before the token, so the token is still unspent.
        return Retry(action, target, token, exc.extra.get("challenge"), payer)
    if isinstance(exc, ActionTokenRefused) and exc.code == "token_too_early":
        return Retry(action, target, token, None, payer)
    return Retry(action, target, fresh(), None, payer)


# -- browsing --------------------------------------------------------------------------------


def _today(platform: Platform) -> dt.date:
    return platform.clock.now().astimezone(platform.settings.zone).date()


def _local(platform: Platform, when: dt.datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(platform.settings.zone).strftime("%Y-%m-%d %H:%M")


def _browse(request: Request) -> None:
    _guard_check(request, "browsing")


@router.get("/", dependencies=[Depends(_browse)])
def home(request: Request, who: Viewer) -> Response:
    platform = get_platform(request)
    with platform.uow() as uow:
        hospitals = [(h, uow.schedule.departments(h.id or 0)) for h in uow.schedule.hospitals()]
    return render(request, "home.html", hospitals=hospitals)


@router.get("/departments/{department_id}", dependencies=[Depends(_browse)])
def department_page(department_id: int, request: Request, who: Viewer) -> Response:
    platform = get_platform(request)
    with platform.uow() as uow:
        department = uow.schedule.department(department_id)
        hospital = uow.schedule.hospital(department.hospital_id) if department else None
    if department is None or hospital is None:
        raise NotFound("没有这个科室 There is no such department.", code="department_not_found")
    doctors = sorted(catalog.doctors(platform, department_id), key=lambda d: (not d.hot, d.name))
    return render(request, "department.html", hospital=hospital, department=department,
                  doctors=doctors)


@router.get("/doctors/{doctor_id}", dependencies=[Depends(_browse)])
def doctor_page(doctor_id: int, request: Request, who: Viewer) -> Response:
    platform = get_platform(request)
    with platform.uow() as uow:
        doctor = uow.schedule.doctor(doctor_id)
        department = uow.schedule.department(doctor.department_id) if doctor else None
    if doctor is None or department is None:
        raise NotFound("没有这位医生 There is no such doctor.", code="doctor_not_found")
    today = _today(platform)
    views = catalog.sessions_of_doctor(platform, doctor_id, today,
                                       today + dt.timedelta(days=DAYS_AHEAD - 1))
    now = platform.clock.now()
    rounds = _open_rounds(platform, department.id or 0, [v.session for v in views], now)
    rows = [{"session": v.session, "free": v.free, "released": v.released,
             "opens": _local(platform, v.session.release_at),
             "round_id": rounds.get(v.session.id or 0),
             "started": v.session.has_started(now),
             "bookable": v.released and v.free > 0 and not v.session.has_started(now)
             and v.session.status.value == "scheduled"}
            for v in sorted(views, key=lambda v: v.session.starts_at)]
    return render(request, "doctor.html", doctor=doctor, department=department, rows=rows,
                  zone=platform.settings.timezone)


def _open_rounds(platform: Platform, department_id: int, sessions: list[Session],
                 now: dt.datetime) -> dict[int, int]:
    """Session id -> the draw round taking entries for it now (draw sessions only)."""
    found: dict[int, int] = {}
    with platform.uow() as uow:
        for session in sessions:
            if session.release_policy.value != "draw" or session.is_released(now):
                continue
            round_id = uow.rounds.round_of_session(session.id or 0)
            round_ = uow.rounds.get(round_id) if round_id is not None else None
            if (round_ is not None and round_.status == "open"
                    and round_.opens_at <= now < round_.closes_at):
                found[session.id or 0] = round_.id
    return found


# -- log in, register, log out ---------------------------------------------------------------


def _signed_in(request: Request, to: str, token: str) -> Response:
    """Where a successful log-in or registration goes: the session cookie set, the
    anonymous CSRF cookie dropped (the signed-in pages bind CSRF to the session)."""
    response = _redirect(to)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax",
                        secure=_secure(request),
                        max_age=get_platform(request).settings.auth_token_hours * 3600)
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.get("/login")
def login_form(request: Request, who: Viewer, next: str | None = None) -> Response:
    return render(request, "login.html", next=_safe_next(next) or "", username="",
                  challenge=None)


@router.post("/login")
def login(request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
          username: Annotated[str, Form(max_length=64)] = "",
          password: Annotated[str, Form(max_length=256)] = "",
          next: Annotated[str, Form(max_length=500)] = "",
          altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    check_csrf(request, csrf)
    platform = get_platform(request)
    try:
        _guard_check(request, "login", pow_payload=altcha or None)
        token, account = accounts.log_in(platform, request.app.state.login_limiter, username,
                                         password, context(request))
    except FairslotError as exc:
        challenge = exc.extra.get("challenge") if isinstance(exc, ChallengeRequired) else None
        return render(request, "login.html", status=exc.status, next=_safe_next(next) or "",
                      username=username, error=exc.detail, challenge=challenge)
    return _signed_in(request, _safe_next(next) or _home_of(account), token)


@router.get("/register")
def register_form(request: Request, who: Viewer) -> Response:
    return render(request, "register.html", username="", phone="", challenge=None)


@router.post("/register")
def register(request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
             username: Annotated[str, Form(max_length=64)] = "",
             password: Annotated[str, Form(max_length=256)] = "",
             phone: Annotated[str, Form(max_length=32)] = "",
             altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    check_csrf(request, csrf)
    platform = get_platform(request)
    try:
        _guard_check(request, "registration", pow_payload=altcha or None)
        accounts.register(platform, username, password, phone, context(request))
        token, _ = accounts.log_in(platform, request.app.state.login_limiter, username,
                                   password, context(request))
    except FairslotError as exc:
        challenge = exc.extra.get("challenge") if isinstance(exc, ChallengeRequired) else None
        return render(request, "register.html", status=exc.status, username=username,
                      phone=phone, error=exc.detail, challenge=challenge)
    return _signed_in(request, "/me?done=registered", token)


@router.post("/logout")
def logout(request: Request, who: Viewer, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        accounts.log_out(get_platform(request), token)
    response = _redirect("/")
    response.delete_cookie(SESSION_COOKIE)
    return response


# -- my account ------------------------------------------------------------------------------


def _me_page(request: Request, account: Account, *, status: int = 200,
             error: str | None = None, notice: str | None = None,
             retry: Retry | None = None, form: Mapping[str, str] | None = None) -> Response:
    platform = get_platform(request)
    # Staff accounts book at the desk for others; those bookings belong on the desk pages,
    # not in a personal list with pay and cancel buttons.
    is_patient = account.role is Role.PATIENT
    patients = accounts.list_patients(platform, account) if is_patient else []
    views = booking.my_bookings(platform, account) if is_patient else []
    items = []
    for v in views:
        b = v.booking
        target = b.id or 0
        item: dict[str, Any] = {"view": v, "pay_token": None, "cancel_token": None,
                                "pay_by": _local(platform, b.pay_by),
                                "starts": _local(platform, v.session.starts_at),
                                "retry": None}
        # Tokens are issued here, on the screen that leads to paying or cancelling.
        if b.status is BookingStatus.HELD:
            item["pay_token"] = _action_token(request, account, "pay", str(target))
        if b.status in (BookingStatus.HELD, BookingStatus.PAID):
            item["cancel_token"] = _action_token(request, account, "cancel", str(target))
        if retry is not None and retry.target == target:
            item["retry"] = retry
            item[f"{retry.action}_token"] = retry.token
        items.append(item)
    with platform.uow() as uow:
        doctors = {v.session.doctor_id: uow.schedule.doctor(v.session.doctor_id) for v in views}
    entries = release.my_entries(platform, account) if is_patient else []
    return render(request, "me.html", status=status, account=account, patients=patients,
                  items=items, doctors=doctors, error=error, notice=notice,
                  entries=entries, names={p.id: p.name for p in patients},
                  form=dict(form or {}),
                  deadline_minutes=platform.settings.payment_deadline_minutes)


@router.get("/me")
def me(request: Request, who: Viewer,
       done: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    account = _logged_in(who)
    return _me_page(request, account, notice=DONE_MESSAGES.get(done or ""))


@router.post("/me/patients")
def add_patient(request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
                id_number: Annotated[str, Form(max_length=40)] = "",
                name: Annotated[str, Form(max_length=80)] = "",
                phone: Annotated[str, Form(max_length=32)] = "") -> Response:
    account = _logged_in(who, Role.PATIENT)
    check_csrf(request, csrf)
    try:
        accounts.add_patient(get_platform(request), account, id_number, name, phone or None,
                             context(request))
    except FairslotError as exc:
        # The name may be shown again; the ID number is not echoed into the page.
        return _me_page(request, account, status=exc.status, error=exc.detail,
                        form={"name": name})
    return _redirect("/me?done=patient_added")


@router.post("/bookings/{booking_id}/pay")
def pay(booking_id: int, request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
        payer_account: Annotated[str, Form(max_length=80)] = "",
        action_token: Annotated[str, Form(max_length=300)] = "",
        altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    account = _logged_in(who, Role.PATIENT)
    check_csrf(request, csrf)
    platform = get_platform(request)
    try:
        _guard_check(request, "payment", account_id=str(account.id),
                     payer=payer_account.strip() or None, need_token="pay",
                     target=str(booking_id), token=action_token, pow_payload=altcha or None)
        booking.pay(platform, account, booking_id, payer_account, context(request))
    except FairslotError as exc:
        retry = _retry_after(exc, "pay", booking_id, action_token,
                             lambda: _action_token(request, account, "pay", str(booking_id)),
                             payer_account)
        return _me_page(request, account, status=exc.status, error=exc.detail, retry=retry)
    return _redirect(f"/me?done=paid#booking-{booking_id}")


@router.post("/bookings/{booking_id}/cancel")
def cancel(booking_id: int, request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
           action_token: Annotated[str, Form(max_length=300)] = "",
           altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    account = _logged_in(who, Role.PATIENT)
    check_csrf(request, csrf)
    platform = get_platform(request)
    try:
        _guard_check(request, "booking", account_id=str(account.id), need_token="cancel",
                     target=str(booking_id), token=action_token, pow_payload=altcha or None)
        booking.cancel(platform, account, booking_id, context(request))
    except FairslotError as exc:
        retry = _retry_after(exc, "cancel", booking_id, action_token,
                             lambda: _action_token(request, account, "cancel",
                                                   str(booking_id)))
        return _me_page(request, account, status=exc.status, error=exc.detail, retry=retry)
    return _redirect(f"/me?done=cancelled#booking-{booking_id}")


# -- booking: choose a patient, confirm, book -----------------------------------------------


def _bookable_view(request: Request, session_id: int) -> catalog.SessionView:
    return catalog.session_view(get_platform(request), session_id)


@router.get("/sessions/{session_id}/book")
def choose_patient(session_id: int, request: Request, who: Viewer) -> Response:
    account = _logged_in(who, Role.PATIENT)
    platform = get_platform(request)
    view = _bookable_view(request, session_id)
    return render(request, "book_choose.html", view=view,
                  starts=_local(platform, view.session.starts_at),
                  opens=_local(platform, view.session.release_at),
                  patients=accounts.list_patients(platform, account))


def _confirm_page(request: Request, account: Account, session_id: int, patient_id: int, *,
                  status: int = 200, error: str | None = None,
                  retry: Retry | None = None) -> Response:
    platform = get_platform(request)
    view = _bookable_view(request, session_id)
    patient = next((p for p in accounts.list_patients(platform, account) if p.id == patient_id),
                   None)
    if patient is None:
        raise NotFound("这位就诊人不在您的账户中 No such patient on this account.",
                       code="patient_not_found")
    target = f"{session_id}/{patient_id}"
    token = retry.token if retry else _action_token(request, account, "book", target)
    with platform.uow() as uow:
        department = uow.schedule.department(view.doctor.department_id)
    return render(request, "book_confirm.html", status=status, view=view, patient=patient,
                  department=department, token=token, error=error,
                  challenge=retry.challenge if retry else None,
                  starts=_local(platform, view.session.starts_at),
                  deadline_minutes=platform.settings.payment_deadline_minutes)


@router.get("/sessions/{session_id}/confirm")
def confirm(session_id: int, request: Request, who: Viewer,
            patient_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> Response:
    account = _logged_in(who, Role.PATIENT)
    if patient_id is None:
        return _redirect(f"/sessions/{session_id}/book")
    return _confirm_page(request, account, session_id, patient_id)


@router.post("/sessions/{session_id}/book")
def book(session_id: int, request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
         patient_id: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
         action_token: Annotated[str, Form(max_length=300)] = "",
         altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    account = _logged_in(who, Role.PATIENT)
    check_csrf(request, csrf)
    platform = get_platform(request)
    target = f"{session_id}/{patient_id}"
    passed = None
    try:
        passed = _guard_check(request, "booking", account_id=str(account.id),
                              patient_id=str(patient_id), need_token="book", target=target,
                              token=action_token, pow_payload=altcha or None, exclusive=True)
        view = booking.book(platform, account, patient_id, session_id, context(request))
    except FairslotError as exc:
        retry = _retry_after(exc, "book", session_id, action_token,
                             lambda: _action_token(request, account, "book", target))
        return _confirm_page(request, account, session_id, patient_id, status=exc.status,
                             error=exc.detail, retry=retry)
    finally:
        _guard_release(request, passed)
    return _redirect(f"/me?done=booked#booking-{view.booking.id}")


# -- draw rounds: enter with up to three sessions, best first --------------------------------


def _entry_page(request: Request, account: Account, round_id: int, *, status: int = 200,
                error: str | None = None, retry: Retry | None = None,
                chosen: list[int] | None = None) -> Response:
    platform = get_platform(request)
    view = release.round_view(platform, round_id)
    options = []
    with platform.uow() as uow:
        for item in view.sessions:
            session = uow.schedule.session(item["session_id"])
            doctor = uow.schedule.doctor(session.doctor_id) if session else None
            if session is not None and doctor is not None:
                options.append({"session": session, "doctor": doctor,
                                "entries": item["first_choice_entries"]})
        department = uow.schedule.department(view.department_id)
    token = retry.token if retry else _action_token(request, account, "enter", str(round_id))
    return render(request, "enter.html", status=status, view=view, options=options,
                  department=department, patients=accounts.list_patients(platform, account),
                  token=token, error=error, challenge=retry.challenge if retry else None,
                  chosen=chosen or [], closes=_local(platform, view.closes_at),
                  max_choices=3)


@router.get("/rounds/{round_id}/enter")
def entry_form(round_id: int, request: Request, who: Viewer,
               session_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
               ) -> Response:
    account = _logged_in(who, Role.PATIENT)
    return _entry_page(request, account, round_id, chosen=[session_id] if session_id else [])


@router.post("/rounds/{round_id}/enter")
def enter(round_id: int, request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
          patient_id: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
          choice1: Annotated[str, Form(max_length=12)] = "",
          choice2: Annotated[str, Form(max_length=12)] = "",
          choice3: Annotated[str, Form(max_length=12)] = "",
          action_token: Annotated[str, Form(max_length=300)] = "",
          altcha: Annotated[str, Form(max_length=4000)] = "") -> Response:
    account = _logged_in(who, Role.PATIENT)
    check_csrf(request, csrf)
    choices = [int(c) for c in (choice1, choice2, choice3) if c.strip().isdigit()]
    try:
        _guard_check(request, "entering", account_id=str(account.id),
                     patient_id=str(patient_id), need_token="enter", target=str(round_id),
                     token=action_token, pow_payload=altcha or None)
        release.enter(get_platform(request), account, round_id, patient_id, choices,
                      context(request))
    except FairslotError as exc:
        retry = _retry_after(exc, "enter", round_id, action_token,
                             lambda: _action_token(request, account, "enter", str(round_id)))
        return _entry_page(request, account, round_id, status=exc.status, error=exc.detail,
                           retry=retry, chosen=choices)
    return _redirect("/me?done=entered#entries")


# -- staff: the registration desk and the operator's day -------------------------------------


@dataclasses.dataclass(frozen=True)
class SessionRow:
    session: Session
    doctor_name: str
    department_name: str
    free: int
    counts: dict[str, int]

    @property
    def booked(self) -> int:
        return sum(n for s, n in self.counts.items() if s in ("held", "paid", "checked_in",
                                                                "no_show"))


def sessions_on(platform: Platform, date: dt.date) -> list[SessionRow]:
    """Every session of every doctor on ``date``, with free slots and bookings by status."""
    now = platform.clock.now()
    found: list[tuple[Session, str, str]] = []
    with platform.uow() as uow:
        for hospital in uow.schedule.hospitals():
            for department in uow.schedule.departments(hospital.id or 0):
                for doctor in uow.schedule.doctors(department.id or 0):
                    for session in uow.schedule.sessions(doctor.id or 0, date, date):
                        found.append((session, doctor.name, department.name))
        free = uow.schedule.free_counts([s.id or 0 for s, _, _ in found], now)
        rows = []
        for session, doctor_name, department_name in found:
            counts = collections.Counter(
                b.status.value for b in uow.bookings.of_session(session.id or 0))
            rows.append(SessionRow(session, doctor_name, department_name,
                                   free.get(session.id or 0, 0), dict(counts)))
    rows.sort(key=lambda r: (r.session.starts_at, r.department_name, r.doctor_name))
    return rows


def _desk_page(request: Request, account: Account, *, status: int = 200,
               error: str | None = None, notice: str | None = None,
               done_booking: Any = None, form: Mapping[str, str] | None = None) -> Response:
    platform = get_platform(request)
    today = _today(platform)
    sessions = [r for r in sessions_on(platform, today) if not r.session.has_started(
        platform.clock.now() - dt.timedelta(minutes=platform.settings.session_minutes))]
    sessions += sessions_on(platform, today + dt.timedelta(days=1))
    awaiting = [{"view": v, "pay_by": _local(platform, v.booking.pay_by),
                 "starts": _local(platform, v.session.starts_at)}
                for v in booking.desk_awaiting_payment(platform)]
    return render(request, "desk.html", status=status, account=account, error=error,
                  notice=notice, sessions=sessions, done_booking=done_booking,
                  form=dict(form or {}), today=today, awaiting=awaiting)


@router.get("/desk")
def desk(request: Request, who: Viewer,
         done: Annotated[str | None, Query(max_length=40)] = None,
         booking_id: Annotated[int | None, Query(alias="booking", ge=1, le=2**31 - 1)] = None,
         ) -> Response:
    account = _logged_in(who, Role.REGISTRATION)
    done_booking = None
    if booking_id is not None and done in DONE_MESSAGES:
        done_booking = booking.get_booking(get_platform(request), account, booking_id)
    return _desk_page(request, account, notice=DONE_MESSAGES.get(done or ""),
                      done_booking=done_booking)


def _desk_action(request: Request, who: Account | None, csrf: str, form: dict[str, str],
                 done: str, action: Callable[[Platform, Account], booking.BookingView]
                 ) -> Response:
    """A desk form's post: the clerk's role and the form's CSRF token checked, ``action``
    run, then back to the desk page with the booking it concerned, or with the error and
    the fields to fill in again."""
    account = _logged_in(who, Role.REGISTRATION)
    check_csrf(request, csrf)
    try:
        view = action(get_platform(request), account)
    except FairslotError as exc:
        return _desk_page(request, account, status=exc.status, error=exc.detail, form=form)
    return _redirect(f"/desk?done={done}&booking={view.booking.id}")


@router.post("/desk/check-in")
def desk_check_in(request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
                  booking_id: Annotated[str, Form(max_length=12)] = "",
                  id_number: Annotated[str, Form(max_length=40)] = "",
                  name: Annotated[str, Form(max_length=80)] = "") -> Response:
    return _desk_action(
        request, who, csrf, {"booking_id": booking_id}, "checked_in",
        lambda platform, account: booking.check_in(
            platform, account, _positive_int(booking_id, "预约号 booking number"), id_number,
            name, context(request)))


@router.post("/desk/book")
def desk_book(request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
              session_id: Annotated[str, Form(max_length=12)] = "",
              id_number: Annotated[str, Form(max_length=40)] = "",
              name: Annotated[str, Form(max_length=80)] = "",
              payer_account: Annotated[str, Form(max_length=80)] = "") -> Response:
    return _desk_action(
        request, who, csrf, {"session_id": session_id, "payer_account": payer_account},
        "desk_booked",
        lambda platform, account: booking.book_on_site(
            platform, account, _positive_int(session_id, "出诊 session"), id_number, name,
            payer_account, context(request)))


@router.post("/desk/pay")
def desk_pay(request: Request, who: Viewer, csrf: Annotated[str, Form()] = "",
             booking_id: Annotated[str, Form(max_length=12)] = "",
             payer_account: Annotated[str, Form(max_length=80)] = "") -> Response:
    """Take the payment for a walk-in patient's draw win or waitlist offer."""
    return _desk_action(
        request, who, csrf, {"payer_account": payer_account}, "desk_paid",
        lambda platform, account: booking.pay(
            platform, account, _positive_int(booking_id, "预约号 booking number"),
            payer_account, context(request)))


def _positive_int(raw: str, what: str) -> int:
    text = raw.strip()
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise InvalidInput(f"请填写有效的{what}", code="invalid_number")
    return int(text)


@router.get("/operator")
def operator(request: Request, who: Viewer,
             date: Annotated[dt.date | None, Query()] = None) -> Response:
    account = _logged_in(who, Role.OPERATOR)
    platform = get_platform(request)
    day = date or _today(platform)
    rows = sessions_on(platform, day)
    return render(request, "operator.html", account=account, rows=rows, day=day,
                  prev_day=day - dt.timedelta(days=1), next_day=day + dt.timedelta(days=1),
                  zone=platform.settings.timezone,
                  totals={"capacity": sum(r.session.capacity for r in rows),
                          "booked": sum(r.booked for r in rows),
                          "free": sum(r.free for r in rows)})

"""What every page shares: templates and their filters, errors shown as pages, the viewer
(from the session cookie), CSRF tokens, the guard from a threaded handler, local times."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import inspect
import pathlib
import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

import anyio.from_thread
import jinja2
from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import BookingStatus
from fairslot.domain.errors import FairslotError, Forbidden, Unauthenticated
from fairslot.domain.identity import mask_id_number, mask_name, mask_phone
from fairslot.domain.schedule import Period
from fairslot.guard.errors import ActionTokenRefused, ChallengeRequired
from fairslot.services import accounts
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import SESSION_COOKIE, UowDep, get_deps
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
    "error_page",
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
    502: "支付未完成 Payment not completed",
    503: "系统繁忙 Busy, please retry",
}
# Messages after a redirect are chosen by a fixed code, so nothing a link carries is shown.
DONE_MESSAGES = {
    "registered": "注册成功，欢迎 Welcome: your account is ready",
    "patient_added": "已添加就诊人 Patient added",
    "booked": "预约成功，请在支付期限前支付 Booked: please pay before the deadline",
    "paid": "支付成功 Paid",
    "appealed": "申诉已提交，将转交发布该记录的医院 Appeal sent to the hospital that listed "
                "the entry",
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
                return error_page(request, exc.status, exc.detail, exc.code)

        return handler


def page_router() -> APIRouter:
    """A router whose routes show errors as pages (one per audience module)."""
    return APIRouter(include_in_schema=False, route_class=PageRoute)


def error_page(request: Request, status: int, detail: str, code: str) -> Response:
    return render(request, "error.html", status=status,
                  headline=ERROR_HEADLINES.get(status, "出错了 Something went wrong"),
                  detail=detail, code=code)


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
            raise Forbidden("这个页面需要员工权限 This page is for "
                            + " or ".join(r.value for r in roles) + " staff.",
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
        raise Forbidden("这个表单已失效，请刷新页面后重试 This form has expired; reload the "
                        "page and try again.", code="csrf_failed")


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
    values["csrf"] = csrf_token(request)
    values.setdefault("error", None)
    values.setdefault("notice", None)
    response = templates.TemplateResponse(request, name, values, status_code=status)
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="lax",
                            secure=secure_cookies(request))
    response.headers.update(_HEADERS)
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

"""Request-scoped dependencies: one unit of work per request, the caller's account and role,
and what the server itself knows about the request (client IP from trusted proxies only,
device).

A request that needs the database gets one unit of work (``UowDep``); authentication and
the use case share it, so a booking checks out one pooled connection. The guard runs before
the transaction: routes that key the guard on the account read it from the log-in token's
MAC (``claimed_account``), with no database round trip, and authenticate inside the use
case's transaction afterwards."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Annotated, TypeVar

import anyio.from_thread
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import Forbidden, Unauthenticated
from fairslot.domain.schedule import Session
from fairslot.guard.fastapi import GuardGate
from fairslot.guard.policy import RouteGroup
from fairslot.guard.service import Guard, GuardPass
from fairslot.monitoring.request_log import screen_row
from fairslot.services import accounts
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "Caller",
    "CallerDep",
    "ClaimedAccount",
    "DepsDep",
    "GuardedScope",
    "GuardedUse",
    "PlatformDep",
    "UowDep",
    "action_token",
    "authenticated",
    "bearer_token",
    "claimed_account",
    "client_ip",
    "context",
    "guarded_use",
    "screen",
]

SESSION_COOKIE = "fs_session"
T = TypeVar("T")
_log = logging.getLogger("fairslot.guard")


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def get_deps(request: Request) -> Deps:
    return get_platform(request).deps


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """The request's one unit of work, opened lazily (no connection until first used).

    Closed on the event loop, not in the thread pool: a close that had to wait for a pool
    thread could wait forever behind requests that hold threads while they wait for the
    connection this one is about to give back. Closing costs at most a ROLLBACK round trip
    (nothing when the use case committed, which already returned the connection)."""
    with get_platform(request).uow() as uow:
        yield uow


# FastAPI runs a plain (``def``) dependency in its thread pool: a thread hop, which on a
# busy host costs a request more than the dependency's work. The dependencies below are
# ``async`` (they do no I/O) so that they run on the event loop.


async def _platform(request: Request) -> Platform:
    return get_platform(request)


async def _deps(request: Request) -> Deps:
    return get_deps(request)


PlatformDep = Annotated[Platform, Depends(_platform)]
DepsDep = Annotated[Deps, Depends(_deps)]
UowDep = Annotated[UnitOfWork, Depends(unit_of_work)]


def client_ip(request: Request) -> str:
    """Resolved once per request by the guard's middleware (trusted proxies only)."""
    ip = getattr(request.state, "client_ip", None)
    return ip if isinstance(ip, str) else "unknown"


def context(request: Request, passed: GuardPass | None = None) -> RequestContext:
    """What the server knows about the request; with the guard's pass, the monitoring
    decisions that hold what it creates for review and the age of its screen's token."""
    device = getattr(request.state, "device_id", None)
    return RequestContext(ip=client_ip(request), device_id=device if isinstance(device, str)
                          else None,
                          held_for_review=passed.held_for_review if passed else (),
                          screen_age_s=passed.screen_age_s if passed else None)


def bearer_token(request: Request) -> str | None:
    """The API's credential: the ``Authorization: Bearer`` header only. The pages' session
    cookie is never accepted here: a browser sends cookies to any request another site
    makes it send, so a cookie-authenticated API would need the pages' CSRF checks."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def claimed_account(request: Request) -> int:
    """The account the request's log-in token was issued to (its MAC checked, no database):
    what the guard keys its per-account limits on before the transaction. Whether the token
    is still valid is checked by ``authenticated`` inside the transaction."""
    token = bearer_token(request)
    account_id = accounts.token_account_id(get_deps(request).keyring, token) if token else None
    if account_id is None:
        raise Unauthenticated("log in first: send 'Authorization: Bearer <token>'")
    return account_id


async def _claimed_account(request: Request) -> int:
    return claimed_account(request)


ClaimedAccount = Annotated[int, Depends(_claimed_account)]


def authenticated(request: Request, uow: UnitOfWork, *roles: Role) -> Account:
    """The request's account, checked in ``uow``; with ``roles``, one of them (or admin)."""
    token = bearer_token(request)
    if not token:
        raise Unauthenticated("log in first: send 'Authorization: Bearer <token>'")
    account = accounts.authenticate(uow, get_deps(request), token)
    request.state.account_id = account.id
    if roles:
        accounts.require_role(account, *roles)
    return account


class Caller:
    """Who is calling, found out when a route asks (``account``), in the thread that runs
    the route and in the request's unit of work. A dependency that queried the database
    itself would hold a pooled connection while the route waited for a thread, and under
    load those waits deadlock (threads waiting for connections held by requests waiting for
    threads)."""

    def __init__(self, request: Request, uow: UnitOfWork) -> None:
        self._request = request
        self.uow = uow
        self._account: Account | None = None

    def account(self, *roles: Role) -> Account:
        """The authenticated account; with ``roles``, one of them (or admin) or Forbidden."""
        if self._account is None:
            self._account = authenticated(self._request, self.uow)
        if roles and self._account.role not in roles and self._account.role is not Role.ADMIN:
            raise Forbidden(f"this needs the role {' or '.join(r.value for r in roles)}",
                            code="forbidden_role")
        return self._account


async def caller(request: Request, uow: UowDep) -> Caller:
    return Caller(request, uow)


CallerDep = Annotated[Caller, Depends(caller)]


def screen(request: Request, account: Account) -> None:
    """A screen that hands out action tokens passes the guard's ``screens`` limits first,
    once per view, so tokens cannot be collected in bursts. From the endpoint's thread."""
    guard: Guard = request.app.state.guard
    anyio.from_thread.run(functools.partial(guard.check, request, RouteGroup.SCREENS,
                                            account_id=str(account.id)))


def booking_screen_shown(request: Request, account: Account, session: Session,
                         patient_id: int | None = None) -> None:
    """Log a booking screen shown (its action token issued) for monitoring, through the
    access log: the ``early_tokens`` scenario counts screens collected before a release."""
    log = getattr(request.app.state, "access_log", None)
    if log is None:
        return
    ctx = context(request)
    log.record(screen_row(log.now(), account_id=account.id, ip=ctx.ip,
                          device_id=ctx.device_id, session_id=session.id or 0,
                          release_at=session.release_at, patient_id=patient_id))


def action_token(request: Request, account: Account, action: str, target: int | str) -> str:
    """The single-use token a screen hands out for the one action it leads to (after
    ``screen`` has let the view through)."""
    guard: Guard = request.app.state.guard
    return guard.issue_token(str(account.id), action, str(target))


class GuardedUse:
    """One guarded API action's request scope: the log-in token's claimed account (no
    database), the guard's gate for the route's group, and the request's one unit of work,
    in which ``account`` authenticates and the use case runs (one transaction, one pooled
    connection). ``guarded_use`` makes the dependency; the route calls ``check`` once with
    the keys it knows, then ``run`` with its use case."""

    __slots__ = ("_account", "_gate", "claimed", "deps", "request", "uow")

    def __init__(self, request: Request, uow: UnitOfWork, deps: Deps, claimed: int,
                 gate: GuardGate) -> None:
        self.request = request
        self.uow = uow
        self.deps = deps
        self.claimed = claimed
        self._gate = gate
        self._account: Account | None = None

    @property
    def passed(self) -> GuardPass | None:
        return self._gate.passed

    async def check(self, *, patient_id: str | None = None, payer: str | None = None,
                    target: str | None = None, spend_token: bool = True) -> GuardPass:
        """The guard, keyed on the claimed account and these (raises to refuse)."""
        return await self._gate.check(account_id=str(self.claimed), patient_id=patient_id,
                                      payer=payer, target=target, spend_token=spend_token)

    def account(self, *roles: Role) -> Account:
        """The authenticated account, checked in the unit of work (from the use case's
        thread); with ``roles``, one of them (or admin)."""
        if self._account is None:
            self._account = authenticated(self.request, self.uow, *roles)
        elif roles:
            accounts.require_role(self._account, *roles)
        return self._account

    def context(self) -> RequestContext:
        """What the server knows about the request, with the guard's pass."""
        return context(self.request, self._gate.passed)

    async def run(self, use_case: Callable[[], T]) -> T:
        """``use_case`` in the thread pool (the storage is synchronous): one thread hop."""
        return await run_in_threadpool(use_case)


class GuardedScope:
    """``async with GuardedScope(request, group, ...) as use:`` in a route: what
    ``guarded_use``'s dependency gives, without FastAPI's dependency machinery (a generator
    dependency costs its exit stack, a shielded cancel scope and a second solving pass per
    request). On leaving: the guard's hold (``exclusive``) is given back, then the unit of
    work ends. Unlike FastAPI's dependency exit, the release is not shielded from
    cancellation; uvicorn cancels a request only when it shuts down, and a hold whose
    release was cut short lapses after ``guard_exclusive_seconds``."""

    __slots__ = ("_exclusive", "_gate", "_group", "_need_token", "_request", "_uow")

    def __init__(self, request: Request, group: RouteGroup, *, need_token: str | None = None,
                 exclusive: bool = False) -> None:
        self._request = request
        self._group = group
        self._need_token = need_token
        self._exclusive = exclusive

    async def __aenter__(self) -> GuardedUse:
        request = self._request
        claimed = claimed_account(request)
        platform = get_platform(request)
        guard: Guard = request.app.state.guard
        self._gate = GuardGate(guard, request, self._group, self._need_token,
                               self._exclusive, None)
        uow = self._uow = platform.uow()
        uow.__enter__()
        return GuardedUse(request, uow, platform.deps, claimed, self._gate)

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            await self._gate.release()
        except BaseException as failed:
            self._uow.__exit__(type(failed), failed, failed.__traceback__)
            raise
        if exc_type is None and self._gate.passed is None:
            # A programming error, not a client's: the route skipped its guard.
            _log.error("guarded route %s returned without a guard check",
                       self._request.url.path)
        self._uow.__exit__(exc_type, exc, tb)


def guarded_use(group: RouteGroup, *, need_token: str | None = None,
                exclusive: bool = False) -> Callable[[Request], AsyncIterator[GuardedUse]]:
    """The dependency for a guarded action: one generator where the route used to take
    four dependencies (the claimed account, the unit of work, ``Deps`` and the gate), each
    of which FastAPI resolves, and two of which it enters and exits, per request. Ends the
    guard's hold (``exclusive``) and then the unit of work after the route. The hottest
    routes open a ``GuardedScope`` themselves instead."""

    async def dependency(request: Request) -> AsyncIterator[GuardedUse]:
        scope = GuardedScope(request, group, need_token=need_token, exclusive=exclusive)
        use = await scope.__aenter__()
        try:
            yield use
        except BaseException as exc:
            await scope.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        await scope.__aexit__(None, None, None)

    return dependency

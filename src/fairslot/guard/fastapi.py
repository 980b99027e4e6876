"""FastAPI/Starlette integration: the middleware, the ``guarded`` dependency, problem+json.

``install(app, guard)`` puts the guard on ``app.state.guard`` and adds ``GuardMiddleware``,
which for every HTTP request resolves the client address (``request.state.client_ip``),
reads the device the client sent back or mints one (``request.state.device_id``), and
counts the request in flight for the load shedder. Routes then take
``Depends(guarded(group, ...))`` and call ``await gate.check(account_id=..., patient_id=...,
payer=..., target=...)`` once they know who is asking; see docs/guard.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fairslot.domain.errors import FairslotError
from fairslot.guard.client_ip import came_over_https
from fairslot.guard.device import COOKIE_NAME
from fairslot.guard.policy import RouteGroup
from fairslot.guard.service import Guard, GuardPass

__all__ = [
    "GuardGate",
    "GuardMiddleware",
    "guarded",
    "install",
    "problem_handler",
    "problem_response",
]

_log = logging.getLogger("fairslot.guard")


class GuardMiddleware:
    """Pure ASGI middleware (no per-request task or body wrapping, so it costs little).

    Sets ``request.state.client_ip``, ``device_id`` (None when the request carries no
    device the server signed) and ``device_new`` (minted a short while ago). A request
    without a device gets one minted on its response: in the ``fs_device`` cookie
    (``Secure`` over HTTPS) and in the device header (``X-Device-Id``) for apps, which send
    it back in that header. It is not the request's device: the client has not shown yet
    that it keeps it."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard
        self._device_header = guard.device_header.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guard = self.guard
        forwarded: list[str] = []
        proto: list[str] = []
        cookie_header = ""
        device_header: str | None = None
        wanted = self._device_header
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto.append(value.decode("latin-1"))
            elif name == b"cookie":
                cookie_header = f"{cookie_header}; {value.decode('latin-1')}"
            elif name == wanted:
                device_header = value.decode("latin-1")
        client = scope.get("client")
        peer = client[0] if client else None
        state: dict[str, Any] = scope.setdefault("state", {})
        state["client_ip"] = guard.client_ip(peer, forwarded)

        devices = guard.devices
        device = devices.verify(_cookie(cookie_header) if cookie_header else None)
        if device is None and device_header is not None:
            device = devices.verify(device_header.strip())
        state["device_id"] = device.id if device is not None else None
        state["device_new"] = device is not None and devices.is_young(device)

        send_wrapped = send
        if device is None:
            _, value = devices.mint()
            https = came_over_https(scope.get("scheme", "http"), peer, proto, guard.trusted)
            minted = [(b"set-cookie", devices.set_cookie(value, https=https).encode("latin-1")),
                      (wanted, value.encode("latin-1"))]

            async def send_with_device(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *minted]
                await send(message)

            send_wrapped = send_with_device

        shedder = guard.shedder
        shedder.enter()
        try:
            await self.app(scope, receive, send_wrapped)
        finally:
            shedder.leave()


_COOKIE_PREFIX = COOKIE_NAME + "="


def _cookie(header: str) -> str | None:
    """Our one cookie from a Cookie header; cheaper than parsing every cookie."""
    if _COOKIE_PREFIX not in header:
        return None
    if header.count(_COOKIE_PREFIX) > 1:
        return cookie_parser(header).get(COOKIE_NAME)
    for part in header.split(";"):
        part = part.strip()
        if part.startswith(_COOKIE_PREFIX):
            return part[len(_COOKIE_PREFIX):].strip('"')
    return None


class GuardGate:
    """What a guarded route receives: call ``check`` once with the keys it knows.

    With a ``stack``, the hold an ``exclusive`` check takes is released when the stack
    closes; without one, whoever made the gate calls ``release``."""

    def __init__(self, guard: Guard, request: Request, group: RouteGroup,
                 need_token: str | None, exclusive: bool,
                 stack: AsyncExitStack | None) -> None:
        self.guard = guard
        self.request = request
        self.group = group
        self.need_token = need_token
        self.exclusive = exclusive
        self._stack = stack
        self.passed: GuardPass | None = None

    async def check(
        self,
        *,
        account_id: str | None = None,
        patient_id: str | None = None,
        payer: str | None = None,
        target: str | None = None,
        token: str | None = None,
        pow_payload: str | None = None,
        risk: int = 0,
        spend_token: bool = True,
    ) -> GuardPass:
        """Run the guard for this request; raises a ``FairslotError`` subclass to refuse.
        With ``exclusive`` the account's one-at-a-time slot is held until the response.
        ``spend_token=False`` lets a request through without the route's action token (a
        retry answered from what the first request did, which acts no more)."""
        passed = await self.guard.check(
            self.request,
            self.group,
            account_id=account_id,
            patient_id=patient_id,
            payer=payer,
            need_token=self.need_token if spend_token else None,
            target=target,
            token=token,
            pow_payload=pow_payload,
            risk=risk,
            exclusive=self.exclusive,
        )
        if passed.hold is not None and self._stack is not None:
            self._stack.push_async_callback(self.guard.release, passed)
        self.passed = passed
        return passed

    async def release(self) -> None:
        """Give back the hold of an ``exclusive`` check (a gate made without a stack)."""
        passed = self.passed
        if passed is not None and passed.hold is not None and self._stack is None:
            await self.guard.release(passed)


_NO_STACK = AsyncExitStack()  # never entered: only used by gates that hold nothing


def guarded(
    group: RouteGroup | str,
    *,
    need_token: str | None = None,
    exclusive: bool = False,
    auto: bool = False,
) -> Callable[[Request], AsyncIterator[GuardGate] | Awaitable[GuardGate]]:
    """A dependency for a route in ``group``.

    ``need_token``: the action name whose single-use token the request must carry.
    ``exclusive``: one request of this group in flight per account (booking).
    ``auto``: check at once with the request's IP and device only (pages and searches that
    have no account); otherwise the route calls ``await gate.check(...)`` itself.
    """
    group = RouteGroup(group)

    async def dependency(request: Request) -> AsyncIterator[GuardGate]:
        guard: Guard = request.app.state.guard
        async with AsyncExitStack() as stack:
            gate = GuardGate(guard, request, group, need_token, exclusive, stack)
            if auto:
                await gate.check()
            yield gate
            if gate.passed is None:
                # A programming error, not a client's: the route skipped its guard.
                _log.error("guarded route %s returned without gate.check()", request.url.path)

    async def auto_dependency(request: Request) -> GuardGate:
        # Nothing to release afterwards: a plain dependency, which FastAPI runs for less
        # than a generator (no exit stack around the response).
        guard: Guard = request.app.state.guard
        gate = GuardGate(guard, request, group, need_token, exclusive, _NO_STACK)
        await gate.check()
        return gate

    if auto and not exclusive:
        return auto_dependency
    return dependency


def problem_response(exc: FairslotError) -> JSONResponse:
    """RFC 9457 problem+json for a platform error, with the guard's headers if any."""
    body: dict[str, Any] = {
        "type": f"https://fairslot.org/problems/{exc.code}",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "code": exc.code,
        **exc.extra,
    }
    headers: dict[str, str] = dict(getattr(exc, "headers", None) or {})
    return JSONResponse(body, status_code=exc.status, headers=headers,
                        media_type="application/problem+json")


async def problem_handler(request: Request, exc: Exception) -> Response:
    """Exception handler for apps without their own; the core app has one that must copy
    ``exc.headers`` the same way."""
    assert isinstance(exc, FairslotError)
    return problem_response(exc)


def install(app: Any, guard: Guard, *, handle_errors: bool = False) -> None:
    """Attach ``guard`` to a FastAPI/Starlette app. ``handle_errors`` also registers
    ``problem_handler`` for ``FairslotError`` (test and bench apps)."""
    app.state.guard = guard
    app.add_middleware(GuardMiddleware, guard=guard)
    if handle_errors:
        app.add_exception_handler(FairslotError, problem_handler)

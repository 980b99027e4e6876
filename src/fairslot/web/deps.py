"""Request-scoped dependencies: the platform, the caller's account and role, and what the
server itself knows about the request (client IP from trusted proxies only, device)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import Forbidden, Unauthenticated
from fairslot.guard.service import Guard
from fairslot.services import accounts
from fairslot.services.context import RequestContext

__all__ = ["CurrentAccount", "PlatformDep", "action_token", "client_ip", "context", "require"]

SESSION_COOKIE = "fs_session"


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def client_ip(request: Request) -> str:
    """Resolved once per request by the guard's middleware (trusted proxies only)."""
    ip = getattr(request.state, "client_ip", None)
    return ip if isinstance(ip, str) else "unknown"


def context(request: Request) -> RequestContext:
    device = getattr(request.state, "device_id", None)
    return RequestContext(ip=client_ip(request), device_id=device if isinstance(device, str)
                          else None)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE) or None


def current_account(request: Request, platform: PlatformDep) -> Account:
    token = bearer_token(request)
    if not token:
        raise Unauthenticated("log in first: send 'Authorization: Bearer <token>'")
    account = accounts.authenticate(platform, token)
    request.state.account_id = account.id
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]


def action_token(request: Request, account: Account, action: str, target: int) -> str:
    """The single-use token a screen hands out for the one action it leads to."""
    guard: Guard = request.app.state.guard
    return guard.issue_token(str(account.id), action, str(target))


def require(*roles: Role) -> Any:
    """A dependency that lets through the given roles (and admin, who may do everything)."""

    def check(account: CurrentAccount) -> Account:
        if account.role not in roles and account.role is not Role.ADMIN:
            raise Forbidden(f"this needs the role {' or '.join(r.value for r in roles)}",
                            code="forbidden_role")
        return account

    return Depends(check)

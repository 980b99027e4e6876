"""Log-in through the request guard's throttle (``fairslot.guard.login``): per account,
address, /24 and device, with a proof of work from the third failure and a back-off only
after it, so a stranger failing on purpose cannot lock a patient out. Shared by the API and
the log-in page; runs in the endpoint's worker thread."""

from __future__ import annotations

import functools

import anyio.from_thread
from fastapi import Request

from fairslot.domain.accounts import Account
from fairslot.domain.errors import Unauthenticated
from fairslot.guard.service import Guard
from fairslot.services import accounts
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork
from fairslot.web.deps import context

__all__ = ["guarded_log_in"]


def guarded_log_in(request: Request, uow: UnitOfWork, deps: Deps, username: str,
                   password: str, pow_payload: str | None) -> tuple[str, Account]:
    """Check the throttle, then the password; tell the throttle how it went."""
    guard: Guard = request.app.state.guard
    attempt = anyio.from_thread.run(functools.partial(
        guard.login.before_attempt, username, guard.requester(request),
        pow_payload=pow_payload))
    try:
        result = accounts.log_in(uow, deps, username, password, context(request))
    except Unauthenticated:
        anyio.from_thread.run(guard.login.after_failure, attempt)
        raise
    anyio.from_thread.run(guard.login.after_success, attempt)
    return result

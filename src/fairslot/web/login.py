"""Throttling log-in attempts before the password is checked (per username and per client
address), shared by the API and the log-in page."""

from __future__ import annotations

import limits
from fastapi import Request

from fairslot.domain.errors import TooManyRequests
from fairslot.web.deps import client_ip, get_deps

__all__ = ["throttle_log_in"]


def throttle_log_in(request: Request, username: str) -> None:
    limiter: limits.strategies.RateLimiter = request.app.state.login_limiter
    per_minute = limits.RateLimitItemPerMinute(get_deps(request).settings
                                               .login_attempts_per_minute)
    name = username.strip().lower()
    for key in (f"user:{name}", f"ip:{client_ip(request)}"):
        if not limiter.hit(per_minute, "login", key):
            raise TooManyRequests("too many log-in attempts; wait a minute and try again",
                                  retry_after=60, code="login_throttled")

"""Typed errors a user can cause. Each has a stable ``code`` that the API puts in its
problem+json answers and the CLI prints; the HTTP status is a hint for the web edge."""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "Conflict",
    "FairslotError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "QuotaExceeded",
    "TooManyRequests",
    "Unauthenticated",
]


class FairslotError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request refused"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.extra = extra


class InvalidInput(FairslotError):
    code = "invalid_input"
    status = 422
    title = "Invalid input"


class NotFound(FairslotError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(FairslotError):
    code = "conflict"
    status = 409
    title = "Conflict"


class Forbidden(FairslotError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class Unauthenticated(FairslotError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class QuotaExceeded(FairslotError):
    code = "quota_exceeded"
    status = 409
    title = "Quota exceeded"


class TooManyRequests(FairslotError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None,
                 **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)
        self.retry_after = retry_after

"""The guard's refusals, as the platform's typed errors.

Each carries ``headers`` (``Retry-After``, ``RateLimit-*``) that the problem+json handler
copies onto the response, and puts anything the client needs to continue (a fresh
challenge) in ``extra``, which the handler renders as extension members.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fairslot.domain.errors import FairslotError, Forbidden, TooManyRequests

__all__ = [
    "ActionTokenRefused",
    "Blocked",
    "BookingInProgress",
    "ChallengeRequired",
    "GuardError",
    "Overloaded",
    "RateLimited",
]


class GuardError(FairslotError):
    """Mixin-free marker: every guard refusal has response headers."""

    headers: dict[str, str]

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None,
                 code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)
        self.headers = dict(headers or {})


class RateLimited(TooManyRequests):
    """A limit is used up. ``Retry-After`` and the ``RateLimit-*`` headers say for how
    long."""

    code: ClassVar[str] = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, headers: dict[str, str],
                 code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, code=code, **extra)
        self.headers = {"Retry-After": str(retry_after), **headers}


class BookingInProgress(TooManyRequests):
    """The account already has a booking request in flight (one at a time)."""

    code: ClassVar[str] = "booking_in_progress"

    def __init__(self, detail: str, *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)
        self.headers = {"Retry-After": str(retry_after)}


class ChallengeRequired(Forbidden):
    """Solve the proof of work in ``extra["challenge"]`` and send the result again in the
    ``X-Fairslot-Pow`` header (or the form field ``altcha``)."""

    code: ClassVar[str] = "challenge_required"
    title: ClassVar[str] = "Verification required"

    def __init__(self, detail: str, *, challenge: dict[str, Any], code: str | None = None,
                 **extra: Any) -> None:
        super().__init__(detail, code=code, challenge=challenge, **extra)
        self.headers: dict[str, str] = {"Cache-Control": "no-store"}


class ActionTokenRefused(Forbidden):
    """The action token is missing, forged, spent, too fresh or too old. ``code`` says
    which (``token_missing``, ``token_invalid``, ``token_replayed``, ``token_too_early``,
    ``token_expired``)."""

    code: ClassVar[str] = "token_invalid"
    title: ClassVar[str] = "Please go back and try again"

    def __init__(self, detail: str, *, code: str, **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)
        self.headers: dict[str, str] = {"Cache-Control": "no-store"}


class Blocked(Forbidden):
    """A decision blocks this requester (an address, prefix, device, account, patient or
    payer of it) until ``Retry-After`` seconds from now."""

    code: ClassVar[str] = "blocked"
    title: ClassVar[str] = "Access suspended"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers: dict[str, str] = {"Retry-After": str(retry_after),
                                        "Cache-Control": "no-store"}
        self.retry_after = retry_after


class Overloaded(GuardError):
    """The worker is shedding load; this group is refused for a moment."""

    code: ClassVar[str] = "overloaded"
    status: ClassVar[int] = 503
    title: ClassVar[str] = "Busy, please retry shortly"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extra)
        self.retry_after = retry_after

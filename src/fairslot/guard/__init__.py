"""Request guard: trusted client IPs, rate limits, load shedding, proof of work, single-use
action tokens, device identity and guard levels (docs/guard.md).

The web layer builds one ``Guard`` from settings, calls ``fairslot.guard.fastapi.install``
and protects routes with ``Depends(guarded(group, ...))``.
"""

from __future__ import annotations

from fairslot.guard.errors import (
    ActionTokenRefused,
    BookingInProgress,
    ChallengeRequired,
    GuardError,
    Overloaded,
    RateLimited,
)
from fairslot.guard.events import GuardEvent, GuardEventSink, LoggingSink, NullSink
from fairslot.guard.policy import DEFAULT_LIMITS, GuardLevel, KeyKind, RouteGroup
from fairslot.guard.service import Guard, GuardPass, Requester

__all__ = [
    "DEFAULT_LIMITS",
    "ActionTokenRefused",
    "BookingInProgress",
    "ChallengeRequired",
    "Guard",
    "GuardError",
    "GuardEvent",
    "GuardEventSink",
    "GuardLevel",
    "GuardPass",
    "KeyKind",
    "LoggingSink",
    "NullSink",
    "Overloaded",
    "RateLimited",
    "Requester",
    "RouteGroup",
]

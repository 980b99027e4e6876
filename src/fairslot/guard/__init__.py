"""Request guard: trusted client IPs, rate limits, load shedding, proof of work, single-use
action tokens, server-minted device identity, log-in throttling, guard levels and
decisions about single requesters (docs/guard.md).

The web layer builds one ``Guard`` from settings, calls ``fairslot.guard.fastapi.install``
and protects routes with ``Depends(guarded(group, ...))``.
"""

from __future__ import annotations

from fairslot.guard.decisions import DecisionBook, DecisionKind, EntityDecision
from fairslot.guard.errors import (
    ActionTokenRefused,
    Blocked,
    BookingInProgress,
    ChallengeRequired,
    GuardError,
    Overloaded,
    RateLimited,
)
from fairslot.guard.events import GuardEvent, GuardEventSink, LoggingSink, NullSink
from fairslot.guard.ledger import MemoryLedger, RedisLedger, SqliteLedger, TokenLedger
from fairslot.guard.login import LoginAttempt, LoginThrottle
from fairslot.guard.policy import DEFAULT_LIMITS, GuardLevel, KeyKind, RouteGroup
from fairslot.guard.requester import GuardPass, Requester
from fairslot.guard.service import Guard

__all__ = [
    "DEFAULT_LIMITS",
    "ActionTokenRefused",
    "Blocked",
    "BookingInProgress",
    "ChallengeRequired",
    "DecisionBook",
    "DecisionKind",
    "EntityDecision",
    "Guard",
    "GuardError",
    "GuardEvent",
    "GuardEventSink",
    "GuardLevel",
    "GuardPass",
    "KeyKind",
    "LoggingSink",
    "LoginAttempt",
    "LoginThrottle",
    "MemoryLedger",
    "NullSink",
    "Overloaded",
    "RateLimited",
    "RedisLedger",
    "Requester",
    "RouteGroup",
    "SqliteLedger",
    "TokenLedger",
]

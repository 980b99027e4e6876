"""Every guard decision as a typed event, for monitoring and the event log.

The guard calls a ``GuardEventSink`` synchronously on the request path, so a sink must be
cheap and must not block (append to a queue, increment counters). Refusals and challenges
are reported one by one: they are the evidence monitoring needs and each one is already a
request we did not serve. Allows are aggregated: one event stands for
``guard_allow_event_every`` allows of a group (its ``count`` says how many), because a
write per served request would cost more than the guard itself.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from fairslot.logsafe import describe

__all__ = [
    "Decision",
    "GuardEvent",
    "GuardEventSink",
    "LoggingSink",
    "NullSink",
]

Decision = Literal["allow", "challenge", "deny"]

_log = logging.getLogger("fairslot.guard")


@dataclass(frozen=True, slots=True)
class GuardEvent:
    """One decision (or, for ``allow``, ``count`` of them).

    Identifiers are the platform's internal ids, never ID numbers, phones or names; patient
    and payer keys arrive already pseudonymised (``key_hash``) so an event can link
    requests without carrying the identifier itself.
    """

    at: dt.datetime
    decision: Decision
    reason: str
    """Stable code: ``ok``, ``held_for_review`` (allowed, under a hold decision),
    ``rate_limited``, ``login_backoff``, ``blocked`` (a decision), ``challenge_required``,
    ``challenge_invalid``, ``challenge_expired``, ``challenge_mismatch``,
    ``challenge_replayed``, ``token_missing``, ``token_invalid``, ``token_replayed``,
    ``token_too_early``, ``token_expired``, ``busy`` (another booking in flight),
    ``overloaded``."""
    group: str
    level: str
    client_ip: str
    account_id: str | None = None
    device_id: str | None = None
    key: str | None = None
    """Which key decided a refusal: ``ip``, ``prefix``, ``account``, ... (for ``blocked``,
    the kind of entity the decision names)."""
    key_hash: str | None = None
    """Pseudonymous value of that key (a keyed hash), to group refusals by requester."""
    limit: str | None = None
    """The limit that refused, e.g. ``20 per 1 minute``."""
    risk: int = 0
    degraded: bool = False
    """True while Redis is unreachable and limits are per process."""
    count: int = 1


class GuardEventSink(Protocol):
    def __call__(self, event: GuardEvent) -> None: ...


class NullSink:
    """Drops events: the default until the application connects its event log."""

    def __call__(self, event: GuardEvent) -> None:
        return None


class LoggingSink:
    """Writes refusals and challenges to the ``fairslot.guard.events`` logger at INFO and
    aggregated allows at DEBUG. Holds no PII: ids and pseudonymous hashes only."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("fairslot.guard.events")

    def __call__(self, event: GuardEvent) -> None:
        level = logging.DEBUG if event.decision == "allow" else logging.INFO
        if self._logger.isEnabledFor(level):
            self._logger.log(
                level,
                "guard %s reason=%s group=%s level=%s key=%s limit=%s count=%d",
                event.decision,
                event.reason,
                event.group,
                event.level,
                event.key,
                event.limit,
                event.count,
            )


def emit_safely(sink: GuardEventSink, event: GuardEvent, state: dict[str, bool]) -> None:
    """Call the sink; a failing sink must never turn into a failing request. Logged once."""
    try:
        sink(event)
    except Exception as exc:
        if not state.get("sink_failed"):
            state["sink_failed"] = True
            _log.error("guard event sink failed (%s); further failures are not logged",
                       describe(exc))

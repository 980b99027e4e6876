"""The operator's console figures: what the platform did in the last minutes, read from
the event log (so every worker's requests count, whichever worker serves the console)."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from typing import Any

from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import Forbidden
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = ["ConsoleFigures", "figures"]

WATCHERS = frozenset({Role.OPERATOR, Role.INVESTIGATOR, Role.ADMIN})
RATE_SECONDS = 10
"""Requests per second are averaged over this many seconds."""
SERIES_MINUTES = 30


@dataclasses.dataclass(frozen=True, slots=True)
class ConsoleFigures:
    at: dt.datetime
    requests_per_second: float
    refusals: dict[str, int]
    """Guard refusals in the last five minutes, by reason."""
    bookings_per_minute: list[int]
    cancellations_per_minute: list[int]
    """The last ``SERIES_MINUTES`` minutes, oldest first (the current minute last)."""
    entries: list[dict[str, Any]]
    """Open rounds: id, department, closes_at, live entries."""
    top_ips: list[tuple[str, int]]
    top_accounts: list[tuple[str, int]]
    """Most requests in the last minute."""

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(timespec="seconds"),
                "requests_per_second": round(self.requests_per_second, 2),
                "refusals": self.refusals,
                "bookings_per_minute": self.bookings_per_minute,
                "cancellations_per_minute": self.cancellations_per_minute,
                "entries": self.entries,
                "top_ips": [list(x) for x in self.top_ips],
                "top_accounts": [list(x) for x in self.top_accounts]}


def figures(uow: UnitOfWork, deps: Deps, account: Account) -> ConsoleFigures:
    if account.role not in WATCHERS:
        raise Forbidden("the console is for operators and investigators",
                        code="forbidden_role")
    now = deps.clock.now()
    events = uow.events
    requests = events.counts_since(["access"], now - dt.timedelta(seconds=RATE_SECONDS))
    refusals = collections.Counter(
        str(d.get("reason") or "refused")
        for d in events.details_since("guard.deny", now - dt.timedelta(minutes=5)))
    start = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=SERIES_MINUTES - 1)
    booked = [0] * SERIES_MINUTES
    cancelled = [0] * SERIES_MINUTES
    for kind, at in events.times_since(["booking.created", "booking.cancelled"], start):
        index = min(SERIES_MINUTES - 1, int((at - start).total_seconds() // 60))
        (booked if kind == "booking.created" else cancelled)[index] += 1
    rounds = uow.rounds.open_rounds(now)
    counts = uow.rounds.live_entry_counts([r.id for r in rounds])
    minute = now - dt.timedelta(minutes=1)
    return ConsoleFigures(
        at=now, requests_per_second=requests.get("access", 0) / RATE_SECONDS,
        refusals=dict(refusals.most_common(12)),
        bookings_per_minute=booked, cancellations_per_minute=cancelled,
        entries=[{"round": r.id, "department": r.department_id,
                  "closes_at": r.closes_at.isoformat(timespec="minutes"),
                  "entries": counts.get(r.id, 0)} for r in rounds],
        top_ips=events.top_since("ip", ["access"], minute),
        top_accounts=events.top_since("account_id", ["access"], minute))

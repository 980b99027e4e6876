"""No-show credit after the Beijing 114 model: within a rolling year, the 1st, 2nd and 3rd (and
every further) no-show suspends booking and entering draws for 30, 60 and 90 days.

A no-show is a booking neither attended nor cancelled in time. A cancellation after the
cut-off (default: less than 24 hours before the visit) is a *late cancellation*; by default
each one counts as a no-show, because to the next patient in line a slot freed too late to
be used is lost exactly as a no-show is. ``CreditPolicy.late_cancellations_per_offence``
makes that softer (k late cancellations make one offence) or switches it off (0).

The offence's number n is counted over the rolling window ending at the offence itself:
offences in (t - 365 days, t]. The suspension for offence n starts at its time t and lasts
``suspensions[min(n, len) - 1]``. Pure functions; "now" is always passed in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from fairslot.domain.errors import FairslotError

__all__ = [
    "CreditPolicy",
    "Offence",
    "OffenceKind",
    "Suspended",
    "Suspension",
    "check_not_suspended",
    "current_suspension",
    "is_late_cancellation",
    "offences",
]

_DAY = dt.timedelta(days=1)


class OffenceKind(StrEnum):
    NO_SHOW = "no_show"
    LATE_CANCELLATION = "late_cancellation"
    LAPSED_HOLDS = "lapsed_holds"
    """Slots held and left unpaid until they expired: holding costs the next patient the
    slot's best moment, so repeated lapses count like a no-show."""


@dataclass(frozen=True, slots=True)
class CreditPolicy:
    """The credit rule's settings; the defaults are the Beijing 114 tiers."""

    window: dt.timedelta = 365 * _DAY
    suspensions: tuple[dt.timedelta, ...] = (30 * _DAY, 60 * _DAY, 90 * _DAY)
    cancel_cutoff: dt.timedelta = dt.timedelta(hours=24)
    late_cancellations_per_offence: int = 1
    lapsed_holds_per_offence: int = 2

    def __post_init__(self) -> None:
        if not self.suspensions or any(s <= dt.timedelta(0) for s in self.suspensions):
            raise ValueError("suspensions must be a non-empty tuple of positive durations")
        if (self.window <= dt.timedelta(0) or self.late_cancellations_per_offence < 0
                or self.lapsed_holds_per_offence < 0):
            raise ValueError("window must be positive, the per-offence counts >= 0")


@dataclass(frozen=True, slots=True)
class Offence:
    """A penalised event: when it happened and what it was."""

    at: dt.datetime
    kind: OffenceKind = OffenceKind.NO_SHOW


@dataclass(frozen=True, slots=True)
class Suspension:
    """An active suspension: from ``since`` until ``until`` (exclusive), for offence ``nth``."""

    since: dt.datetime
    until: dt.datetime
    nth: int
    kind: OffenceKind

    @property
    def reason(self) -> str:
        what = {OffenceKind.NO_SHOW: "no-show",
                OffenceKind.LATE_CANCELLATION: "late cancellation",
                OffenceKind.LAPSED_HOLDS: "booked and not paid"}[self.kind]
        days = (self.until - self.since) // _DAY
        return (f"{_ordinal(self.nth)} offence within a year ({what} on "
                f"{self.since.date().isoformat()}): booking and entering draws are suspended "
                f"for {days} days, until {self.until.isoformat()}")


class Suspended(FairslotError):
    """Booking or entering refused because the patient is suspended for no-shows."""

    code: ClassVar[str] = "credit_suspended"
    status: ClassVar[int] = 403
    title: ClassVar[str] = "Booking suspended"

    def __init__(self, detail: str, *, until: dt.datetime, reason: str,
                 code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code=code, until=until.isoformat(), **extra)
        self.until = until
        self.reason = reason


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _aware(when: dt.datetime, name: str) -> dt.datetime:
    if when.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return when


def is_late_cancellation(cancelled_at: dt.datetime, visit_at: dt.datetime,
                         policy: CreditPolicy | None = None) -> bool:
    """True when a cancellation comes less than ``policy.cancel_cutoff`` before the visit."""
    policy = policy or CreditPolicy()
    return (_aware(visit_at, "visit_at") - _aware(cancelled_at, "cancelled_at")
            < policy.cancel_cutoff)


def _every_kth(times: Iterable[dt.datetime], k: int, kind: OffenceKind,
               policy: CreditPolicy) -> list[Offence]:
    """The k-th, 2k-th, ... event within the rolling window, each an offence at its time."""
    found: list[Offence] = []
    if not k:
        return found
    counted: list[dt.datetime] = []  # events not yet turned into an offence
    for t in sorted(_aware(t, "event time") for t in times):
        counted = [c for c in counted if c > t - policy.window]
        counted.append(t)
        if len(counted) == k:
            found.append(Offence(t, kind))
            counted = []
    return found


def offences(no_shows: Iterable[dt.datetime], late_cancellations: Iterable[dt.datetime] = (),
             policy: CreditPolicy | None = None,
             lapsed_holds: Iterable[dt.datetime] = ()) -> list[Offence]:
    """Turn a patient's penalised events into offences, in time order.

    Every no-show is an offence. Late cancellations and lapsed (unpaid, expired) holds count
    per the policy: with k = ``late_cancellations_per_offence`` (or
    ``lapsed_holds_per_offence``) the k-th, 2k-th, ... within the rolling window is an
    offence at its own time; k = 0 ignores them."""
    policy = policy or CreditPolicy()
    found = [Offence(_aware(t, "no-show time"), OffenceKind.NO_SHOW) for t in no_shows]
    found += _every_kth(late_cancellations, policy.late_cancellations_per_offence,
                        OffenceKind.LATE_CANCELLATION, policy)
    found += _every_kth(lapsed_holds, policy.lapsed_holds_per_offence,
                        OffenceKind.LAPSED_HOLDS, policy)
    return sorted(found, key=lambda o: o.at)


def current_suspension(events: Iterable[Offence | dt.datetime], now: dt.datetime,
                       policy: CreditPolicy | None = None) -> Suspension | None:
    """The suspension in force at ``now``, or ``None``.

    ``events`` are offences (a bare datetime is a no-show); events after ``now`` are ignored.
    If several suspensions overlap, the one that ends last is reported."""
    policy = policy or CreditPolicy()
    now = _aware(now, "now")
    past = sorted(
        (e if isinstance(e, Offence) else Offence(_aware(e, "offence time")) for e in events),
        key=lambda o: o.at,
    )
    past = [o for o in past if o.at <= now]
    best: Suspension | None = None
    for index, offence in enumerate(past):
        nth = sum(1 for o in past[: index + 1] if o.at > offence.at - policy.window)
        length = policy.suspensions[min(nth, len(policy.suspensions)) - 1]
        until = offence.at + length
        if until > now and (best is None or until > best.until):
            best = Suspension(since=offence.at, until=until, nth=nth, kind=offence.kind)
    return best


def check_not_suspended(events: Iterable[Offence | dt.datetime], now: dt.datetime,
                        policy: CreditPolicy | None = None) -> None:
    """Raise ``Suspended`` (code ``credit_suspended``) if a suspension is in force at ``now``."""
    suspension = current_suspension(events, now, policy)
    if suspension is not None:
        raise Suspended(suspension.reason, until=suspension.until, reason=suspension.reason)

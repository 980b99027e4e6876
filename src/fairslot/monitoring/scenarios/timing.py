"""Timing scenarios: actions faster than a person can take them. A booking confirmed within
a second or two of its screen, a slot taken within two seconds of opening, booking screens
collected before the session is even released, a waitlist offer paid before anyone could
have read it. One such moment can be luck; the same account or device doing it again is
software."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.scenarios.base import Entity, Finding, Platform, Scenario, graded, span
from fairslot.monitoring.windows import ADD, Op, Window

__all__ = ["EarlyTokens", "FastAction", "ReleaseSnipe", "WaitlistFastAccept"]


class _Repeated(Scenario):
    """Counts qualifying events per account and per device; fires at ``times``."""

    keys: tuple[str, ...] = ("account", "device")

    def __init__(self, times: int, seconds: int, platform: Platform) -> None:
        self.times = times
        self.quiet_below = times
        self.platform = platform
        self.window = Window(self.name, seconds)

    def windows(self) -> Sequence[Window]:
        return (self.window,)

    def qualifies(self, event: MonitorEvent) -> float | None:
        """The figure that makes the event count (seconds), or None."""
        raise NotImplementedError

    def member(self, event: MonitorEvent) -> str:
        return event.id

    def describe(self, figure: float, event: MonitorEvent) -> str:
        raise NotImplementedError

    def evidence(self, event: MonitorEvent) -> dict[str, Any]:
        """Extra figures of the qualifying event for the finding's evidence."""
        return {}

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if self.platform.owns(event) or self.qualifies(event) is None:
            return False
        planned = False
        for name in self.keys:
            key = getattr(event, name)
            if key is not None:
                ops.append((ADD, self.window, f"{name}:{key}", self.member(event), event.ts,
                            0))
                planned = True
        return planned

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        figure = self.qualifies(event)
        assert figure is not None
        index = start
        for name in self.keys:
            key = getattr(event, name)
            if key is None:
                continue
            count = int(results[index])
            index += 1
            if count < self.times:
                continue
            related = tuple(Entity(other, getattr(event, other)) for other in self.keys
                            if other != name and getattr(event, other) is not None)
            out.append(Finding(
                self.name, graded(count, self.times, high=2.5), Entity(name, key),
                f"{name} {key}: {count} times in {span(self.window.seconds)}, "
                f"the last {self.describe(figure, event)}",
                {"times": count, "last_s": round(figure, 3), "threshold": self.times,
                 "window_s": self.window.seconds, **self.evidence(event)}, event,
                related=related))


class FastAction(_Repeated):
    """Booking, entering or paying within ``person_seconds`` of the screen that leads to it
    (the action token's age, which the platform puts in ``screen_age_s``)."""

    name = "fast_action"
    tactics = ("T1", "T2")
    kinds = frozenset({"booking.created", "booking.paid", "entry.created"})
    title = "actions confirmed faster than a person reads the screen"

    def __init__(self, person_seconds: float, times: int, seconds: int,
                 platform: Platform) -> None:
        super().__init__(times, seconds, platform)
        self.person_seconds = person_seconds

    def thresholds(self) -> dict[str, Any]:
        return {"screen_to_action_s": self.person_seconds, "times": self.times,
                "window_s": self.window.seconds}

    def qualifies(self, event: MonitorEvent) -> float | None:
        age = event.detail.get("screen_age_s")
        if age is None:
            return None
        age = float(age)
        return age if age < self.person_seconds else None

    def describe(self, figure: float, event: MonitorEvent) -> str:
        return f"{figure:.2f} s after its screen"


class ReleaseSnipe(_Repeated):
    """Taking a slot within ``snipe_seconds`` of its release or of its re-opening: measured
    from the later of the session's release (``release_ts``) and the moment the slot taken
    last returned to the public pool (``freed_ts``: another booking cancelled, a hold or an
    offer lapsing). A slot the waitlist hands on never re-opens to the public and its offer
    is the platform's own booking, so the waitlist is no snipe."""

    name = "release_snipe"
    tactics = ("T1", "T2", "T9")
    kinds = frozenset({"booking.created"})
    title = "slots taken within a moment of their release"

    def __init__(self, snipe_seconds: float, times: int, seconds: int,
                 platform: Platform) -> None:
        super().__init__(times, seconds, platform)
        self.snipe_seconds = snipe_seconds

    def thresholds(self) -> dict[str, Any]:
        return {"after_release_s": self.snipe_seconds, "times": self.times,
                "window_s": self.window.seconds}

    @staticmethod
    def opened(event: MonitorEvent) -> tuple[float, bool] | None:
        """When the slot taken last opened to the public, and whether that was a
        re-opening rather than the session's release."""
        freed = event.detail.get("freed_ts")
        if freed is not None and (event.release_ts is None
                                  or float(freed) > event.release_ts):
            return float(freed), True
        return None if event.release_ts is None else (event.release_ts, False)

    def qualifies(self, event: MonitorEvent) -> float | None:
        opened = self.opened(event)
        if opened is None:
            return None
        after = event.ts - opened[0]
        return after if 0 <= after < self.snipe_seconds else None

    def evidence(self, event: MonitorEvent) -> dict[str, Any]:
        opened = self.opened(event)
        return {"from": "reopened" if opened is not None and opened[1] else "release"}

    def describe(self, figure: float, event: MonitorEvent) -> str:
        opened = self.opened(event)
        if opened is not None and opened[1]:
            return f"{figure:.2f} s after its slot re-opened"
        return f"{figure:.2f} s after release"


class EarlyTokens(_Repeated):
    """Booking screens (action tokens) collected ``early_seconds`` or more before the
    session's release, for several sessions or patients: loading the gun before release."""

    name = "early_tokens"
    tactics = ("T1",)
    kinds = frozenset({"screen.booking"})
    title = "booking screens collected before release"
    keys = ("account", "device", "ip")

    def __init__(self, early_seconds: float, times: int, seconds: int,
                 platform: Platform) -> None:
        super().__init__(times, seconds, platform)
        self.early_seconds = early_seconds

    def thresholds(self) -> dict[str, Any]:
        return {"before_release_s": self.early_seconds, "screens": self.times,
                "window_s": self.window.seconds}

    def member(self, event: MonitorEvent) -> str:
        # A person reloading one screen counts once; a bot loads one per target.
        return f"{event.session}:{event.patient}"

    def qualifies(self, event: MonitorEvent) -> float | None:
        if event.release_ts is None:
            return None
        before = event.release_ts - event.ts
        return before if before >= self.early_seconds else None

    def describe(self, figure: float, event: MonitorEvent) -> str:
        return f"{figure:.1f} s before release"


class WaitlistFastAccept(_Repeated):
    """A waitlist offer paid within ``read_seconds`` of being made: the notification has
    to reach the person, be read and the payment confirmed."""

    name = "waitlist_fast_accept"
    tactics = ("T1", "T4")
    kinds = frozenset({"booking.paid"})
    title = "waitlist offers accepted faster than a person reads"
    keys = ("account",)

    def __init__(self, read_seconds: float, times: int, seconds: int,
                 platform: Platform) -> None:
        super().__init__(times, seconds, platform)
        self.read_seconds = read_seconds

    def thresholds(self) -> dict[str, Any]:
        return {"offer_to_payment_s": self.read_seconds, "times": self.times,
                "window_s": self.window.seconds}

    def qualifies(self, event: MonitorEvent) -> float | None:
        since = event.detail.get("since_offer_s")
        if since is None:
            return None
        since = float(since)
        return since if since < self.read_seconds else None

    def describe(self, figure: float, event: MonitorEvent) -> str:
        return f"{figure:.1f} s after the offer"

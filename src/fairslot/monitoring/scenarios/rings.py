"""Ring scenarios: laundering a held slot to a buyer (T4), one identity booked across
unrelated departments (T5), and accounts that act in lockstep release after release (T8)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fairslot.monitoring.events import MonitorEvent, decode, encode
from fairslot.monitoring.scenarios.base import (
    Entity,
    Finding,
    Platform,
    Scenario,
    counted,
    span,
)
from fairslot.monitoring.windows import ADD, COOCCUR, RECENT, Op, Window

__all__ = ["IdentitySpread", "Launder", "Lockstep"]


class Launder(Scenario):
    """A cancellation followed within ``seconds`` by a booking of the same session for
    another patient (一退一抢): the holder lets go the moment the buyer's booking is ready.
    Waitlist offers and desk bookings are the platform's own and never count as the second
    half. The alert names the cancelling account; the booking account and both patients are
    in its related entities.

    Two pairs are not laundering on their own, because people do them: a desk or kiosk
    cancelling for the person at the counter, whose freed slot a stranger refreshing the page
    catches (a desk insider feeding a few catchers shows in the catchers' wallet,
    ``payer_fanout``, and in ``fairslot investigate``'s ``staff_release_caught``); and an
    account handing its own held slot to another of its own patients (a mother who cannot go
    and her brother who can). A ring that launders inside its own accounts acts for many
    patients and meets ``fanout_account``.

    Either half may reach the monitor first (a redelivered cancellation comes after the
    booking it enabled), so a booking looks back for cancellations and a cancellation looks
    ahead for bookings."""

    name = "launder"
    tactics = ("T4",)
    kinds = frozenset({"booking.cancelled", "booking.created"})
    title = "a cancelled slot re-booked at once for another patient"

    def __init__(self, seconds: float, platform: Platform) -> None:
        self.seconds = seconds
        self.platform = platform
        self.cancels = Window("launder_cancels", seconds)
        self.bookings = Window("launder_bookings", seconds)

    def windows(self) -> Sequence[Window]:
        return (self.cancels, self.bookings)

    def thresholds(self) -> dict[str, Any]:
        return {"cancel_to_booking_s": self.seconds}

    @staticmethod
    def _cancel(event: MonitorEvent) -> str:
        return f"{event.account or ''}|{event.patient or ''}|{event.booking or ''}"

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if event.session is None:
            return False
        if event.kind == "booking.cancelled":
            if self.platform.owns(event):
                return False
            ops.append((ADD, self.cancels, event.session, self._cancel(event), event.ts, 0))
            ops.append((RECENT, self.bookings, event.session, "", event.ts, 1))
            return True
        if self.platform.owns(event):
            return False
        # The whole booking is kept, so that a cancellation arriving later reports exactly
        # what the booking itself would have: the same finding, whichever half came last.
        ops.append((ADD, self.bookings, event.session, encode(event), event.ts, 0))
        ops.append((RECENT, self.cancels, event.session, "", event.ts, 0))
        return True

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        pairs: list[tuple[float, str, MonitorEvent]] = []
        if event.kind == "booking.cancelled":
            for member, _booked_at in results[start + 1]:
                pairs.append((event.ts, self._cancel(event), decode(member)))
        else:
            for member, cancelled_at in results[start + 1]:
                pairs.append((cancelled_at, member, event))
        # The closest pair in time: one finding per booking, however many cancellations.
        pairs.sort(key=lambda p: (p[2].ts - p[0], p[2].id))
        for cancelled_at, cancel, booking in pairs:
            holder, held, cancelled_booking = cancel.split("|")
            if not holder or held == (booking.patient or "") or holder == booking.account:
                continue
            gap = booking.ts - cancelled_at
            related = [Entity("account", booking.account)] if booking.account and \
                booking.account != holder else []
            related += [Entity("patient", p) for p in (held, booking.patient) if p]
            out.append(Finding(
                self.name, "high", Entity("account", holder),
                f"session {booking.session}: cancelled by account {holder} and booked "
                f"{gap:.1f} s later for another patient by account {booking.account}",
                {"gap_s": round(gap, 3), "threshold_s": self.seconds,
                 "cancelled_booking": cancelled_booking, "session": booking.session},
                booking, related=tuple(related)))
            if event.kind != "booking.cancelled":
                return


class IdentitySpread(Scenario):
    """One patient booked or entered in ``departments`` or more departments within
    ``seconds``: nobody has a headache and a foot ache at once. A fake identity held by a
    farm is booked wherever a slot sells."""

    name = "identity_spread"
    tactics = ("T5",)
    kinds = frozenset({"booking.created", "entry.created"})
    title = "one identity across unrelated departments"

    def __init__(self, departments: int, seconds: int, platform: Platform) -> None:
        self.departments = departments
        self.platform = platform
        self.window = Window(self.name, seconds)

    def windows(self) -> Sequence[Window]:
        return (self.window,)

    def thresholds(self) -> dict[str, Any]:
        return {"departments": self.departments, "window_s": self.window.seconds}

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if event.patient is None or event.department is None or self.platform.owns(event):
            return False
        ops.append((ADD, self.window, event.patient, event.department, event.ts,
                    self.departments))
        return True

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        count, departments = counted(results[start])
        if count < self.departments:
            return
        assert event.patient is not None
        related = (Entity("account", event.account),) if event.account else ()
        out.append(Finding(
            self.name, "high" if count >= self.departments + 2 else "medium",
            Entity("patient", event.patient),
            f"patient {event.patient} booked in {count} departments within "
            f"{span(self.window.seconds)} (threshold {self.departments})",
            {"departments": count, "window_s": self.window.seconds,
             "threshold": self.departments}, event, related=related, members=departments))


class Lockstep(Scenario):
    """Accounts booking (or entering) the same sessions in the same few seconds after each
    release, release after release. Each release-time action drops the account into a bucket
    of ``bucket_seconds`` after the release; two accounts that share buckets on ``sessions``
    or more releases, with a Jaccard similarity of at least ``similarity`` over the releases
    each took part in, move together. A bucket crowded beyond ``max_bucket`` accounts is
    skipped: a moment everybody shares says nothing about who is together."""

    name = "lockstep"
    tactics = ("T8",)
    kinds = frozenset({"booking.created", "entry.created"})
    title = "accounts acting in lockstep across releases"

    def __init__(self, bucket_seconds: float, release_seconds: float, sessions: int,
                 similarity: float, max_bucket: int, seconds: int,
                 platform: Platform) -> None:
        self.bucket_seconds = bucket_seconds
        self.release_seconds = release_seconds
        self.sessions = sessions
        self.similarity = similarity
        self.max_bucket = max_bucket
        self.platform = platform
        self.buckets = Window("lockstep_bucket", release_seconds + 60)
        self.own = Window("lockstep_sessions", seconds)
        self.pairs = Window("lockstep_pairs", seconds)

    def windows(self) -> Sequence[Window]:
        return (self.buckets, self.own, self.pairs)

    def thresholds(self) -> dict[str, Any]:
        return {"bucket_s": self.bucket_seconds, "release_s": self.release_seconds,
                "sessions": self.sessions, "similarity": self.similarity,
                "max_bucket": self.max_bucket, "window_s": self.own.seconds}

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if (event.account is None or event.session is None or event.release_ts is None
                or self.platform.owns(event)):
            return False
        after = event.ts - event.release_ts
        if not 0 <= after < self.release_seconds:
            return False
        bucket = int(after // self.bucket_seconds)
        ops.append((COOCCUR, self.buckets, f"{event.session}:{bucket}", event.account,
                    event.ts, self.own, self.pairs, event.session, self.max_bucket))
        return True

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        own, matches = results[start]
        partners: list[tuple[str, int, float]] = []
        for other, shared, theirs in matches:
            if shared < self.sessions:
                continue
            union = own + theirs - shared
            similarity = shared / union if union > 0 else 0.0
            if similarity >= self.similarity:
                partners.append((other, shared, similarity))
        if not partners:
            return
        assert event.account is not None
        partners.sort(key=lambda p: (-p[1], p[0]))
        best = partners[0]
        out.append(Finding(
            self.name, "high" if len(partners) >= 2 else "medium",
            Entity("account", event.account),
            f"account {event.account} acted within the same {self.bucket_seconds:.0f} s "
            f"after release as {len(partners)} other account(s) on up to {best[1]} "
            f"releases (similarity {best[2]:.2f})",
            {"partners": len(partners), "shared_releases": best[1],
             "similarity": round(best[2], 3), "own_releases": own,
             "threshold_releases": self.sessions}, event,
            related=tuple(Entity("account", p[0]) for p in partners[:20]),
            members=tuple(p[0] for p in partners[:20])))

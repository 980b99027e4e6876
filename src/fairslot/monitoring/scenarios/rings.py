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

    The booking must have taken the slot that was let go: when both events name their slot
    (the platform's own do), the two slots are the same; when the booking only says when
    its slot re-opened (``freed_ts``, as records exported with ``slot_freed_at`` do), that
    is the cancellation's moment. A booking of a session that still had free slots, seconds
    after someone else cancelled in it, is no pair: nothing was handed on. Records that say
    neither are paired by session, as before.

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

    # A re-opening stamped this close to a cancellation is that cancellation's: both are
    # written by the one transaction, with the one clock.
    SAME_MOMENT_S = 1.0

    @staticmethod
    def _cancel(event: MonitorEvent) -> str:
        slot = event.detail.get("slot")
        return (f"{event.account or ''}|{event.patient or ''}|{event.booking or ''}|"
                f"{'' if slot is None else slot}")

    @classmethod
    def _handed_on(cls, cancelled_at: float, slot: str, booking: MonitorEvent) -> bool:
        """Whether ``booking`` took the slot this cancellation let go, as far as the events
        can say."""
        taken = booking.detail.get("slot")
        if slot and taken is not None:
            return slot == str(taken)
        freed = booking.detail.get("freed_ts")
        if freed is not None:
            return abs(float(freed) - cancelled_at) <= cls.SAME_MOMENT_S
        return "slot" not in booking.detail

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
            holder, held, cancelled_booking, slot = cancel.split("|")
            if not holder or held == (booking.patient or "") or holder == booking.account:
                continue
            if not self._handed_on(cancelled_at, slot, booking):
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
    farm is booked wherever a slot sells.

    A patient with several conditions does see three departments in a fortnight (a
    referral, a scan, a follow-up), so three are not enough on their own. They are with a
    second sign of their own: ``fast_departments`` departments when, in at least
    ``fast_bookings`` of them, a booking for the patient was taken less than
    ``fast_seconds`` after its slot opened (``release_snipe``'s figure: beyond a person
    using the app). A person with three conditions books at a person's pace; an identity
    whose slots in different departments were each taken by a machine the instant they
    opened is held by someone who books for a living."""

    name = "identity_spread"
    tactics = ("T5",)
    kinds = frozenset({"booking.created", "entry.created"})
    title = "one identity across unrelated departments"

    def __init__(self, departments: int, seconds: int, platform: Platform, *,
                 fast_departments: int | None = None, fast_bookings: int = 2,
                 fast_seconds: float = 2.0) -> None:
        self.departments = departments
        self.fast_departments = min(departments, fast_departments or departments)
        self.fast_bookings = fast_bookings
        self.fast_seconds = fast_seconds
        self.platform = platform
        self.window = Window(self.name, seconds)
        self.fast = Window(f"{self.name}_fast", seconds)

    def windows(self) -> Sequence[Window]:
        return (self.window, self.fast)

    def thresholds(self) -> dict[str, Any]:
        return {"departments": self.departments, "window_s": self.window.seconds,
                "fast_departments": self.fast_departments,
                "fast_bookings": self.fast_bookings, "fast_s": self.fast_seconds}

    def _fast(self, event: MonitorEvent) -> bool:
        if event.release_ts is None:
            return False
        return 0 <= event.ts - event.release_ts < self.fast_seconds

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        if event.patient is None or event.department is None or self.platform.owns(event):
            return False
        ops.append((ADD, self.window, event.patient, event.department, event.ts,
                    self.fast_departments))
        # The departments where a booking was taken at a machine's speed: added when this
        # one was, else only read.
        if self._fast(event):
            ops.append((ADD, self.fast, event.patient, event.department, event.ts,
                        self.fast_bookings))
        else:
            ops.append((RECENT, self.fast, event.patient, "", event.ts, 0))
        return True

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        count, departments = counted(results[start])
        if count < self.fast_departments:
            return
        fast_result = results[start + 1]
        if isinstance(fast_result, list):
            fast = len({member for member, _ in fast_result})
        else:
            fast, _ = counted(fast_result)
        alone = count >= self.departments
        if not alone and fast < self.fast_bookings:
            return
        assert event.patient is not None
        related = (Entity("account", event.account),) if event.account else ()
        if alone:
            summary = (f"patient {event.patient} booked in {count} departments within "
                       f"{span(self.window.seconds)} (threshold {self.departments})")
        else:
            summary = (f"patient {event.patient} booked in {count} departments within "
                       f"{span(self.window.seconds)}, in {fast} of them less than "
                       f"{self.fast_seconds:g} s after the slot opened (threshold "
                       f"{self.fast_departments} departments, {self.fast_bookings} taken "
                       f"that fast)")
        out.append(Finding(
            self.name, "high" if count >= self.departments + 2 else "medium",
            Entity("patient", event.patient), summary,
            {"departments": count, "window_s": self.window.seconds,
             "threshold": self.departments, "fast_departments": fast,
             "fast_threshold": self.fast_bookings, "fast_s": self.fast_seconds,
             "rule": "departments" if alone else "departments_and_speed"},
            event, related=related, members=departments))


class Lockstep(Scenario):
    """Accounts booking (or entering) the same sessions in the same few seconds after each
    release, release after release. Each release-time action drops the account into a bucket
    of ``bucket_seconds`` after the release; two accounts that share buckets on ``sessions``
    or more releases, with a Jaccard similarity of at least ``similarity`` over the releases
    each took part in, move together. A bucket crowded beyond ``max_bucket`` accounts is
    skipped: a moment everybody shares says nothing about who is together.

    A crowd is also judged as a group: a session of a few slots lets only some of its
    members in each time, so two of them may share only two releases, yet the account is
    there with the same faces again and again. An account in the same bucket as at least
    ``group`` other accounts, each of which it already shared a bucket with on another
    release (``group_sessions`` shared releases in all), is named with them. Two or three
    relatives or friends with accounts of their own may book together (a family needs
    one account for up to five patients); ``group`` + 1 accounts landing in the same few
    seconds of two releases together is a crowd."""

    name = "lockstep"
    tactics = ("T8",)
    kinds = frozenset({"booking.created", "entry.created"})
    title = "accounts acting in lockstep across releases"

    def __init__(self, bucket_seconds: float, release_seconds: float, sessions: int,
                 similarity: float, max_bucket: int, seconds: int,
                 platform: Platform, *, group: int = 0, group_sessions: int = 2) -> None:
        self.bucket_seconds = bucket_seconds
        self.group = group
        self.group_sessions = group_sessions
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
                "max_bucket": self.max_bucket, "window_s": self.own.seconds,
                "group": self.group, "group_sessions": self.group_sessions}

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
        crowd: list[tuple[str, int]] = []
        for other, shared, theirs in matches:
            if self.group and shared >= self.group_sessions:
                crowd.append((other, shared))
            if shared < self.sessions:
                continue
            union = own + theirs - shared
            similarity = shared / union if union > 0 else 0.0
            if similarity >= self.similarity:
                partners.append((other, shared, similarity))
        assert event.account is not None
        bucket = f"{self.bucket_seconds:.0f} s"
        if partners:
            partners.sort(key=lambda p: (-p[1], p[0]))
            best = partners[0]
            out.append(Finding(
                self.name, "high" if len(partners) >= 2 else "medium",
                Entity("account", event.account),
                f"account {event.account} acted within the same {bucket} after release as "
                f"{len(partners)} other account(s) on up to {best[1]} releases (similarity "
                f"{best[2]:.2f})",
                {"partners": len(partners), "shared_releases": best[1],
                 "similarity": round(best[2], 3), "own_releases": own,
                 "threshold_releases": self.sessions}, event,
                related=tuple(Entity("account", p[0]) for p in partners[:20]),
                members=tuple(p[0] for p in partners[:20])))
        if self.group and len(crowd) >= self.group:
            crowd.sort(key=lambda p: (-p[1], p[0]))
            out.append(Finding(
                self.name, "high" if len(crowd) >= 2 * self.group else "medium",
                Entity("account", event.account),
                f"account {event.account} acted within the same {bucket} after release of "
                f"session {event.session} as {len(crowd)} other accounts, each of which it "
                f"had acted with in the same {bucket} of another release ({own} releases "
                f"of its own)",
                # Keys of their own: an alert folds both rules' figures together.
                {"group": len(crowd), "group_threshold": self.group,
                 "group_threshold_releases": self.group_sessions,
                 "own_releases": own, "session": event.session}, event,
                related=tuple(Entity("account", p[0]) for p in crowd[:20]),
                members=tuple(p[0] for p in crowd[:20])))

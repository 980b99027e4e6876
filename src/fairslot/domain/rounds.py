"""Release rounds and their entries as the services see them: plain, typed records.

A round gathers the draw-policy sessions of one department released at one moment; an entry
is one patient's request for up to three of its sessions, best first. The draw itself is in
``fairslot.domain.draw``; what happens around it (open, enter, draw, waitlist) is in the
release services."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

__all__ = ["Entry", "EntryOutcome", "Round", "RoundKind", "RoundStatus"]


class RoundStatus(enum.StrEnum):
    OPEN = "open"
    """Taking entries until ``closes_at``; after that, waiting to be drawn."""
    DRAWN = "drawn"


class RoundKind(enum.StrEnum):
    """Why a round exists; every kind is a request window and a draw among who asked."""

    RELEASE = "release"
    """A draw session's release: the window opens ``draw_window_hours`` before it."""
    LATE = "late"
    """A draw session scheduled too late for its own window: a fresh, shorter window."""
    LEFTOVER = "leftover"
    """Slots that freed up (or that a draw left) with nobody waiting: a short window."""
    OPENING = "opening"
    """A hot fcfs doctor's release: a short window from the release time, then a draw."""

    @property
    def short(self) -> bool:
        """The slots of a short round are held back from booking (see ``reserved``)."""
        return self in (RoundKind.LEFTOVER, RoundKind.OPENING)


class EntryOutcome(enum.StrEnum):
    WON = "won"
    WAITLIST = "waitlist"
    OFFERED = "offered"
    """A waitlisted entry that was offered a freed slot (a held booking)."""
    PASSED = "passed"
    """Left the waitlist: took an offer's booking, let it lapse, or could not be offered."""
    EXCLUDED = "excluded"
    """Not in the draw: ineligible as of the close (see the round document's exclusions)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Round:
    id: int
    department_id: int
    opens_at: dt.datetime
    closes_at: dt.datetime
    status: RoundStatus
    seed: str
    """Hex of the secret seed; only ever shown once revealed (``revealed_seed``)."""
    commitment: str
    entries_digest: str | None
    beacon: str
    beacon_source: str
    revealed_seed: str | None
    drawn_at: dt.datetime | None
    entries_count: int
    kind: RoundKind = RoundKind.RELEASE

    def is_open_at(self, now: dt.datetime) -> bool:
        return self.status is RoundStatus.OPEN and self.opens_at <= now < self.closes_at


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    id: int
    round_id: int
    ref: str
    patient_id: int
    account_id: int
    choices: tuple[int, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
    withdrawn: bool
    idempotency_key: str | None
    outcome: EntryOutcome | None
    position: int | None
    won_session_id: int | None
    won_rank: int | None
    booking_id: int | None

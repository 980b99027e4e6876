"""Rounds: opened with a committed seed when their window opens, drawn once when it
closes, published for anyone to verify (see docs/draw.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from fairslot.domain import draw
from fairslot.domain.booking import Booking, Channel
from fairslot.domain.errors import Conflict, FairslotError, NotFound
from fairslot.domain.rounds import Entry, EntryOutcome, Round, RoundKind, RoundStatus
from fairslot.domain.schedule import Session
from fairslot.services import rules, waitlist
from fairslot.services.deps import Deps, Units
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "RoundSession",
    "RoundView",
    "draw_due_rounds",
    "draw_round",
    "export_round_document",
    "frozen_entries",
    "open_due_rounds",
    "open_rounds",
    "round_view",
    "set_beacon",
]


@dataclasses.dataclass(frozen=True)
class RoundSession:
    session: Session
    capacity: int
    first_choice_entries: int
    cancellation_rate: float | None


@dataclasses.dataclass(frozen=True)
class RoundView:
    round: Round
    sessions: list[RoundSession]
    entries: list[Entry]
    """The published entry list (pseudonymous refs), once drawn."""
    entries_count: int

    @property
    def id(self) -> int:
        return self.round.id


# --- the window opens ---------------------------------------------------------------------

def open_due_rounds(units: Units, deps: Deps) -> int:
    """Create the round (seed, commitment, capacities, beacon source) for every draw session
    whose window has opened. A session joins an open round of its department and release
    time only while nobody has entered it; otherwise it gets a round of its own, so what a
    round publishes at open never changes under its entrants."""
    now = deps.clock.now()
    window = dt.timedelta(hours=deps.settings.draw_window_hours)
    late = dt.timedelta(minutes=deps.settings.late_window_minutes)
    short = dt.timedelta(minutes=deps.settings.request_window_minutes)
    created = 0
    with units() as uow:
        for session_id, release_at, department_id in uow.rounds.unrounded_draw_sessions(
                now + window, now):
            session = uow.schedule.session(session_id)
            assert session is not None
            kind, opens, closes = RoundKind.RELEASE, release_at - window, release_at
            if release_at < now + late and deps.settings.short_windows_enabled:
                # Scheduled too late for its own window (an extra clinic added at short
                # notice, or the scheduler was down): a fresh window from now, never a
                # draw at once among nobody.
                kind, opens, closes = RoundKind.LATE, now, max(release_at, now + late)
                closes = min(closes, session.starts_at)
                if closes - now < waitlist.MIN_WINDOW:
                    continue  # the visit is too close for any window: the desk serves it
            round_id, new = _round_for(uow, deps, department_id, kind, opens, closes)
            created += new
            # The capacity is what is free now: nothing can book a draw session's slots
            # before its draw, so this is the session's capacity unless staff intervened.
            uow.rounds.add_session(round_id, session_id,
                                   len(uow.schedule.unclaimed_slots(session_id)))
        # A hot doctor of an fcfs hospital: the release opens a short window, not a race.
        hot = (uow.rounds.unrounded_hot_fcfs_sessions(now + window, now)
               if deps.settings.short_windows_enabled else [])
        for session_id, release_at, department_id in hot:
            session = uow.schedule.session(session_id)
            assert session is not None
            closes = min(release_at + short, session.starts_at)
            round_id, new = _round_for(uow, deps, department_id, RoundKind.OPENING,
                                       release_at, closes)
            created += new
            free = uow.schedule.unclaimed_slots(session_id)
            uow.schedule.reserve_slots(free, waitlist.reserved(session))
            uow.rounds.add_session(round_id, session_id, len(free))
        uow.commit()
    return created


def _round_for(uow: UnitOfWork, deps: Deps, department_id: int, kind: RoundKind,
               opens: dt.datetime, closes: dt.datetime) -> tuple[int, int]:
    """The open round of this department, kind and close nobody has entered yet, or a new
    one (then the second value is 1). A late round is always a round of its own."""
    existing = None if kind is RoundKind.LATE else uow.rounds.joinable(
        department_id, closes, kind)
    if existing is not None:
        return existing.id, 0
    seed = deps.random.token_bytes(draw.SEED_BYTES)
    # Short windows draw at their close from the committed seed alone: waiting for an
    # operator to enter a beacon would outlast them.
    source = deps.settings.draw_beacon_source if kind is RoundKind.RELEASE else ""
    round_id = uow.rounds.create(
        department_id=department_id, opens_at=opens, closes_at=closes,
        status=RoundStatus.OPEN.value, seed=seed.hex(), commitment=draw.commitment(seed),
        beacon="", beacon_source=source, entries_count=0, kind=kind.value)
    uow.events.append("round.opened", deps.clock.now(),
                      detail={"round": round_id, "kind": kind.value})
    return round_id, 1


# --- the draw -----------------------------------------------------------------------------

def draw_due_rounds(units: Units, deps: Deps) -> int:
    with units() as uow:
        due = uow.rounds.due(deps.clock.now())
    done = 0
    for round_id in due:
        with units() as uow:
            if draw_round(uow, deps, round_id):
                done += 1
    return done


def draw_round(uow: UnitOfWork, deps: Deps, round_id: int) -> bool:
    """Run the round's draw exactly once. The round row is locked for the whole transaction
    (on PostgreSQL a second scheduler waits, then finds it drawn and does nothing)."""
    now = deps.clock.now()
    round_ = uow.rounds.get(round_id, for_update=True)
    if round_ is None or round_.status is not RoundStatus.OPEN or now < round_.closes_at:
        return False
    if round_.beacon_source and not round_.beacon:
        return False  # waiting for the named public value
    published = uow.rounds.capacities(round_id)
    single = next(iter(published)) if len(published) == 1 else None
    rows = []
    for r in uow.rounds.live_entries(round_id):
        # An entrant suspended since entering (a no-show elsewhere) is left out of the
        # frozen list, as the credit rule says; the draw then runs on who remains. So is,
        # in a short round, one who has meanwhile got a slot of its session another way.
        try:
            facts = rules.facts_for(uow, deps, r.patient_id, None,
                                    session_id=single if round_.kind.short else None)
            rules.check_credit(deps, facts)
            if facts.in_session:
                raise FairslotError("already booked in this session")
        except FairslotError:
            uow.rounds.update_entry(r.id, outcome=EntryOutcome.EXCLUDED.value)
            continue
        rows.append(r)
    entries = [draw.Entry(r.ref, tuple(str(c) for c in r.choices)) for r in rows]
    capacities = {str(sid): cap for sid, cap in published.items()}
    seed = bytes.fromhex(round_.seed)
    result = draw.run_draw(seed, entries, capacities, round_.beacon)
    by_ref = {r.ref: r for r in rows}
    order = {ref: n for n, ref in enumerate(draw.draw_order(seed, entries, round_.beacon))}
    # A short round's win is close to the visit: the offer's payment time, as for a
    # waitlist offer; never past the session's start.
    pay_for = dt.timedelta(minutes=deps.settings.waitlist_offer_minutes if round_.kind.short
                           else deps.settings.draw_payment_minutes)
    sessions = uow.schedule.sessions_by_id(list(published))
    won: dict[int, int] = {}
    for award in result.awards:
        row = by_ref[award.ref]
        session = sessions[int(award.session)]
        pay_by = min(now + pay_for, session.starts_at)
        booking = _hold(uow, now, session, row.patient_id, row.account_id, pay_by,
                        waitlist.reserved(session) if round_.kind.short else None)
        won[session.id or 0] = won.get(session.id or 0, 0) + 1
        uow.rounds.update_entry(row.id, outcome=EntryOutcome.WON.value,
                                position=order[award.ref], won_session_id=int(award.session),
                                won_rank=award.rank, booking_id=booking.id)
        uow.notifications.add(row.account_id, now, "draw.won",
                              f"Your entry {award.ref} won a slot (choice {award.rank}); "
                              f"pay by {pay_by.astimezone(deps.settings.zone):%m-%d %H:%M}.")
    for place, ref in enumerate(result.waitlist, start=1):
        row = by_ref[ref]
        uow.rounds.update_entry(row.id, outcome=EntryOutcome.WAITLIST.value,
                                position=order[ref])
        uow.notifications.add(row.account_id, now, "draw.waitlist",
                              f"Your entry {ref} is on the waitlist, place {place}; freed "
                              "slots are offered in this order.")
    # Slots nobody drew (fewer entries than slots). After a release round they go through
    # a short window of their own (people who did not enter may want them now). After a
    # short round everybody who asked got one: they open to booking.
    for sid, capacity in published.items():
        session = sessions[sid]
        if round_.kind.short:
            left = uow.schedule.reserved_slots(sid, waitlist.reserved(session))
            waitlist.release_now(uow, session, left[:max(0, capacity - won.get(sid, 0))], now)
        elif left := uow.schedule.unclaimed_slots(sid):
            waitlist.open_short_round(uow, deps, session, left)
    uow.rounds.update(round_id, status=RoundStatus.DRAWN.value, drawn_at=now,
                      revealed_seed=seed.hex(), entries_digest=draw.entries_digest(entries),
                      entries_count=len(entries))
    uow.events.append("round.drawn", now, detail={
        "round": round_id, "entries": len(entries), "winners": len(result.winners)})
    uow.commit()
    return True


def _hold(uow: UnitOfWork, now: dt.datetime, session: Session, patient_id: int,
          account_id: int, pay_by: dt.datetime, reserved: dt.datetime | None) -> Booking:
    slot = uow.schedule.claim_for_draw(session.id or 0, reserved)
    if slot is None:  # capacity was checked by the draw; a missing slot is a bug
        raise RuntimeError(f"session {session.id} has no free slot for a draw winner")
    booking = Booking(session_id=session.id or 0, slot_id=slot.id, patient_id=patient_id,
                      account_id=account_id, fee_cents=session.fee_cents, created_at=now,
                      pay_by=pay_by, channel=Channel.DRAW)
    uow.bookings.add(booking)
    uow.flush()
    uow.events.append("booking.created", now, account_id=account_id, patient_id=patient_id,
                      session_id=session.id, booking_id=booking.id,
                      detail={"channel": Channel.DRAW.value, "slot": slot.id})
    return booking


# --- what the public and the patient see ---------------------------------------------------

def _get(uow: UnitOfWork, round_id: int) -> Round:
    round_ = uow.rounds.get(round_id)
    if round_ is None:
        raise NotFound("no such round", code="round_not_found")
    return round_


def round_view(uow: UnitOfWork, deps: Deps, round_id: int) -> RoundView:
    round_ = _get(uow, round_id)
    counts = uow.rounds.choice_counts(round_id)
    capacities = uow.rounds.capacities(round_id)
    found = uow.schedule.sessions_by_id(list(capacities))
    rates: dict[int, float | None] = {}
    sessions = []
    for sid, capacity in capacities.items():
        session = found[sid]
        if session.doctor_id not in rates:
            rates[session.doctor_id] = _cancellation_rate(uow, session.doctor_id)
        sessions.append(RoundSession(session, capacity, counts.get(sid, 0),
                                     rates[session.doctor_id]))
    drawn = round_.status is RoundStatus.DRAWN
    entries = [e for e in uow.rounds.all_entries(round_id)
               if not e.withdrawn and e.outcome is not EntryOutcome.EXCLUDED] if drawn else []
    return RoundView(round_, sessions, entries,
                     round_.entries_count if drawn else sum(counts.values()))


def open_rounds(uow: UnitOfWork, deps: Deps) -> list[RoundView]:
    return [round_view(uow, deps, r.id) for r in uow.rounds.open_rounds(deps.clock.now())]


def _cancellation_rate(uow: UnitOfWork, doctor_id: int) -> float | None:
    """Share of this doctor's past bookings that were cancelled or expired: how often a slot
    frees up, so a waitlisted patient can judge their chances (the touts' information gap)."""
    counts = uow.rounds.cancellation_counts(doctor_id)
    total = sum(counts.values())
    if total < 20:
        return None
    freed = sum(counts.get(s, 0) for s in ("cancelled", "expired", "refunded"))
    return round(freed / total, 3)


def frozen_entries(
    uow: UnitOfWork, round_id: int
) -> tuple[list[Entry], tuple[draw.Entry, ...], dict[str, int]]:
    """A round's entry list as the draw takes it (not withdrawn, not excluded), with the
    rows it came from and the sessions' published capacities."""
    rows = [e for e in uow.rounds.all_entries(round_id)
            if not e.withdrawn and e.outcome is not EntryOutcome.EXCLUDED]
    entries = tuple(draw.Entry(e.ref, tuple(str(c) for c in e.choices)) for e in rows)
    capacities = {str(sid): cap for sid, cap in uow.rounds.capacities(round_id).items()}
    return rows, entries, capacities


def export_round_document(uow: UnitOfWork, deps: Deps, round_id: int) -> dict[str, Any]:
    """The published round in the documented format (docs/draw.md), for ``draw verify``."""
    round_ = _get(uow, round_id)
    if round_.status is not RoundStatus.DRAWN or round_.revealed_seed is None:
        raise Conflict("the round is not drawn yet; its seed stays secret until then",
                       code="round_not_drawn")
    rows, entries, capacities = frozen_entries(uow, round_id)
    # The result is what was stored at the draw, not a fresh computation: the verifier's
    # job is to compare the two.
    placed = sorted((e for e in rows if e.position is not None), key=lambda e: e.position or 0)
    result = draw.DrawResult(
        winners={e.ref: draw.Award(e.ref, str(e.won_session_id), e.won_rank or 0)
                 for e in placed if e.won_session_id is not None},
        waitlist=tuple(e.ref for e in placed if e.won_session_id is None))
    document = draw.Round(
        round_id=str(round_id), capacities=capacities, entries=entries,
        commitment=round_.commitment, entries_digest=round_.entries_digest or "",
        beacon=round_.beacon, seed=bytes.fromhex(round_.revealed_seed), result=result,
        parameters={"department_id": round_.department_id,
                    "opens_at": round_.opens_at.isoformat(),
                    "closes_at": round_.closes_at.isoformat(),
                    "beacon_source": round_.beacon_source,
                    "max_choices": draw.MAX_CHOICES})
    return draw.export_round(document)


def set_beacon(uow: UnitOfWork, deps: Deps, round_id: int, beacon: str) -> RoundView:
    """Enter the round's public beacon value: once, after the window has closed (so that it
    cannot have been known while entries came in), and only for a round that named its
    source when it opened. The draw waits for it."""
    now = deps.clock.now()
    round_ = uow.rounds.get(round_id, for_update=True)
    if round_ is None:
        raise NotFound("no such round", code="round_not_found")
    if not round_.beacon_source:
        raise Conflict("this round named no beacon source when it opened",
                       code="no_beacon_source")
    if round_.status is not RoundStatus.OPEN or round_.beacon:
        raise Conflict("the beacon of this round is already set", code="beacon_set")
    if now < round_.closes_at:
        raise Conflict("the beacon is entered after the window closes", code="window_open")
    uow.rounds.update(round_id, beacon=beacon)
    uow.events.append("round.beacon", now, detail={"round": round_id, "beacon": beacon})
    uow.commit()
    return round_view(uow, deps, round_id)

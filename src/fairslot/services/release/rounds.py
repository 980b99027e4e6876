"""Rounds: opened with a committed seed when their window opens, drawn once when it
closes, published for anyone to verify (see docs/draw.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any

from fairslot.domain import draw
from fairslot.domain.booking import Booking, Channel
from fairslot.domain.errors import Conflict, FairslotError, NotFound
from fairslot.domain.rounds import Entry, EntryOutcome, Round, RoundStatus
from fairslot.domain.schedule import Session
from fairslot.services import notifications, rules, waitlist
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
    created = 0
    with units() as uow:
        for session_id, release_at, department_id in uow.rounds.unrounded_draw_sessions(
                now + window, now):
            existing = uow.rounds.joinable(department_id, release_at)
            if existing is None:
                seed = deps.random.token_bytes(draw.SEED_BYTES)
                round_id = uow.rounds.create(
                    department_id=department_id, opens_at=release_at - window,
                    closes_at=release_at, status=RoundStatus.OPEN.value, seed=seed.hex(),
                    commitment=draw.commitment(seed), beacon="",
                    beacon_source=deps.settings.draw_beacon_source, entries_count=0)
                uow.events.append("round.opened", now, detail={"round": round_id})
                created += 1
            else:
                round_id = existing.id
            # The capacity is what is free now: nothing can book a draw session's slots
            # before its draw, so this is the session's capacity unless staff intervened.
            uow.rounds.add_session(round_id, session_id,
                                   len(uow.schedule.unclaimed_slots(session_id)))
        uow.commit()
    return created


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
    rows = []
    for r in uow.rounds.live_entries(round_id):
        # An entrant suspended since entering (a no-show elsewhere) is left out of the
        # frozen list, as the credit rule says; the draw then runs on who remains.
        try:
            rules.check_credit(deps, rules.facts_for(uow, deps, r.patient_id, None))
        except FairslotError:
            uow.rounds.update_entry(r.id, outcome=EntryOutcome.EXCLUDED.value)
            continue
        rows.append(r)
    entries = [draw.Entry(r.ref, tuple(str(c) for c in r.choices)) for r in rows]
    published = uow.rounds.capacities(round_id)
    capacities = {str(sid): cap for sid, cap in published.items()}
    seed = bytes.fromhex(round_.seed)
    result = draw.run_draw(seed, entries, capacities, round_.beacon)
    by_ref = {r.ref: r for r in rows}
    order = {ref: n for n, ref in enumerate(draw.draw_order(seed, entries, round_.beacon))}
    pay_by = now + dt.timedelta(minutes=deps.settings.draw_payment_minutes)
    sessions = uow.schedule.sessions_by_id(list(published))
    for award in result.awards:
        row = by_ref[award.ref]
        session = sessions[int(award.session)]
        booking = _hold(uow, now, session, row.patient_id, row.account_id, pay_by)
        uow.rounds.update_entry(row.id, outcome=EntryOutcome.WON.value,
                                position=order[award.ref], won_session_id=int(award.session),
                                won_rank=award.rank, booking_id=booking.id)
        notifications.notify(uow, deps, row.account_id, "draw.won",
                             patient_id=row.patient_id,
                             session=notifications.when(deps, session.starts_at),
                             pay_by=notifications.when(deps, pay_by))
    for place, ref in enumerate(result.waitlist, start=1):
        row = by_ref[ref]
        uow.rounds.update_entry(row.id, outcome=EntryOutcome.WAITLIST.value,
                                position=order[ref])
        notifications.notify(uow, deps, row.account_id, "draw.waitlist",
                             patient_id=row.patient_id, rank=place)
    # Slots nobody drew (fewer entries than slots) become leftovers.
    for sid in published:
        for slot_id in uow.schedule.unclaimed_slots(sid):
            uow.schedule.release_slot(slot_id, open_from=waitlist.leftover_time(deps, now))
    uow.rounds.update(round_id, status=RoundStatus.DRAWN.value, drawn_at=now,
                      revealed_seed=seed.hex(), entries_digest=draw.entries_digest(entries),
                      entries_count=len(entries))
    uow.events.append("round.drawn", now, detail={
        "round": round_id, "entries": len(entries), "winners": len(result.winners)})
    uow.commit()
    return True


def _hold(uow: UnitOfWork, now: dt.datetime, session: Session, patient_id: int,
          account_id: int, pay_by: dt.datetime) -> Booking:
    slot = uow.schedule.claim_free_slot(session.id or 0, now)
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


def check_enterable_now(uow: UnitOfWork, deps: Deps, round_id: int) -> None:
    """An entry screen issues its action token only while the round's window is open."""
    if not _get(uow, round_id).is_open_at(deps.clock.now()):
        raise Conflict("this round's request window is not open", code="window_closed")


def round_view(uow: UnitOfWork, deps: Deps, round_id: int) -> RoundView:
    round_ = _get(uow, round_id)
    counts = deps.views.get(("choices", round_id),
                            deps.settings.round_counts_cache_seconds
                            if round_.status is RoundStatus.OPEN else 0,
                            lambda: uow.rounds.choice_counts(round_id))
    capacities = uow.rounds.capacities(round_id)
    found = uow.schedule.sessions_by_id(list(capacities))
    rates: dict[int, float | None] = {}
    sessions = []
    for sid, capacity in capacities.items():
        session = found[sid]
        if session.doctor_id not in rates:
            rates[session.doctor_id] = deps.views.get(
                ("cancellations", session.doctor_id), 600,
                functools.partial(_cancellation_rate, uow, session.doctor_id))
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

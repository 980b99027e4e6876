"""Fair release: request windows, the verifiable draw, the ranked waitlist and leftovers.

A *round* gathers the draw-policy sessions of one department released at one moment. Its
window opens ``draw_window_hours`` before the release time; then fairslot draws a 32-byte
seed and publishes its SHA-256. Patients enter (one entry per patient, up to three ranked
sessions of the round) until the release time; the moment of entry does not matter. At the
release time the entry list is frozen, its digest published, the draw run
(``fairslot.domain.draw``), winners given held bookings and the seed revealed, all in one
transaction: a draw interrupted half-way has not happened at all, and the next scheduler
tick runs it again. Every losing entry is on the waitlist in draw order; a slot freed later
(cancelled, unpaid, an offer not taken) is offered to the next in line, never back to an
open pool, until nobody who wanted it is left — only then does it re-open first come first
served at an unpredictable moment."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from fairslot.bootstrap import Platform
from fairslot.domain import draw
from fairslot.domain.accounts import Account
from fairslot.domain.booking import Booking, Channel
from fairslot.domain.errors import Conflict, FairslotError, InvalidInput, NotFound
from fairslot.domain.identity import Identity
from fairslot.domain.schedule import ReleasePolicy
from fairslot.services import accounts, rules
from fairslot.services.context import RequestContext
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "EntryView",
    "RoundView",
    "draw_due_rounds",
    "draw_round",
    "enter",
    "enter_at_desk",
    "entry_by_key",
    "export_round_document",
    "frozen_entries",
    "my_entries",
    "on_slot_freed",
    "open_due_rounds",
    "round_view",
    "set_beacon",
    "withdraw",
]

_csprng = secrets.SystemRandom()


@dataclasses.dataclass(frozen=True)
class EntryView:
    id: int
    round_id: int
    ref: str
    patient_id: int
    choices: list[int]
    withdrawn: bool
    outcome: str | None
    position: int | None
    booking_id: int | None
    waitlist_ahead: int | None = None


@dataclasses.dataclass(frozen=True)
class RoundView:
    id: int
    department_id: int
    opens_at: dt.datetime
    closes_at: dt.datetime
    status: str
    commitment: str
    entries_digest: str | None
    seed: str | None
    beacon: str
    sessions: list[dict[str, Any]]
    entries: list[dict[str, Any]]
    entries_count: int


def _entry_view(row: Any) -> EntryView:
    return EntryView(id=row.id, round_id=row.round_id, ref=row.ref, patient_id=row.patient_id,
                     choices=[int(c) for c in row.choices], withdrawn=row.withdrawn,
                     outcome=row.outcome, position=row.position, booking_id=row.booking_id)


# --- the window opens ---------------------------------------------------------------------

def open_due_rounds(platform: Platform) -> int:
    """Create the round (seed, commitment, capacities, beacon source) for every draw session
    whose window has opened. A session joins an open round of its department and release
    time only while nobody has entered it; otherwise it gets a round of its own, so what a
    round publishes at open never changes under its entrants."""
    now = platform.clock.now()
    window = dt.timedelta(hours=platform.settings.draw_window_hours)
    created = 0
    with platform.uow() as uow:
        for row in uow.rounds.unrounded_draw_sessions(now + window, now, window):
            existing = uow.rounds.joinable(row.department_id, row.release_at)
            if existing is None:
                seed = draw.new_seed()
                round_id = uow.rounds.create(
                    department_id=row.department_id, opens_at=row.release_at - window,
                    closes_at=row.release_at, status="open", seed=seed.hex(),
                    commitment=draw.commitment(seed), beacon="",
                    beacon_source=platform.settings.draw_beacon_source, entries_count=0)
                uow.events.append("round.opened", now, detail={"round": round_id})
                created += 1
            else:
                round_id = existing.id
            # The capacity is what is free now: nothing can book a draw session's slots
            # before its draw, so this is the session's capacity unless staff intervened.
            uow.rounds.add_session(round_id, row.id,
                                   len(uow.schedule.unclaimed_slots(row.id)))
        uow.commit()
    return created


# --- entering -----------------------------------------------------------------------------

def enter(platform: Platform, account: Account, round_id: int, patient_id: int,
          choices: Sequence[int], ctx: RequestContext, *,
          idempotency_key: str | None = None) -> EntryView:
    """Enter (or change) a family patient's entry in the round. Idempotent: the same
    ``idempotency_key`` returns the entry it made the first time."""
    ranked = _ranked(choices)
    with platform.uow() as uow:
        if idempotency_key:
            again = uow.rounds.entry_by_key(account.id or 0, idempotency_key)
            if again is not None:
                return _entry_view(again)
        if not uow.patients.is_managed_by(patient_id, account.id or 0):
            raise NotFound("no such patient on this account", code="patient_not_found")
        return _enter(platform, uow, account, round_id, patient_id, ranked, ctx,
                      idempotency_key=idempotency_key)


def enter_at_desk(platform: Platform, staff: Account, round_id: int, id_number: str,
                  name: str, choices: Sequence[int], ctx: RequestContext) -> EntryView:
    """The registration desk enters a walk-in patient (often elderly, without a phone) in a
    draw after checking their identity card: the same one entry per patient, the same
    credit and per-patient quotas; the desk's own account is not quota-limited."""
    identity = Identity.parse(id_number, name)
    ranked = _ranked(choices)
    with platform.uow() as uow:
        patient = accounts.verified_patient(platform, uow, identity)
        return _enter(platform, uow, staff, round_id, patient.id or 0, ranked,
                      dataclasses.replace(ctx, channel=Channel.WINDOW), at_desk=True)


def _ranked(choices: Sequence[int]) -> list[int]:
    ranked = list(dict.fromkeys(int(c) for c in choices))
    if not 1 <= len(ranked) <= draw.MAX_CHOICES or len(ranked) != len(choices):
        raise InvalidInput(f"choose 1 to {draw.MAX_CHOICES} different sessions, best first",
                           code="invalid_choices")
    return ranked


def _enter(platform: Platform, uow: UnitOfWork, account: Account, round_id: int,
           patient_id: int, ranked: list[int], ctx: RequestContext, *,
           idempotency_key: str | None = None, at_desk: bool = False) -> EntryView:
    now = platform.clock.now()
    round_ = uow.rounds.get(round_id, for_update=True)
    if round_ is None:
        raise NotFound("no such round", code="round_not_found")
    if round_.status != "open" or not round_.opens_at <= now < round_.closes_at:
        raise Conflict("this round's request window is not open", code="window_closed")
    if not set(ranked) <= set(uow.rounds.sessions(round_id)):
        raise InvalidInput("every choice must be a session of this round",
                           code="invalid_choices")
    first = uow.schedule.session(ranked[0])
    assert first is not None
    existing = uow.rounds.entry_of(round_id, patient_id)
    if existing is None or existing.withdrawn:
        rules.check_may_book(platform, uow, None if at_desk else account, patient_id,
                             round_.department_id, first.starts_at)
    if existing is None:
        entry_id = uow.rounds.add_entry(
            round_id=round_id, ref=_new_ref(), patient_id=patient_id,
            account_id=account.id, choices=ranked, created_at=now, updated_at=now,
            withdrawn=False, idempotency_key=idempotency_key)
        kind = "entry.created"
    else:
        if existing.account_id != account.id:
            raise Conflict("this patient already entered this round from another account",
                           code="already_entered")
        entry_id = existing.id
        uow.rounds.update_entry(entry_id, choices=ranked, updated_at=now, withdrawn=False,
                                idempotency_key=idempotency_key or existing.idempotency_key)
        kind = "entry.changed"
    uow.events.append(kind, now, account_id=account.id, patient_id=patient_id,
                      detail={"round": round_id, "choices": ranked,
                              "channel": ctx.channel.value}, **ctx.event_fields())
    try:
        uow.flush()
    except IntegrityError as exc:
        raise Conflict("this entry was just made by another request; reload",
                       code="entry_conflict") from exc
    row = uow.rounds.entry(entry_id)
    uow.commit()
    return _entry_view(row)


def entry_by_key(platform: Platform, account: Account, key: str) -> EntryView | None:
    with platform.uow() as uow:
        row = uow.rounds.entry_by_key(account.id or 0, key)
    return None if row is None else _entry_view(row)


def _new_ref() -> str:
    # Pseudonyms are random, never derived from the identity: a published entry list must not
    # let anyone test whether a given person entered.
    return secrets.token_hex(8)


def withdraw(platform: Platform, account: Account, entry_id: int, ctx: RequestContext) -> None:
    now = platform.clock.now()
    with platform.uow() as uow:
        entry = uow.rounds.entry(entry_id)
        if entry is None or entry.account_id != account.id:
            raise NotFound("no such entry", code="entry_not_found")
        round_ = uow.rounds.get(entry.round_id, for_update=True)
        if round_ is None or round_.status != "open" or now >= round_.closes_at:
            raise Conflict("the request window has closed", code="window_closed")
        uow.rounds.update_entry(entry_id, withdrawn=True, updated_at=now)
        uow.events.append("entry.withdrawn", now, account_id=account.id,
                          patient_id=entry.patient_id, detail={"round": entry.round_id},
                          **ctx.event_fields())
        uow.commit()


def my_entries(platform: Platform, account: Account) -> list[EntryView]:
    with platform.uow() as uow:
        views = []
        for row in uow.rounds.entries_of_account(account.id or 0):
            ahead = None
            if row.outcome == "waitlist" and row.position is not None:
                ahead = uow.rounds.waitlist_ahead(row.round_id, row.position)
            views.append(dataclasses.replace(_entry_view(row), waitlist_ahead=ahead))
        return views


# --- the draw -----------------------------------------------------------------------------

def draw_due_rounds(platform: Platform) -> int:
    done = 0
    with platform.uow() as uow:
        due = uow.rounds.due(platform.clock.now())
    for round_id in due:
        if draw_round(platform, round_id):
            done += 1
    return done


def draw_round(platform: Platform, round_id: int) -> bool:
    """Run the round's draw exactly once. The round row is locked for the whole transaction
    (on PostgreSQL a second scheduler waits, then finds it drawn and does nothing)."""
    now = platform.clock.now()
    with platform.uow() as uow:
        round_ = uow.rounds.get(round_id, for_update=True)
        if round_ is None or round_.status != "open" or now < round_.closes_at:
            return False
        if round_.beacon_source and not round_.beacon:
            return False  # waiting for the named public value
        rows = []
        for r in uow.rounds.live_entries(round_id):
            # An entrant suspended since entering (a no-show elsewhere) is left out of the
            # frozen list, as the credit rule says; the draw then runs on who remains.
            try:
                rules.check_credit(platform, uow, r.patient_id)
            except FairslotError:
                uow.rounds.update_entry(r.id, outcome="excluded")
                continue
            rows.append(r)
        entries = [draw.Entry(r.ref, tuple(str(c) for c in r.choices)) for r in rows]
        published = uow.rounds.capacities(round_id)
        session_ids = list(published)
        capacities = {str(sid): cap for sid, cap in published.items()}
        seed = bytes.fromhex(round_.seed)
        result = draw.run_draw(seed, entries, capacities, round_.beacon)
        by_ref = {r.ref: r for r in rows}
        order = {ref: n for n, ref in enumerate(draw.draw_order(seed, entries, round_.beacon))}
        pay_by = now + dt.timedelta(minutes=platform.settings.draw_payment_minutes)
        for award in result.awards:
            row = by_ref[award.ref]
            account = uow.accounts.get(row.account_id)
            session = uow.schedule.session(int(award.session))
            assert account is not None and session is not None
            booking = _hold(uow, now, session.id or 0, session.fee_cents, row.patient_id,
                            row.account_id, pay_by, Channel.DRAW)
            uow.rounds.update_entry(row.id, outcome="won", position=order[award.ref],
                                    won_session_id=int(award.session), won_rank=award.rank,
                                    booking_id=booking.id)
            uow.rounds.notify(row.account_id, now, "draw.won",
                              f"Your entry {award.ref} won a slot (choice {award.rank}); "
                              f"pay by {pay_by.astimezone(platform.settings.zone):%m-%d %H:%M}.")
        for place, ref in enumerate(result.waitlist, start=1):
            row = by_ref[ref]
            uow.rounds.update_entry(row.id, outcome="waitlist", position=order[ref])
            uow.rounds.notify(row.account_id, now, "draw.waitlist",
                              f"Your entry {ref} is on the waitlist, place {place}; freed "
                              "slots are offered in this order.")
        # Slots nobody drew (fewer entries than slots) become leftovers.
        for sid in session_ids:
            for slot_id in uow.schedule.unclaimed_slots(sid):
                uow.schedule.release_slot(slot_id, open_from=_leftover_time(platform, now))
        uow.rounds.update(round_id, status="drawn", drawn_at=now, revealed_seed=seed.hex(),
                          entries_digest=draw.entries_digest(entries),
                          entries_count=len(entries))
        uow.events.append("round.drawn", now, detail={
            "round": round_id, "entries": len(entries), "winners": len(result.winners)})
        uow.commit()
    return True


def _hold(uow: UnitOfWork, now: dt.datetime, session_id: int, fee_cents: int,
          patient_id: int, account_id: int, pay_by: dt.datetime, channel: Channel) -> Booking:
    slot_id = uow.schedule.claim_free_slot(session_id, now)
    if slot_id is None:  # capacity was checked by the draw; a missing slot is a bug
        raise RuntimeError(f"session {session_id} has no free slot for a draw winner")
    booking = Booking(session_id=session_id, slot_id=slot_id, patient_id=patient_id,
                      account_id=account_id, fee_cents=fee_cents, created_at=now, pay_by=pay_by,
                      channel=channel)
    uow.bookings.add(booking)
    uow.flush()
    uow.events.append("booking.created", now, account_id=account_id, patient_id=patient_id,
                      session_id=session_id, booking_id=booking.id,
                      detail={"channel": channel.value, "slot": slot_id})
    return booking


# --- after the draw: the waitlist, then leftovers -----------------------------------------

def on_slot_freed(platform: Platform, uow: UnitOfWork, booking: Booking) -> None:
    """Where a slot goes when its booking ends early (cancelled, expired, offer not taken).

    fcfs sessions: back to the open pool. Draw sessions: to the next waitlisted entry that
    chose the session, as a held booking it must pay within the offer time; the slot never
    passes through an open pool, so no one can catch it as it is released (一退一抢). Only
    when no one is left does it re-open, at a random moment in the configured interval."""
    now = platform.clock.now()
    session = uow.schedule.session(booking.session_id)
    assert session is not None
    offered = uow.rounds.entry_for_booking(booking.id or 0)
    if offered is not None:
        uow.rounds.update_entry(offered.id, outcome="passed")
    if session.release_policy is not ReleasePolicy.DRAW:
        uow.schedule.release_slot(booking.slot_id)
        return
    round_id = uow.rounds.round_of_session(session.id or 0)
    if not platform.settings.waitlist_enabled or round_id is None:
        uow.schedule.release_slot(booking.slot_id, open_from=now)
        return
    if now < session.starts_at:
        while (nxt := uow.rounds.next_waiting(round_id, session.id or 0)) is not None:
            if uow.bookings.active_for(nxt.patient_id, session.id or 0) is not None:
                uow.rounds.update_entry(nxt.id, outcome="passed")
                continue
            try:  # an offer is a held booking: the same credit and quota rules apply
                rules.check_may_book(platform, uow, None, nxt.patient_id,
                                     round_department(uow, round_id), session.starts_at)
            except FairslotError:
                uow.rounds.update_entry(nxt.id, outcome="passed")
                continue
            deadline = min(now + dt.timedelta(minutes=platform.settings.waitlist_offer_minutes),
                           session.starts_at)
            offer = Booking(session_id=session.id or 0, slot_id=booking.slot_id,
                            patient_id=nxt.patient_id, account_id=nxt.account_id,
                            fee_cents=session.fee_cents, created_at=now, pay_by=deadline,
                            channel=Channel.WAITLIST)
            uow.bookings.add(offer)
            uow.flush()
            uow.rounds.update_entry(nxt.id, outcome="offered", booking_id=offer.id)
            uow.events.append("waitlist.offered", now, account_id=nxt.account_id,
                              patient_id=nxt.patient_id, session_id=session.id,
                              booking_id=offer.id, detail={"round": round_id})
            uow.rounds.notify(nxt.account_id, now, "waitlist.offer",
                              "A slot you asked for is free and held for you: pay by "
                              f"{deadline.astimezone(platform.settings.zone):%m-%d %H:%M} "
                              "to keep it.")
            return
    opens = _leftover_time(platform, now)
    uow.schedule.release_slot(booking.slot_id, open_from=opens)
    uow.events.append("slot.leftover", now, session_id=session.id,
                      detail={"round": round_id,
                              "opens_in_s": round((opens - now).total_seconds())})


def round_department(uow: UnitOfWork, round_id: int) -> int:
    round_ = uow.rounds.get(round_id)
    assert round_ is not None
    return int(round_.department_id)


def _leftover_time(platform: Platform, now: dt.datetime) -> dt.datetime:
    """When a slot nobody wanted re-opens: uniformly at random (CSPRNG) in the configured
    interval, so that no bot can sit waiting for the moment."""
    s = platform.settings
    delay = _csprng.uniform(s.leftover_delay_min_seconds,
                            max(s.leftover_delay_min_seconds, s.leftover_delay_max_seconds))
    return now + dt.timedelta(seconds=delay)


# --- what the public and the patient see ---------------------------------------------------

def round_view(platform: Platform, round_id: int) -> RoundView:
    with platform.uow() as uow:
        round_ = uow.rounds.get(round_id)
        if round_ is None:
            raise NotFound("no such round", code="round_not_found")
        counts = uow.rounds.choice_counts(round_id)
        sessions = []
        for sid, capacity in uow.rounds.capacities(round_id).items():
            session = uow.schedule.session(sid)
            assert session is not None
            sessions.append({"session_id": sid, "capacity": capacity,
                             "starts_at": session.starts_at,
                             "first_choice_entries": counts.get(sid, 0),
                             "cancellation_rate": _cancellation_rate(uow, session.doctor_id)})
        drawn = round_.status == "drawn"
        entries = [{"ref": e.ref, "choices": [int(c) for c in e.choices],
                    "outcome": e.outcome, "position": e.position}
                   for e in uow.rounds.all_entries(round_id)
                   if not e.withdrawn and e.outcome != "excluded"] if drawn else []
        return RoundView(
            id=round_.id, department_id=round_.department_id, opens_at=round_.opens_at,
            closes_at=round_.closes_at, status=round_.status, commitment=round_.commitment,
            entries_digest=round_.entries_digest, seed=round_.revealed_seed,
            beacon=round_.beacon, sessions=sessions, entries=entries,
            entries_count=round_.entries_count if drawn else sum(counts.values()))


def _cancellation_rate(uow: UnitOfWork, doctor_id: int) -> float | None:
    """Share of this doctor's past bookings that were cancelled or expired: how often a slot
    frees up, so a waitlisted patient can judge their chances (the touts' information gap)."""
    import sqlalchemy as sa

    from fairslot.storage import tables as t

    counts: dict[str, int] = {
        str(getattr(status, "value", status)): int(n) for status, n in uow.db.execute(
            sa.select(t.bookings.c.status, sa.func.count()).join(
                t.sessions, t.sessions.c.id == t.bookings.c.session_id)
            .where(t.sessions.c.doctor_id == doctor_id).group_by(t.bookings.c.status)).all()}
    total = sum(counts.values())
    if total < 20:
        return None
    freed = sum(counts.get(s, 0) for s in ("cancelled", "expired", "refunded"))
    return round(freed / total, 3)


def frozen_entries(
    uow: UnitOfWork, round_id: int
) -> tuple[list[Any], tuple[draw.Entry, ...], dict[str, int]]:
    """A round's entry list as the draw takes it (not withdrawn, not excluded), with the
    rows it came from and the sessions' published capacities."""
    rows = [e for e in uow.rounds.all_entries(round_id)
            if not e.withdrawn and e.outcome != "excluded"]
    entries = tuple(draw.Entry(e.ref, tuple(str(c) for c in e.choices)) for e in rows)
    capacities = {str(sid): cap for sid, cap in uow.rounds.capacities(round_id).items()}
    return rows, entries, capacities


def export_round_document(platform: Platform, round_id: int) -> dict[str, Any]:
    """The published round in the documented format (docs/draw.md), for ``draw verify``."""
    with platform.uow() as uow:
        round_ = uow.rounds.get(round_id)
        if round_ is None:
            raise NotFound("no such round", code="round_not_found")
        if round_.status != "drawn":
            raise Conflict("the round is not drawn yet; its seed stays secret until then",
                           code="round_not_drawn")
        rows, entries, capacities = frozen_entries(uow, round_id)
        # The result is what was stored at the draw, not a fresh computation: the verifier's
        # job is to compare the two.
        placed = sorted((e for e in rows if e.position is not None), key=lambda e: e.position)
        result = draw.DrawResult(
            winners={e.ref: draw.Award(e.ref, str(e.won_session_id), e.won_rank)
                     for e in placed if e.won_session_id is not None},
            waitlist=tuple(e.ref for e in placed if e.won_session_id is None))
        document = draw.Round(
            round_id=str(round_id), capacities=capacities, entries=entries,
            commitment=round_.commitment, entries_digest=round_.entries_digest,
            beacon=round_.beacon, seed=bytes.fromhex(round_.revealed_seed), result=result,
            parameters={"department_id": round_.department_id,
                        "opens_at": round_.opens_at.isoformat(),
                        "closes_at": round_.closes_at.isoformat(),
                        "beacon_source": round_.beacon_source,
                        "max_choices": draw.MAX_CHOICES})
        return draw.export_round(document)


def set_beacon(platform: Platform, round_id: int, beacon: str) -> RoundView:
    """Enter the round's public beacon value: once, after the window has closed (so that it
    cannot have been known while entries came in), and only for a round that named its
    source when it opened. The draw waits for it."""
    now = platform.clock.now()
    with platform.uow() as uow:
        round_ = uow.rounds.get(round_id, for_update=True)
        if round_ is None:
            raise NotFound("no such round", code="round_not_found")
        if not round_.beacon_source:
            raise Conflict("this round named no beacon source when it opened",
                           code="no_beacon_source")
        if round_.status != "open" or round_.beacon:
            raise Conflict("the beacon of this round is already set", code="beacon_set")
        if now < round_.closes_at:
            raise Conflict("the beacon is entered after the window closes",
                           code="window_open")
        uow.rounds.update(round_id, beacon=beacon)
        uow.events.append("round.beacon", now, detail={"round": round_id, "beacon": beacon})
        uow.commit()
    return round_view(platform, round_id)

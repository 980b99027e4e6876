"""Rounds: opened with a committed seed when their window opens, drawn once when it
closes, published for anyone to verify (see docs/draw.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from typing import Any

from fairslot.domain import draw
from fairslot.domain.booking import Booking, Channel
from fairslot.domain.draw import log as roundlog
from fairslot.domain.draw import statements
from fairslot.domain.draw.beacon import Beacon, Chain
from fairslot.domain.draw.frozen import FrozenList
from fairslot.domain.draw.signing import digest
from fairslot.domain.errors import Conflict, InvalidInput, NotFound
from fairslot.domain.rounds import Entry, EntryOutcome, Round, RoundKind, RoundStatus
from fairslot.domain.schedule import Session
from fairslot.services import notifications, round_opening, rules, waitlist
from fairslot.services.deps import Deps, Units
from fairslot.storage.repositories import StoredBeacon
from fairslot.storage.uow import UnitOfWork

__all__ = [
    "DrawStage",
    "RoundSession",
    "RoundView",
    "checkpoint_of",
    "draw_due_rounds",
    "draw_round",
    "export_round_document",
    "freeze_round",
    "frozen_entries",
    "inclusion_proof",
    "log_document",
    "open_due_rounds",
    "open_rounds",
    "round_view",
]

log = logging.getLogger(__name__)
BEACON_LATE_AFTER = dt.timedelta(seconds=60)
"""A beacon not in this long after its round's time is reported late on the round's page."""
CREDIT_SUSPENDED = "credit_suspended"
"""The reason written in the frozen list for an entrant suspended at the close."""
ALREADY_BOOKED = "already_booked"
"""The reason written in a short round's frozen list for an entrant who had a booking in a
session it chose at the close."""
_EXCLUSION_MESSAGES = {CREDIT_SUSPENDED: "draw.excluded", ALREADY_BOOKED: "draw.already_booked"}


@dataclasses.dataclass(frozen=True)
class RoundSession:
    session: Session
    capacity: int
    first_choice_entries: int
    cancellation_rate: float | None
    joined: int = 0
    """Slots freed since an open short round opened, held back for it: after its draw they
    go to its waitlist (not in the signed capacity, but at stake all the same)."""


@dataclasses.dataclass(frozen=True)
class DrawStage:
    """A round's place on its public timeline (docs/draw.md): ``open``, ``closed`` (the
    list not frozen yet), ``frozen`` (waiting for the beacon) or ``drawn``."""

    stage: str
    beacon_round: int | None
    beacon_due_at: dt.datetime | None
    root: str | None
    """The frozen list's Merkle root, once frozen."""
    beacon_late: bool
    """The beacon's time is more than ``BEACON_LATE_AFTER`` past and the round waits."""
    note: str


@dataclasses.dataclass(frozen=True)
class RoundView:
    round: Round
    sessions: list[RoundSession]
    entries: list[Entry]
    """The published entry list (pseudonymous refs), once drawn."""
    entries_count: int
    stage: DrawStage

    @property
    def id(self) -> int:
        return self.round.id


# --- the window opens ---------------------------------------------------------------------

def open_due_rounds(units: Units, deps: Deps) -> int:
    """Create the round of every draw session whose window has opened: a seed, its
    commitment and the capacities, signed as the round's *opening* with the chain and the
    beacon round fixed in advance (docs/draw.md, section 1), and logged. The sessions of one
    department and release time that open together share a round; a session whose window
    opens later gets a round of its own, so a signed opening never changes."""
    now = deps.clock.now()
    window = dt.timedelta(hours=deps.settings.draw_window_hours)
    late = dt.timedelta(minutes=deps.settings.late_window_minutes)
    short = dt.timedelta(minutes=deps.settings.request_window_minutes)
    # Rounds opened in this pass, by (department, kind, window): the sessions of one
    # department whose windows open together share a round. A late round is always a round
    # of its own. A round opened in an earlier pass is never joined: its opening is signed.
    opened: dict[tuple[int, RoundKind, dt.datetime, dt.datetime, int], int] = {}

    def round_for(uow: UnitOfWork, department_id: int, kind: RoundKind, opens: dt.datetime,
                  closes: dt.datetime, session_id: int) -> int:
        key = (department_id, kind, opens, closes,
               session_id if kind is RoundKind.LATE else 0)
        if key not in opened:
            opened[key] = round_opening.create_round(
                uow, deps, department_id=department_id, kind=kind, opens=opens,
                closes=closes, now=now)
        return opened[key]

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
                start = now.replace(microsecond=0)  # a signed opening names whole seconds
                kind, opens = RoundKind.LATE, start
                closes = waitlist.latest_close(deps, session, max(release_at, start + late))
                if closes - start < waitlist.MIN_WINDOW:
                    continue  # the visit is too close for any window: the desk serves it
            round_id = round_for(uow, department_id, kind, opens, closes, session_id)
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
            free = (uow.schedule.unclaimed_slots(session_id)
                    + uow.schedule.reserved_slots(session_id, waitlist.reserved(session)))
            if release_at <= now and len(free) < session.capacity:
                # Released and booked from before the doctor was marked hot: those slots
                # are open to anyone now (nothing scarce); a freed one finds a window.
                continue
            # Scheduled after its release time, nothing booked: the window opens now.
            opens = max(release_at, now.replace(microsecond=0))
            closes = waitlist.latest_close(deps, session, opens + short)
            if closes - opens < waitlist.MIN_WINDOW:
                # No room for a window before the visit: it stays fcfs.
                waitlist.release_now(uow, session, free, now)
                continue
            round_id = round_for(uow, department_id, RoundKind.OPENING, opens, closes,
                                 session_id)
            uow.schedule.reserve_slots(free, waitlist.reserved(session))
            uow.rounds.add_session(round_id, session_id, len(free))
        for round_id in opened.values():
            round_ = uow.rounds.get(round_id)
            assert round_ is not None
            round_opening.sign_opening(uow, deps, round_, now)
        uow.commit()
    return len(opened)


# --- the close: the list is frozen ---------------------------------------------------------

def freeze_round(uow: UnitOfWork, deps: Deps, round_id: int) -> bool:
    """Freeze the round's entry list once its window has closed: every entry with its
    status, eligibility judged *as of the close* (a suspension that comes later changes
    nothing), rooted, signed and logged before the beacon exists. Once."""
    now = deps.clock.now()
    round_ = uow.rounds.get(round_id, for_update=True)
    if round_ is None or round_.status is not RoundStatus.OPEN or now < round_.closes_at:
        return False
    signed = uow.draw.statements(round_id)
    if "freeze" in signed:
        return False
    # A round opened before the signed format has its opening signed now (its entrants
    # hold no receipts); every round since is signed when its window opens.
    opening = signed.get("opening") or round_opening.sign_opening(uow, deps, round_, now)
    close = round_.closes_at
    lines = []
    excluded: list[tuple[Entry, str]] = []
    seqs = uow.draw.last_seqs(round_id)
    for e in uow.rounds.all_entries(round_id):
        seq = seqs.get(e.id, 1)
        choices = [str(c) for c in e.choices]
        reason = None if e.withdrawn else _exclusion(uow, deps, round_, e, close)
        if e.withdrawn:
            lines.append(statements.frozen_entry(e.ref, seq, choices, withdrawn=True))
        elif reason is not None:
            lines.append(statements.frozen_entry(e.ref, seq, choices, excluded=reason))
            excluded.append((e, reason))
        else:
            lines.append(statements.frozen_entry(e.ref, seq, choices))
    key = deps.round_key(uow.draw.opening_key(round_id))
    frozen, freeze = statements.freeze_statement(key, opening, lines, now)
    chain = Chain.from_json(opening["chain"])
    if now.timestamp() >= chain.round_time(opening["beacon_round"]):
        log.warning("round %s frozen at %s, after its beacon round's time: its document "
                    "will not verify (keep the scheduler running)", round_id, now)
    uow.draw.add_statement(round_id, "freeze", freeze, digest(freeze), now,
                           signing_key=key.public_hex)
    uow.draw.add_frozen_list(round_id, list(frozen.leaves), frozen.root.hex(), frozen.size,
                             len(frozen.drawn_refs), now)
    for e, reason in excluded:
        uow.rounds.update_entry(e.id, outcome=EntryOutcome.EXCLUDED.value)
        notifications.notify(uow, deps, e.account_id, _EXCLUSION_MESSAGES[reason],
                             patient_id=e.patient_id)
    uow.rounds.update(round_id, entries_digest=frozen.root.hex(),
                      entries_count=len(frozen.drawn_refs))
    round_opening.append_log(uow, deps, round_id, roundlog.frozen_record(
        str(round_id), digest(opening), frozen.root.hex(), frozen.size), now)
    uow.events.append("round.frozen", now, detail={
        "round": round_id, "entries": frozen.size, "drawn": len(frozen.drawn_refs),
        "excluded": len(excluded)})
    uow.commit()
    return True


def _exclusion(uow: UnitOfWork, deps: Deps, round_: Round, entry: Entry,
               close: dt.datetime) -> str | None:
    """Why the entry is left out of the draw, judged as of the close, or None: the patient
    (or the account, for its lapsed holds) was suspended then; or, in a short round, the
    patient already has a booking in a session it chose (a short round gives out slots of
    a session already open to booking, and nobody gets two of one session)."""
    if rules.suspended_at(uow, deps, entry.patient_id, close, account_id=entry.account_id):
        return CREDIT_SUSPENDED
    if round_.kind.short:
        for session_id in entry.choices:
            if uow.quotas.facts(entry.patient_id, now=close, served_since=close,
                                offences_since=close, session_id=session_id).in_session:
                return ALREADY_BOOKED
    return None


# --- the draw -----------------------------------------------------------------------------

def draw_due_rounds(units: Units, deps: Deps) -> int:
    """Freeze every round whose window has closed, then draw every frozen round whose
    beacon is out; returns the number drawn. A round whose beacon is not out waits."""
    with units() as uow:
        due = uow.rounds.due(deps.clock.now())
    done = 0
    for round_id in due:
        try:
            with units() as uow:
                freeze_round(uow, deps, round_id)
            with units() as uow:
                if draw_round(uow, deps, round_id):
                    done += 1
        except Conflict as refused:
            if refused.code != "draw_key_missing":
                raise
            # Opened under a key this server no longer has: it waits for that key
            # (FAIRSLOT_DRAW_PREVIOUS_SIGNING_KEYS), and the other rounds go on.
            log.error("round %s waits: the draw key that signed its opening (%s...) is not "
                      "configured", round_id, str(refused.extra.get("key", ""))[:16])
    return done


def draw_round(uow: UnitOfWork, deps: Deps, round_id: int) -> bool:
    """Run the frozen round's draw exactly once, with the beacon of the round its opening
    named, checked offline against the chain's key. The round row is locked for the whole
    transaction (on PostgreSQL a second scheduler waits, then finds it drawn)."""
    now = deps.clock.now()
    round_ = uow.rounds.get(round_id, for_update=True)
    if round_ is None or round_.status is not RoundStatus.OPEN or now < round_.closes_at:
        return False
    signed = uow.draw.statements(round_id)
    stored = uow.draw.frozen_list(round_id)
    if "freeze" not in signed or stored is None:
        return False
    opening, freeze = signed["opening"], signed["freeze"]
    beacon = _beacon(uow, deps, round_id, opening)
    if beacon is None:
        return False  # not out yet (or late): the round waits, and its page says so
    frozen = FrozenList.from_leaves(stored.leaves, opening["capacities"],
                                    opening["max_choices"])
    seed = bytes.fromhex(round_.seed)
    key = deps.round_key(uow.draw.opening_key(round_id))
    try:
        results, result = statements.draw_statement(key, opening, freeze, frozen,
                                                     beacon, seed, now)
    except Conflict as refused:
        log.warning("round %s: beacon of round %s refused: %s", round_id, beacon.round,
                    refused)
        return False
    uow.draw.add_beacon(round_id, StoredBeacon(
        opening["chain"]["hash"], beacon.round, beacon.signature.hex(),
        None if beacon.previous_signature is None else beacon.previous_signature.hex()), now)
    uow.draw.add_statement(round_id, "result", result, digest(result), now,
                           signing_key=key.public_hex)
    # The results themselves (their digest is in the signed result), stored beside it.
    uow.draw.add_statement(round_id, "results", dict(results), result["results"], now,
                           signing_key=key.public_hex)
    rows = {e.ref: e for e in uow.rounds.all_entries(round_id)}
    published = uow.rounds.capacities(round_id)
    # A short round's win is close to the visit: the offer's payment time, as for a
    # waitlist offer; never past the session's start.
    pay_for = dt.timedelta(minutes=deps.settings.waitlist_offer_minutes if round_.kind.short
                           else deps.settings.draw_payment_minutes)
    sessions = uow.schedule.sessions_by_id(list(published))
    won: dict[int, int] = {}
    position = 0
    for line in results["winners"]:
        ref, session_text, rank_text = line.split(" ")
        row = rows[ref]
        session = sessions[int(session_text)]
        pay_by = min(now + pay_for, session.starts_at)
        booking = _hold(uow, now, session, row.patient_id, row.account_id, pay_by,
                        waitlist.reserved(session) if round_.kind.short else None)
        won[session.id or 0] = won.get(session.id or 0, 0) + 1
        uow.rounds.update_entry(row.id, outcome=EntryOutcome.WON.value, position=position,
                                won_session_id=int(session_text), won_rank=int(rank_text),
                                booking_id=booking.id)
        notifications.notify(uow, deps, row.account_id, "draw.won",
                             patient_id=row.patient_id,
                             session=notifications.when(deps, session.starts_at),
                             pay_by=notifications.when(deps, pay_by))
        position += 1
    for place, ref in enumerate(results["waitlist"], start=1):
        row = rows[ref]
        uow.rounds.update_entry(row.id, outcome=EntryOutcome.WAITLIST.value,
                                position=position)
        notifications.notify(uow, deps, row.account_id, "draw.waitlist",
                             patient_id=row.patient_id, rank=place)
        position += 1
    # Slots nobody drew (fewer entries than slots). After a release round they go through
    # a short window of their own (people who did not enter may want them now). After a
    # short round everybody who asked got one: they open to booking.
    # Slots freed while a short round was open joined it (held back, beyond its published
    # capacity): they go to its waitlist's head, in draw order, as offers, or else into a
    # window of their own.
    for sid, capacity in published.items():
        session = sessions[sid]
        if round_.kind.short:
            left = uow.schedule.reserved_slots(sid, waitlist.reserved(session))
            held_elsewhere = sum(uow.rounds.capacities(other).get(sid, 0) for other in
                                 uow.rounds.rounds_of_session(sid) if other != round_id
                                 and _is_open(uow, other))
            unfilled = max(0, capacity - won.get(sid, 0))
            joined = left[unfilled:max(unfilled, len(left) - held_elsewhere)]
            waitlist.release_now(uow, session, left[:unfilled], now)
            unoffered = [slot_id for slot_id in joined
                         if not waitlist.offer(uow, deps, slot_id, session)]
            # Nobody waiting: a joined slot was never published in this round's signed
            # capacity (it may have joined seconds before the close), so it gets a window
            # of its own rather than opening to whoever polls at the close.
            waitlist.open_short_round(uow, deps, session, unoffered)
        elif left := uow.schedule.unclaimed_slots(sid):
            waitlist.open_short_round(uow, deps, session, left)
    uow.rounds.update(round_id, status=RoundStatus.DRAWN.value, drawn_at=now,
                      revealed_seed=seed.hex(), beacon=beacon.signature.hex())
    round_opening.append_log(uow, deps, round_id, roundlog.drawn_record(
        str(round_id), opening["commitment"], freeze["root"], result["results"]), now)
    uow.events.append("round.drawn", now, detail={
        "round": round_id, "entries": len(frozen.drawn_refs),
        "winners": len(results["winners"])})
    uow.commit()
    return True


def _beacon(uow: UnitOfWork, deps: Deps, round_id: int,
            opening: dict[str, Any]) -> Beacon | None:
    """The beacon of the opening's round: stored, or fetched from the configured chain's
    source (only when it is the chain the opening named; never another round)."""
    stored = uow.draw.beacon(round_id)
    if stored is not None:
        return Beacon(stored.round, bytes.fromhex(stored.signature),
                      None if stored.previous_signature is None
                      else bytes.fromhex(stored.previous_signature))
    source = deps.beacons
    if source.chain.hash.hex() != opening["chain"]["hash"]:
        log.warning("round %s names chain %s but the configured chain is %s: it waits",
                    round_id, opening["chain"]["hash"], source.chain.hash.hex())
        return None
    return source.fetch(opening["beacon_round"])


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

def _is_open(uow: UnitOfWork, round_id: int) -> bool:
    other = uow.rounds.get(round_id)
    return other is not None and other.status is RoundStatus.OPEN


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
        joined = 0
        if round_.kind.short and round_.status is RoundStatus.OPEN:
            held = len(uow.schedule.reserved_slots(sid, waitlist.reserved(session)))
            joined = max(0, held - capacity)
        sessions.append(RoundSession(session, capacity, counts.get(sid, 0),
                                     rates[session.doctor_id], joined))
    drawn = round_.status is RoundStatus.DRAWN
    entries = [e for e in uow.rounds.all_entries(round_id)
               if not e.withdrawn and e.outcome is not EntryOutcome.EXCLUDED] if drawn else []
    return RoundView(round_, sessions, entries,
                     round_.entries_count if drawn else sum(counts.values()),
                     _stage(uow, deps, round_))


def _stage(uow: UnitOfWork, deps: Deps, round_: Round) -> DrawStage:
    """Where the round is on its public timeline, and what its page says about it."""
    now = deps.clock.now()
    signed = uow.draw.statements(round_.id)
    opening, freeze = signed.get("opening"), signed.get("freeze")
    if opening is None:
        return DrawStage("open" if now < round_.closes_at else "closed", None, None, None,
                         False, "")
    chain = Chain.from_json(opening["chain"])
    number = int(opening["beacon_round"])
    due = dt.datetime.fromtimestamp(chain.round_time(number), dt.UTC)
    root = None if freeze is None else str(freeze["root"])
    zone = deps.settings.zone
    when = f"{due.astimezone(zone):%Y-%m-%d %H:%M:%S}"
    beacon = f"drand round {number} of chain {chain.hash.hex()[:16]}…"
    if round_.status is RoundStatus.DRAWN:
        return DrawStage("drawn", number, due, root, False,
                         f"Drawn with {beacon}; anyone can check it with fairslot draw "
                         "verify.")
    if now < round_.closes_at:
        return DrawStage("open", number, due, root, False,
                         f"Entries are taken until the close; the draw will use {beacon}, "
                         f"published at {when}, which nobody can know before.")
    if freeze is None:
        return DrawStage("closed", number, due, root, now >= due,
                         "The window has closed; the entry list is being frozen.")
    late = now >= due + BEACON_LATE_AFTER
    if late:
        minutes = int((now - due).total_seconds() // 60)
        note = (f"The entry list is frozen. The beacon ({beacon}, due at {when}) is late "
                f"by {minutes} min: the draw waits for it and will use no other value.")
    else:
        note = (f"The entry list is frozen; the draw runs when {beacon} is published "
                f"(due at {when}).")
    return DrawStage("frozen", number, due, root, late, note)


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
    """The round document (format ``fairslot-round/2``, docs/draw.md) at the stage the round
    has reached, for ``fairslot draw verify``: everything it holds was signed when it
    happened and is read back as stored, never recomputed. The seed is in it only once
    drawn."""
    round_ = _get(uow, round_id)
    signed = uow.draw.statements(round_id)
    opening = signed.get("opening")
    if opening is None:
        raise Conflict("this round was opened before signed rounds and has no document",
                       code="round_not_signed")
    stored = uow.draw.frozen_list(round_id)
    beacon = uow.draw.beacon(round_id)
    document = statements.round_document(
        hospital_key=uow.draw.opening_key(round_id) or deps.draw_key.public_hex,
        opening=opening,
        freeze=signed.get("freeze"), results=signed.get("results"),
        result=signed.get("result"),
        beacon=None if beacon is None else _as_beacon(beacon),
        parameters={"department_id": round_.department_id, "kind": round_.kind.value})
    if stored is not None:
        document["entries"] = list(stored.leaves)
    return document


def _as_beacon(stored: StoredBeacon) -> Beacon:
    return Beacon(stored.round, bytes.fromhex(stored.signature),
                  None if stored.previous_signature is None
                  else bytes.fromhex(stored.previous_signature))


def inclusion_proof(uow: UnitOfWork, deps: Deps, round_id: int, ref: str) -> dict[str, Any]:
    """The proof that ``ref``'s line is in the round's frozen list under its signed root
    (docs/draw.md, section 6)."""
    opening = uow.draw.statement(round_id, "opening")
    stored = uow.draw.frozen_list(round_id)
    if opening is None or stored is None:
        raise Conflict("the round's entry list is not frozen yet", code="round_not_frozen")
    frozen = FrozenList.from_leaves(stored.leaves, opening["capacities"],
                                    opening["max_choices"])
    try:
        return frozen.proof(str(round_id), ref).to_json()
    except KeyError:
        raise NotFound("no such entry in the frozen list", code="entry_not_found") from None


def log_document(uow: UnitOfWork, deps: Deps, from_size: int | None = None
                 ) -> dict[str, Any]:
    """The public log of rounds: the whole log with its latest checkpoint, or, with
    ``from_size``, the latest checkpoint and a consistency proof from that size (for
    ``fairslot draw audit``)."""
    checkpoint = uow.draw.checkpoint()
    if checkpoint is None:
        raise NotFound("the log of rounds is empty", code="log_empty")
    records = uow.draw.log_records(checkpoint["size"])
    history = roundlog.RoundLog(records)
    if from_size is None:
        return history.document(checkpoint)
    if not 1 <= from_size <= checkpoint["size"]:
        raise InvalidInput(f"from_size is 1 to {checkpoint['size']}", code="bad_size")
    return history.consistency(from_size, checkpoint)


def checkpoint_of(uow: UnitOfWork, deps: Deps, size: int | None = None) -> dict[str, Any]:
    """A signed checkpoint of the log: of ``size`` records, or the latest."""
    found = uow.draw.checkpoint(size)
    if found is None:
        raise NotFound("no such checkpoint", code="checkpoint_not_found")
    return found

"""Entering a round: a patient's one entry (up to three sessions of the round, best first),
changed or withdrawn while the window is open; entered by a family account or, for a
walk-in patient with an identity card, by the registration desk."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from fairslot.domain import draw
from fairslot.domain.accounts import Account
from fairslot.domain.booking import Channel
from fairslot.domain.errors import Conflict, InvalidInput, NotFound
from fairslot.domain.identity import Identity
from fairslot.domain.rounds import Entry, EntryOutcome, Round
from fairslot.services import accounts, rules
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = ["EntryView", "enter", "enter_at_desk", "entry_by_key", "my_entries", "withdraw"]


@dataclasses.dataclass(frozen=True)
class EntryView:
    entry: Entry
    round: Round | None = None
    waitlist_ahead: int | None = None

    @property
    def id(self) -> int:
        return self.entry.id


def enter(uow: UnitOfWork, deps: Deps, account: Account, round_id: int, patient_id: int,
          choices: Sequence[int], ctx: RequestContext, *,
          idempotency_key: str | None = None) -> EntryView:
    """Enter (or change) a family patient's entry in the round. Idempotent: the same
    ``idempotency_key`` returns the entry it made the first time."""
    ranked = _ranked(choices)
    if idempotency_key:
        again = uow.rounds.entry_by_key(account.id or 0, idempotency_key)
        if again is not None:
            return EntryView(again)
    uow.lock(*rules.lock_names(patient_id, account))
    if not uow.patients.is_managed_by(patient_id, account.id or 0):
        raise NotFound("no such patient on this account", code="patient_not_found")
    return _enter(uow, deps, account, round_id, patient_id, ranked, ctx,
                  idempotency_key=idempotency_key)


def enter_at_desk(uow: UnitOfWork, deps: Deps, staff: Account, round_id: int, id_number: str,
                  name: str, choices: Sequence[int], ctx: RequestContext) -> EntryView:
    """The registration desk enters a walk-in patient (often elderly, without a phone) in a
    draw after checking their identity card: the same one entry per patient, the same
    credit and per-patient quotas; the desk's own account is not quota-limited."""
    identity = Identity.parse(id_number, name)
    ranked = _ranked(choices)
    patient = accounts.verified_patient(uow, deps, identity)
    uow.lock(("patient", patient.id or 0))
    return _enter(uow, deps, staff, round_id, patient.id or 0, ranked,
                  dataclasses.replace(ctx, channel=Channel.WINDOW), at_desk=True)


def _ranked(choices: Sequence[int]) -> list[int]:
    ranked = list(dict.fromkeys(int(c) for c in choices))
    if not 1 <= len(ranked) <= draw.MAX_CHOICES or len(ranked) != len(choices):
        raise InvalidInput(f"choose 1 to {draw.MAX_CHOICES} different sessions, best first",
                           code="invalid_choices")
    return ranked


def _enter(uow: UnitOfWork, deps: Deps, account: Account, round_id: int, patient_id: int,
           ranked: list[int], ctx: RequestContext, *, idempotency_key: str | None = None,
           at_desk: bool = False) -> EntryView:
    now = deps.clock.now()
    round_ = uow.rounds.get(round_id, for_update=True)
    if round_ is None:
        raise NotFound("no such round", code="round_not_found")
    if not round_.is_open_at(now):
        raise Conflict("this round's request window is not open", code="window_closed")
    if not set(ranked) <= set(uow.rounds.sessions(round_id)):
        raise InvalidInput("every choice must be a session of this round",
                           code="invalid_choices")
    first = uow.schedule.session(ranked[0])
    assert first is not None
    existing = uow.rounds.entry_of(round_id, patient_id)
    if existing is None or existing.withdrawn:
        facts = rules.facts_for(uow, deps, patient_id, None if at_desk else account,
                                session_id=ranked[0] if round_.kind.short else None)
        if facts.in_session:  # a short round gives out slots of a session already open
            raise Conflict("this patient already has a booking in this session",
                           code="already_booked")
        rules.check_may_book(deps, facts, patient_id, round_.department_id, first.starts_at,
                             served=not at_desk)
    if existing is None:
        entry_id = uow.rounds.add_entry(
            round_id=round_id, ref=deps.random.token_hex(8), patient_id=patient_id,
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
    uow.flush()
    row = uow.rounds.entry(entry_id)
    assert row is not None
    uow.commit()
    return EntryView(row)


def entry_by_key(uow: UnitOfWork, deps: Deps, account_id: int, key: str) -> EntryView | None:
    row = uow.rounds.entry_by_key(account_id, key)
    return None if row is None else EntryView(row)


def withdraw(uow: UnitOfWork, deps: Deps, account: Account, entry_id: int,
             ctx: RequestContext) -> None:
    now = deps.clock.now()
    entry = uow.rounds.entry(entry_id)
    if entry is None or entry.account_id != account.id:
        raise NotFound("no such entry", code="entry_not_found")
    round_ = uow.rounds.get(entry.round_id, for_update=True)
    if round_ is None or not round_.is_open_at(now):
        raise Conflict("the request window has closed", code="window_closed")
    uow.rounds.update_entry(entry_id, withdrawn=True, updated_at=now)
    uow.events.append("entry.withdrawn", now, account_id=account.id,
                      patient_id=entry.patient_id, detail={"round": entry.round_id},
                      **ctx.event_fields())
    uow.commit()


def my_entries(uow: UnitOfWork, deps: Deps, account: Account) -> list[EntryView]:
    rows = uow.rounds.entries_of_account(account.id or 0)
    rounds = uow.rounds.by_ids([r.round_id for r in rows])
    views = []
    for row in rows:
        ahead = None
        if row.outcome is EntryOutcome.WAITLIST and row.position is not None:
            ahead = uow.rounds.waitlist_ahead(row.round_id, row.position)
        views.append(EntryView(row, rounds.get(row.round_id), ahead))
    return views

"""Entering a round: a patient's one entry (up to three sessions of the round, best first),
changed or withdrawn while the window is open; entered by a family account or, for a
walk-in patient with an identity card, by the registration desk."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from fairslot.domain import draw
from fairslot.domain.accounts import Account
from fairslot.domain.booking import Channel
from fairslot.domain.draw.receipts import make_receipt
from fairslot.domain.errors import Conflict, InvalidInput, NotFound
from fairslot.domain.identity import Identity
from fairslot.domain.rounds import Entry, EntryOutcome, Round
from fairslot.services import accounts, identities, rules, shared_list
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.services.release.rounds import inclusion_proof
from fairslot.storage.repositories import QuotaFacts
from fairslot.storage.repositories.draw import receipt_values
from fairslot.storage.repositories.quotas import facts_of
from fairslot.storage.repositories.rounds import EntryTarget
from fairslot.storage.uow import UnitOfWork

__all__ = ["EntryView", "enter", "enter_at_desk", "entry_by_key", "entry_proof",
           "entry_receipt", "my_entries", "withdraw"]

_OPENING_KEPT_SECONDS = 3600.0


@dataclasses.dataclass(frozen=True)
class EntryView:
    entry: Entry
    round: Round | None = None
    waitlist_ahead: int | None = None
    receipt: dict[str, Any] | None = None
    """The hospital's signed receipt of the entry's latest write (docs/draw.md, section 6)."""

    @property
    def id(self) -> int:
        return self.entry.id


def enter(uow: UnitOfWork, deps: Deps, account: Account, round_id: int, patient_id: int,
          choices: Sequence[int], ctx: RequestContext, *,
          idempotency_key: str | None = None) -> EntryView:
    """Enter (or change) a family patient's entry in the round. Idempotent: the same
    ``idempotency_key`` returns the entry it made the first time."""
    accounts.require_verified_phone(account)
    ranked = _ranked(choices)
    if idempotency_key:
        again = uow.rounds.entry_by_key(account.id or 0, idempotency_key)
        if again is not None:
            return _with_receipt(uow, again)
    names = rules.lock_names(uow, patient_id, account)
    while True:
        keys = uow.lock_keys(*names)
        read = None
        if uow.postgres:
            # The locks with the ownership check, the round's look-up and the quota facts
            # in one message; a new entry's write and the commit in a second (see
            # ``RoundRepository.read_for_entry``). The facts name the first choice's
            # session, which only a short round's check uses.
            managed, target, rows = uow.rounds.read_for_entry(
                keys, account.id or 0, patient_id, round_id, ranked,
                identity=deps.shared_list is not None,
                facts=rules.facts_query(uow, deps, account, session_id=ranked[0]))
            read = target, rows
        else:
            managed = uow.patients.is_managed_by(patient_id, account.id or 0, keys)
        if not managed:
            raise NotFound("no such patient on this account", code="patient_not_found")
        try:
            return _enter(uow, deps, account, round_id, patient_id, ranked, ctx,
                          idempotency_key=idempotency_key, read=read, locked=names)
        except _Relock as again:
            # The account moved off a phone within the window: its entries count there
            # too. Again, holding every lock it needs, taken in order (the BEGIN goes with
            # the first message again, as in autocommit it did).
            uow.rollback()
            uow.autocommit()
            names = rules.lock_names(uow, patient_id, account, again.phones)


class _Relock(Exception):
    """The quota facts name phones whose locks the entry lacks."""

    def __init__(self, phones: list[str]) -> None:
        super().__init__()
        self.phones = phones


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
           at_desk: bool = False,
           read: tuple[EntryTarget | None, list[Any]] | None = None,
           locked: list[tuple[str, str | int]] | None = None) -> EntryView:
    """``read``: the target and the quota facts' rows (with the first choice's session),
    read by the caller under the locks (PostgreSQL's fast path, which also commits with a
    new entry's write). ``locked``: the locks the caller holds (``rules.lock_names``);
    ``_Relock`` when the quota facts name a phone it lacks."""
    now = deps.clock.now()
    facts: QuotaFacts | None = None
    if read is not None:
        target = read[0]
    else:
        # The round, its sessions among the choices, the first choice's start and the
        # patient's entry so far, in one statement (the patient's identity too, if the
        # shared list needs it); the caller holds the patient's lock, so the entry read is
        # the latest.
        target = uow.rounds.entry_target(round_id, patient_id, ranked,
                                         identity=deps.shared_list is not None)
    if target is None:
        raise NotFound("no such round", code="round_not_found")
    if not target.is_open_at(now):
        raise Conflict("this round's request window is not open", code="window_closed")
    if target.choices_in_round != len(ranked):
        raise InvalidInput("every choice must be a session of this round",
                           code="invalid_choices")
    assert target.first_starts_at is not None
    if read is not None:
        # Whether the patient already holds the first choice's session counts only in a
        # short round, which gives out slots of a session already open.
        facts = facts_of(r for r in read[1] if target.kind.short or r[0] != "in_session")
    existing = target.existing
    if existing is None or existing.withdrawn:
        shared = shared_list.consult(uow, deps, shared_list.Point.DRAW_ENTRY, ctx,
                                     identity=target.id_number,
                                     phone=None if at_desk else account.phone,
                                     patient_id=patient_id,
                                     account_id=None if at_desk else account.id)
        if facts is None:
            facts = rules.facts_for(uow, deps, patient_id, None if at_desk else account,
                                    session_id=ranked[0] if target.kind.short else None)
        if locked is not None and rules.unlocked_phones(uow, locked, facts):
            raise _Relock(facts.phones)
        if facts.in_session:  # a short round gives out slots of a session already open
            raise Conflict("this patient already has a booking in this session",
                           code="already_booked")
        rules.check_may_book(deps, facts, patient_id, target.department_id,
                             target.first_starts_at, served=not at_desk,
                             lowered=shared.lowered)
    else:
        # A change: the quotas were counted when it entered, but a suspension since refuses
        # a change as it refuses entering (the entry would be left out at the close anyway).
        rules.check_credit(deps, facts if facts is not None else rules.facts_for(
            uow, deps, patient_id, None if at_desk else account))
    event = {"account_id": account.id, "patient_id": patient_id, "session_id": ranked[0],
             "detail": {"round": round_id, "choices": ranked, "channel": ctx.channel.value,
                        "department": target.department_id,
                        "release_at": target.opens_at.isoformat()},
             **ctx.event_fields()}
    if existing is None:
        ref = deps.random.token_hex(8)
        values: dict[str, Any] = {"round_id": round_id, "ref": ref,
                  "patient_id": patient_id, "account_id": account.id, "choices": ranked,
                  "created_at": now, "updated_at": now, "withdrawn": False,
                  "idempotency_key": idempotency_key}
        opened = _opening(uow, deps, round_id) if uow.postgres else None
        if opened is not None:
            # The peak's case: the entry, its event and its signed receipt in one statement,
            # signed with the key that signed the round's opening.
            opening, key = opened
            signed = make_receipt(deps.round_key(key), round_id=str(round_id), opening=opening,
                                  ref=ref, seq=1, kind="entry",
                                  choices=[str(c) for c in ranked], at=now)
            uow.flush()
            if read is not None:
                # The commit in the same message, when the transaction wrote nothing before
                # (the shared list's event).
                commit = not uow.events.appended
                row = uow.rounds.add_entry_and_commit(
                    values, uow.events.along("entry.created", now, **event),
                    receipt_values(signed), commit=commit)
            else:
                row = uow.rounds.add_new_entry(values, uow.events.along("entry.created", now,
                                                                        **event),
                                               receipt_values(signed))
            uow.commit()
            deps.views.forget(("choices", round_id))
            return EntryView(row, receipt=signed)
        row = uow.rounds.add_entry(**values)
        kind = "entry.created"
        receipt_kind = "entry"
    else:
        owner = existing.account_id
        if owner != account.id:
            # The identity's holder may re-enter once they withdrew what another account
            # entered under their identity; anyone else is told it is taken.
            if not (existing.withdrawn and identities.holds(uow, account, patient_id)):
                raise Conflict("this patient already entered this round from another "
                               "account", code="already_entered")
            owner = account.id or 0
        row = uow.rounds.change_entry(
            existing.id, choices=ranked, updated_at=now, withdrawn=False, account_id=owner,
            idempotency_key=idempotency_key if owner != existing.account_id
            else idempotency_key or existing.idempotency_key)
        kind = "entry.changed"
        receipt_kind = "change"
    uow.events.append(kind, now, **event)
    uow.flush()
    receipt = _receipt(uow, deps, row, receipt_kind, now)
    uow.commit()
    deps.views.forget(("choices", round_id))
    return EntryView(row, receipt=receipt)


def _receipt(uow: UnitOfWork, deps: Deps, row: Entry, kind: str,
             now: dt.datetime) -> dict[str, Any] | None:
    """Sign and keep the receipt of this write (none for a round opened before signed
    rounds, which has no opening to name)."""
    signed = _opening(uow, deps, row.round_id)
    if signed is None:
        return None
    opening, key = signed
    receipt = make_receipt(
        deps.round_key(key), round_id=str(row.round_id), opening=opening, ref=row.ref,
        seq=1 if kind == "entry" else uow.draw.last_seq(row.id) + 1, kind=kind,
        choices=[] if kind == "withdrawal" else [str(c) for c in row.choices], at=now)
    uow.draw.add_receipt(row.round_id, row.id, receipt)
    return receipt


def _opening(uow: UnitOfWork, deps: Deps,
             round_id: int) -> tuple[str, str | None] | None:
    """The digest of the round's signed opening and the key that signed it (which signs
    its receipts too), which never change once written: kept by this process, as every
    entry at a release's peak signs a receipt naming it."""
    opening: tuple[str, str | None] | None = deps.views.get(
        ("opening", round_id), _OPENING_KEPT_SECONDS,
        lambda: uow.draw.opening_signed(round_id))
    if opening is None:
        deps.views.forget(("opening", round_id))  # a round without one: not worth keeping
    return opening


def _with_receipt(uow: UnitOfWork, row: Entry) -> EntryView:
    return EntryView(row, receipt=uow.draw.latest_receipts([row.id]).get(row.id))


def entry_by_key(uow: UnitOfWork, deps: Deps, account_id: int, key: str) -> EntryView | None:
    row = uow.rounds.entry_by_key(account_id, key)
    return None if row is None else _with_receipt(uow, row)


def withdraw(uow: UnitOfWork, deps: Deps, account: Account, entry_id: int,
             ctx: RequestContext) -> EntryView:
    """Withdraw the entry while the window is open; returns it with the signed receipt of
    the withdrawal (withdrawing again is refused: there is nothing left to withdraw)."""
    now = deps.clock.now()
    entry = uow.rounds.entry(entry_id)
    if entry is None or (entry.account_id != account.id
                         and not identities.holds(uow, account, entry.patient_id)):
        raise NotFound("no such entry", code="entry_not_found")
    round_ = uow.rounds.get(entry.round_id, for_share=True)
    if round_ is None or not round_.is_open_at(now):
        raise Conflict("the request window has closed", code="window_closed")
    if entry.withdrawn:
        raise Conflict("this entry is already withdrawn", code="already_withdrawn")
    uow.rounds.update_entry(entry_id, withdrawn=True, updated_at=now)
    uow.events.append("entry.withdrawn", now, account_id=account.id,
                      patient_id=entry.patient_id, detail={"round": entry.round_id},
                      **ctx.event_fields())
    row = uow.rounds.entry(entry_id)
    assert row is not None
    receipt = _receipt(uow, deps, row, "withdrawal", now)
    uow.commit()
    deps.views.forget(("choices", entry.round_id))
    return EntryView(row, receipt=receipt)


def my_entries(uow: UnitOfWork, deps: Deps, account: Account) -> list[EntryView]:
    rows = uow.rounds.entries_of_account(account.id or 0)
    rounds = uow.rounds.by_ids([r.round_id for r in rows])
    receipts = uow.draw.latest_receipts([r.id for r in rows])
    views = []
    for row in rows:
        ahead = None
        if row.outcome is EntryOutcome.WAITLIST and row.position is not None:
            ahead = uow.rounds.waitlist_ahead(row.round_id, row.position)
        views.append(EntryView(row, rounds.get(row.round_id), ahead, receipts.get(row.id)))
    return views


def entry_receipt(uow: UnitOfWork, deps: Deps, account: Account, entry_id: int
                  ) -> dict[str, Any]:
    """The signed receipt of the account's entry's latest write."""
    entry = uow.rounds.entry(entry_id)
    receipt = None if entry is None or entry.account_id != account.id else \
        uow.draw.latest_receipts([entry_id]).get(entry_id)
    if receipt is None:
        raise NotFound("no receipt for this entry", code="entry_not_found")
    return receipt


def entry_proof(uow: UnitOfWork, deps: Deps, account: Account, entry_id: int
                ) -> dict[str, Any]:
    """After the close: the inclusion proof of the account's entry in the frozen list."""
    entry = uow.rounds.entry(entry_id)
    if entry is None or entry.account_id != account.id:
        raise NotFound("no such entry", code="entry_not_found")
    return inclusion_proof(uow, deps, entry.round_id, entry.ref)

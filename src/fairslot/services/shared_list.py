"""The consortium's shared list, consulted where a scalper would get in: registration,
identity linking, draw entry, booking and payment (docs/consortium.md, "Enforcement").

``consult`` looks the request's identifiers up in memory (``SharedList.check``, which is
``fairslot.consortium.Consortium`` in the platform) and applies this hospital's policy per
entry kind, after any review its staff made of the entry:

- ``refuse``: the request is refused (``consortium_refused``; for another hospital's
  no-show suspension, ``consortium_suspended`` with the entry's expiry, as the credit rule
  would say of one of this hospital's own);
- ``hold``: the request waits for a member of staff (``consortium_held``); a pending review
  of the entry is opened, and once staff clear it the entry stops applying here, or once
  they refuse it the entry is refused here from then on;
- ``lower_quota``: the request goes on under the lowered quotas
  (``consortium_lowered_quota``).

Nothing the other hospital knows about the person is shown: a refusal names the entries'
issuers, kinds and expiry only. Every match is an event (``consortium.matched``) with the
entries' references and the outcome, and no identifier."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Protocol

from fairslot.consortium.model import Action, EntryKind, Match, SubjectType
from fairslot.consortium.store import Appeal, Review
from fairslot.domain.accounts import Account, Role
from fairslot.domain.credit import Suspended
from fairslot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

__all__ = ["CLEAR", "Affecting", "ConsortiumHeld", "ConsortiumRefused", "Point", "SharedList",
           "Verdict", "affecting", "appeal", "consult", "decide_review", "reviews"]


class SharedList(Protocol):
    def check(self, *, identity: str | None = None, phone: str | None = None,
              payer: str | None = None, device: str | None = None,
              at: dt.datetime | None = None) -> list[Match]: ...

    def member_code(self) -> str | None:
        """This hospital's code in the consortium (None before it has a key)."""

    def appeal(self, issuer: str, entry_no: int, subject: SubjectType, identifier: str,
               message: str, *, patient_id: int | None = None, actor: str) -> Appeal: ...

    def appeals_about(self, refs: Iterable[tuple[str, int]],
                      patient_ids: Iterable[int]) -> list[Appeal]:
        """Appeals sent from here about these entries or for these patients."""

    def reviews(self, *, status: str | None = None) -> list[Review]: ...

    def decide_review(self, ref: str, *, clear: bool, note: str, actor: str) -> Review: ...


class Point(StrEnum):
    REGISTRATION = "registration"
    IDENTITY_LINK = "identity_link"
    DRAW_ENTRY = "draw_entry"
    BOOKING = "booking"
    PAYMENT = "payment"


class ConsortiumRefused(Forbidden):
    code = "consortium_refused"
    title = "Refused on the consortium's shared list"


class ConsortiumHeld(Conflict):
    code = "consortium_held"
    title = "Held for review"


_RANK = {Action.LOWER_QUOTA: 1, Action.HOLD: 2, Action.REFUSE: 3}


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    matches: tuple[Match, ...] = ()
    lowered: bool = False
    """The request goes on under the lowered quotas."""


CLEAR = Verdict()


def _effective(match: Match, review: str | None) -> Action:
    """The action after this hospital's staff reviewed the entry (if they did)."""
    if review == "cleared":
        return Action.IGNORE
    if review == "refused":
        return Action.REFUSE
    return match.action


def _public(match: Match) -> dict[str, Any]:
    return {"entry": match.ref, "kind": match.kind.value,
            "role": match.role.value if match.role else None,
            "expires_at": match.expires_at.isoformat()}


def consult(uow: UnitOfWork, deps: Deps, point: Point, ctx: RequestContext | None = None, *,
            identity: str | None = None, phone: str | None = None, payer: str | None = None,
            patient_id: int | None = None, account_id: int | None = None) -> Verdict:
    """Look the request up on the shared list and apply the policy. Raises
    ``ConsortiumRefused`` (or ``Suspended``) or ``ConsortiumHeld``, after committing the
    event and the review it opened; returns whether the quotas are lowered."""
    shared = deps.shared_list
    if shared is None:
        return CLEAR
    now = deps.clock.now()
    device = ctx.device_id if ctx is not None else None
    matches = shared.check(identity=identity, phone=phone, payer=payer, device=device, at=now)
    if not matches:
        return CLEAR
    reviews = uow.consortium.statuses((m.issuer, m.entry_no) for m in matches)
    acting = [(m, _effective(m, reviews.get((m.issuer, m.entry_no)))) for m in matches]
    acting = [(m, a) for m, a in acting if a is not Action.IGNORE]
    outcome = max((a for _, a in acting), key=_RANK.__getitem__, default=Action.IGNORE)
    fields = ctx.event_fields() if ctx is not None else {}
    uow.events.append("consortium.matched", now, account_id=account_id, patient_id=patient_id,
                      detail={"point": point.value, "outcome": outcome.value,
                              "entries": [m.ref for m in matches]}, **fields)
    if outcome is Action.IGNORE:
        return Verdict(tuple(matches))
    if outcome is Action.LOWER_QUOTA:
        return Verdict(tuple(matches), lowered=True)
    deciding = [m for m, a in acting if a is outcome]
    entries = [_public(m) for m in deciding]
    if outcome is Action.HOLD:
        for m in deciding:
            if uow.consortium.open(m.issuer, m.entry_no, point=point.value,
                                   patient_id=patient_id, account_id=account_id, now=now):
                uow.consortium.audit(now, f"{point.value}", "review.opened", m.issuer,
                                     m.entry_no, point=point.value)
        uow.commit()
        raise ConsortiumHeld("this request waits for a member of staff to review an entry "
                             "of another hospital's on the shared list; the registration "
                             "desk can tell you more, and you can appeal from your page",
                             entries=entries)
    uow.commit()
    suspensions = [m for m in deciding if m.kind is EntryKind.NO_SHOW_SUSPENSION]
    if len(suspensions) == len(deciding):
        until = max(m.expires_at for m in suspensions)
        raise Suspended(f"suspended until {until:%Y-%m-%d} by another hospital of the "
                        f"consortium for missed appointments ({suspensions[0].ref}); you "
                        "can appeal from your page", until=until, reason="consortium",
                        code="consortium_suspended", entries=entries)
    raise ConsortiumRefused("refused: an entry of another hospital's on the consortium's "
                            "shared list names this request; you can appeal from your page",
                            entries=entries)


# -- due process: what a patient sees on their page, and their appeal --------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Affecting:
    """Another hospital's entry that affects one of the account's people (or its phone):
    what the issuer published and what this hospital does about it; never the evidence."""

    match: Match
    patient_id: int | None
    """The family patient it names (None: the account's own phone)."""
    who: str
    """Whose identifier it names, for the page: the patient's name or "this account"."""
    appeals: tuple[Appeal, ...] = ()

    @property
    def ref(self) -> str:
        return self.match.ref


def _named(uow: UnitOfWork, deps: Deps, account: Account
           ) -> list[tuple[int | None, str, SubjectType, str]]:
    """Every identifier the account's page may show entries for: each family patient's
    ID number and phone, and the account's phone."""
    found: list[tuple[int | None, str, SubjectType, str]] = []
    for p in uow.patients.of_account(account.id or 0):
        found.append((p.id, p.name, SubjectType.IDENTITY, p.id_number))
        if p.phone:
            found.append((p.id, p.name, SubjectType.PHONE, p.phone))
    if account.phone:
        found.append((None, "this account", SubjectType.PHONE, account.phone))
    return found


def _entries_for(uow: UnitOfWork, deps: Deps, account: Account
                 ) -> list[tuple[Match, int | None, str, str]]:
    shared = deps.shared_list
    if shared is None:
        return []
    me = shared.member_code()
    now = deps.clock.now()
    out = []
    for patient_id, who, subject, value in _named(uow, deps, account):
        hits = shared.check(**{subject.value: value}, at=now)
        out += [(m, patient_id, who, value) for m in hits
                if m.issuer != me and m.subject_type is subject]
    return out


def affecting(uow: UnitOfWork, deps: Deps, account: Account) -> list[Affecting]:
    """Other hospitals' entries in force that this hospital applies to the account's
    people, with the appeals sent about them."""
    shared = deps.shared_list
    found = _entries_for(uow, deps, account)
    if shared is None or not found:
        return []
    patients = [pid for _, pid, _, _ in found if pid is not None]
    sent = shared.appeals_about([(m.issuer, m.entry_no) for m, *_ in found], patients)
    return [Affecting(m, pid, who, tuple(a for a in sent
                                         if (a.issuer, a.entry_no) == (m.issuer, m.entry_no)))
            for m, pid, who, _ in found]


def appeal(uow: UnitOfWork, deps: Deps, account: Account, entry_ref: str, message: str,
           ctx: RequestContext | None = None) -> Appeal:
    """A patient appeals an entry that affects one of their people: sent to the issuing
    hospital with the entry's pseudonym and the message (kept here and retried while the
    issuer is down). Only an entry that names one of the account's own identifiers can be
    appealed from its page."""
    shared = deps.shared_list
    if shared is None:
        raise NotFound("this hospital is not in a consortium", code="consortium_off")
    if not message.strip():
        raise InvalidInput("say why the entry is wrong", code="consortium_bad_appeal")
    for m, patient_id, _, value in _entries_for(uow, deps, account):
        if m.ref == entry_ref:
            sent = shared.appeal(m.issuer, m.entry_no, m.subject_type, value, message,
                                 patient_id=patient_id, actor=f"account:{account.id}")
            uow.events.append("consortium.appealed", deps.clock.now(), account_id=account.id,
                              patient_id=patient_id,
                              detail={"entry": m.ref, "status": sent.status},
                              **(ctx.event_fields() if ctx is not None else {}))
            uow.commit()
            return sent
    raise NotFound(f"no entry {entry_ref} affects this account's people",
                   code="consortium_no_entry")


# -- the desk's review of held requests --------------------------------------------------------


def _shared(deps: Deps) -> SharedList:
    if deps.shared_list is None:
        raise NotFound("this hospital is not in a consortium", code="consortium_off")
    return deps.shared_list


def reviews(uow: UnitOfWork, deps: Deps, staff: Account, *,
            status: str | None = "pending") -> list[Review]:
    """Other hospitals' entries this hospital's policy held for review (the desk's queue)."""
    from fairslot.services.accounts import require_role  # accounts imports this module

    require_role(staff, Role.REGISTRATION)
    return _shared(deps).reviews(status=status)


def decide_review(uow: UnitOfWork, deps: Deps, staff: Account, entry_ref: str, *,
                  clear: bool, note: str) -> Review:
    """A member of staff clears an entry held for review (it stops applying here) or
    refuses it (refused here from then on); audited with who decided."""
    from fairslot.services.accounts import require_role

    require_role(staff, Role.REGISTRATION)
    if not 1 <= len(note.strip()) <= 500:
        raise InvalidInput("give the decision a note (up to 500 characters)",
                           code="consortium_no_reason")
    return _shared(deps).decide_review(entry_ref, clear=clear, note=note,
                                       actor=f"staff:{staff.username}")


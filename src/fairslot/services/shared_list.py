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
import pathlib
import unicodedata
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from fairslot.consortium.model import Action, Entry, EntryKind, Match, RingRole, SubjectType
from fairslot.consortium.store import Appeal, NewEntry, OwnEntry, Review
from fairslot.domain.accounts import Account, Role
from fairslot.domain.credit import Suspended
from fairslot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from fairslot.domain.identity import normalize_id_number
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps
from fairslot.storage.uow import UnitOfWork

if TYPE_CHECKING:
    from fairslot.consortium.service import Consortium, MemberStatus

__all__ = ["CLEAR", "OFFICERS", "READERS", "Affecting", "ConsortiumHeld", "ConsortiumRefused",
           "Matched", "Officer", "OfficerView", "Point", "RingPublished", "SharedList", "Shell",
           "Verdict", "affecting", "appeal", "appeals", "consult", "decide_appeal",
           "decide_review", "lookup", "may_publish", "officer_view", "publish", "publish_ring",
           "reviews", "withdraw"]


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


def reviews(uow: UnitOfWork, deps: Deps, staff: Officer, *,
            status: str | None = "pending") -> list[Review]:
    """Other hospitals' entries this hospital's policy held for review (the desk's queue)."""
    _allow(staff, (Role.REGISTRATION,))
    return _shared(deps).reviews(status=status)


def decide_review(uow: UnitOfWork, deps: Deps, staff: Officer, entry_ref: str, *,
                  clear: bool, note: str) -> Review:
    """A member of staff clears an entry held for review (it stops applying here) or
    refuses it (refused here from then on); audited with who decided."""
    _allow(staff, (Role.REGISTRATION,))
    if not 1 <= len(note.strip()) <= 500:
        raise InvalidInput("give the decision a note (up to 500 characters)",
                           code="consortium_no_reason")
    return _shared(deps).decide_review(entry_ref, clear=clear, note=note, actor=_actor(staff))


# -- the blacklist officer: this hospital's own entries, the feeds received, appeals ---------
#
# Who may do what (docs/consortium.md, "The blacklist officer"). Investigators (and admins)
# are the officers: they confirm rings, so they publish entries, withdraw them and decide
# the appeals other hospitals forward. Operators may read the officer's page (this
# hospital's entries, the feeds received, the matches here and what was done), to watch the
# list's health, and change nothing; an appeal's message (a patient's own words) is not
# shown to them. The registration desk keeps its queue of held entries (``reviews``). The
# server's shell (``fairslot consortium``) is not checked: whoever runs it holds the
# database and the master secret; it acts as ``cli:<user>``.

OFFICERS = (Role.INVESTIGATOR,)
"""Who may publish, withdraw and decide appeals (admins may do everything)."""
READERS = (Role.INVESTIGATOR, Role.OPERATOR)
"""Who may read the officer's page."""
MAX_DAYS = 3650
MAX_EVIDENCE = 300


@dataclasses.dataclass(frozen=True, slots=True)
class Shell:
    """The server's own command line, run by ``user`` of the machine."""

    user: str

    @property
    def actor(self) -> str:
        return f"cli:{self.user}"[:64]


Officer = Account | Shell


def _allow(by: Officer, roles: Sequence[Role]) -> None:
    if isinstance(by, Shell):
        return
    from fairslot.services.accounts import require_role  # accounts imports this module

    require_role(by, *roles)


def _actor(by: Officer) -> str:
    return by.actor if isinstance(by, Shell) else f"staff:{by.username}"[:64]


def may_publish(by: Officer) -> bool:
    """Whether ``by`` may publish, withdraw and decide appeals (the page shows the forms)."""
    return isinstance(by, Shell) or by.role in (*OFFICERS, Role.ADMIN)


def _consortium(deps: Deps) -> Consortium:
    from fairslot.consortium.service import Consortium

    found = deps.shared_list
    if not isinstance(found, Consortium):
        raise NotFound("this hospital is not in a consortium", code="consortium_off")
    return found


def _audited(uow: UnitOfWork, deps: Deps, by: Officer, action: str, **detail: Any) -> None:
    """The officer's action in the event log, like other staff actions (the consortium's
    own audit log has it too, with the same actor). Never an identifier."""
    uow.events.append("consortium.officer", deps.clock.now(),
                      account_id=None if isinstance(by, Shell) else by.id,
                      detail={"action": action, "by": _actor(by), **detail})
    uow.commit()


def _evidence(source: str) -> str:
    text = " ".join(source.split())
    if not 1 <= len(text) <= MAX_EVIDENCE:
        raise InvalidInput("summarise the evidence the entry rests on (1 to 300 characters; "
                           "it stays at this hospital)", code="consortium_no_evidence")
    return text


def _lifetime(days: int) -> dt.timedelta:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput("an entry lasts 1 to 3650 days", code="consortium_bad_days")
    return dt.timedelta(days=days)


def _shared_payer(deps: Deps, subject: SubjectType, value: str) -> str:
    """A payer as the shared list names it: the payment provider's id of the payer."""
    if subject is not SubjectType.PAYER:
        return value
    from fairslot.services.payments import payer_key

    return payer_key(deps.payments, value)


def _identifier(subject: SubjectType, value: str) -> str:
    """A typed identifier that can name someone: no control character, and an ID number a
    valid resident ID (every patient's is one; any other would never match). Never echoed
    in the refusal."""
    text = value.strip()
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidInput(f"the {subject.value} holds a control character",
                           code="consortium_bad_identifier")
    if subject is SubjectType.IDENTITY:
        return normalize_id_number(text)
    return text


def publish(uow: UnitOfWork, deps: Deps, by: Officer, *, kind: EntryKind,
            role: RingRole | None, severity: int, days: int, source: str,
            identifiers: Sequence[tuple[SubjectType, str]] = (),
            patient_id: int | None = None,
            starts_at: dt.datetime | None = None) -> list[Entry]:
    """Publish one entry per identifier (and the ID number of ``patient_id``, one of this
    hospital's patients): only the pseudonym leaves; the clear value and ``source`` (the
    evidence summary) stay here."""
    _allow(by, OFFICERS)
    c = _consortium(deps)
    if role is not None and kind is not EntryKind.RING_MEMBER:
        raise InvalidInput("a role goes with a ring member's entry only",
                           code="consortium_bad_role")
    lifetime, evidence = _lifetime(days), _evidence(source)
    values = [(s, _identifier(s, v)) for s, v in identifiers if v and v.strip()]
    if patient_id is not None:
        patient = uow.patients.get(patient_id)
        if patient is None:
            raise NotFound(f"no patient {patient_id} here", code="patient_not_found")
        values.append((SubjectType.IDENTITY, patient.id_number))
    if not values:
        raise InvalidInput("name at least one identifier (ID number, phone, payer, device) "
                           "or a patient", code="consortium_no_identifier")
    starts = starts_at or deps.clock.now()
    items = [NewEntry(kind, role, severity, starts, starts + lifetime, s,
                      _shared_payer(deps, s, v), evidence) for s, v in values]
    published = c.publish(items, _actor(by))
    _audited(uow, deps, by, "published", entries=[e.ref for e in published],
             kind=kind.value, days=days)
    return published


@dataclasses.dataclass(frozen=True, slots=True)
class RingPublished:
    entries: list[NewEntry]
    """What was (or, on a dry run, would be) published."""
    skipped: dict[str, int]
    unresolved: int
    published: list[Entry]


def publish_ring(uow: UnitOfWork, deps: Deps, by: Officer, folder: pathlib.Path,
                 rings: Sequence[str], *, days: int = 365, include_customers: bool = False,
                 skip_unresolved: bool = False, dry_run: bool = False) -> RingPublished:
    """Publish the identifiers of rings an investigator confirmed, from an investigation's
    output folder (``suspects.csv``, clear or pseudonymised; docs/consortium.md)."""
    from fairslot.consortium.rings import read_ring

    _allow(by, OFFICERS)
    c = _consortium(deps)
    wanted = [r.strip() for r in rings if r.strip()]
    if not wanted:
        raise InvalidInput("name the rings the investigator confirmed (e.g. R3)",
                           code="consortium_no_ring")
    now = deps.clock.now()
    found = read_ring(folder, wanted, engine=c.store.engine, keyring=deps.keyring,
                      starts_at=now, expires_at=now + _lifetime(days),
                      include_customers=include_customers)
    if found.unresolved and not skip_unresolved:
        why = (f"{found.unresolved} h: values are not pseudonyms of this hospital's "
               "records (another hospital's export, or another master secret); nothing "
               "published")
        raise InvalidInput(why, code="consortium_unresolved", count=found.unresolved)
    if not found.entries:
        why = f"nothing to publish from ring(s) {', '.join(wanted)}"
        raise InvalidInput(why, code="consortium_empty_ring")
    entries = [dataclasses.replace(e, identifier=_shared_payer(deps, e.subject_type,
                                                               e.identifier))
               for e in found.entries]
    if dry_run:
        return RingPublished(entries, found.skipped, found.unresolved, [])
    published = c.publish(entries, _actor(by))
    _audited(uow, deps, by, "ring_published", rings=wanted,
             entries=[published[0].ref, published[-1].ref], count=len(published), days=days)
    return RingPublished(entries, found.skipped, found.unresolved, published)


def withdraw(uow: UnitOfWork, deps: Deps, by: Officer, entry_no: int, reason: str) -> Entry:
    """Withdraw one of this hospital's entries: a new version of it in the feed, which every
    member applies at its next sync (and this hospital at once)."""
    _allow(by, OFFICERS)
    c = _consortium(deps)
    if not 1 <= len(reason.strip()) <= 300:
        raise InvalidInput("say why the entry is withdrawn (up to 300 characters)",
                           code="consortium_no_reason")
    entry = c.withdraw(entry_no, reason, _actor(by))
    _audited(uow, deps, by, "withdrawn", entries=[entry.ref])
    return entry


def appeals(uow: UnitOfWork, deps: Deps, by: Officer) -> list[Appeal]:
    """Appeals sent from here and received here, oldest first. A received appeal's message
    is the patient's own words: for the officers only."""
    _allow(by, READERS)
    found = _consortium(deps).store.appeals()
    if may_publish(by):
        return found
    return [dataclasses.replace(a, message="") for a in found]


def decide_appeal(uow: UnitOfWork, deps: Deps, by: Officer, ref: str, *, withdraw: bool,
                  note: str) -> Appeal:
    """Decide an appeal another member forwarded about one of this hospital's entries:
    withdraw the entry (the withdrawal reaches every member through the feed) or uphold it,
    with the reasons."""
    _allow(by, OFFICERS)
    if not 1 <= len(note.strip()) <= 500:
        raise InvalidInput("give the decision a note (up to 500 characters)",
                           code="consortium_no_reason")
    decided = _consortium(deps).decide_appeal(ref, withdraw=withdraw, note=note,
                                              actor=_actor(by))
    _audited(uow, deps, by, "appeal_decided", appeal=decided.ref, status=decided.status,
             entries=[f"{decided.issuer}/{decided.entry_no}"])
    return decided


def lookup(uow: UnitOfWork, deps: Deps, by: Officer, *, identity: str | None = None,
           phone: str | None = None, payer: str | None = None,
           device: str | None = None) -> list[Match]:
    """The entries in force that name these identifiers and this hospital's action. A
    look-up by a clear value tests whether a person is listed: the officers' only."""
    _allow(by, OFFICERS)
    c = _consortium(deps)
    if payer:
        payer = _shared_payer(deps, SubjectType.PAYER, payer)
    return c.check(identity=identity, phone=phone, payer=payer, device=device)


@dataclasses.dataclass(frozen=True, slots=True)
class Matched:
    """A request of this hospital's that named an entry on the list, and what was done
    (from the ``consortium.matched`` event): never the identifier that matched."""

    at: dt.datetime
    point: str
    outcome: str
    entries: tuple[str, ...]
    patient_id: int | None
    account_id: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class OfficerView:
    member: str | None
    epochs: tuple[int, ...]
    own: list[OwnEntry]
    members: list[MemberStatus]
    received: list[Entry]
    """The entries other members published last (newest change first, at most 50)."""
    appeals: list[Appeal]
    matches: list[Matched]
    reviews: dict[str, Review]
    audit: list[dict[str, Any]]
    may_publish: bool


def officer_view(uow: UnitOfWork, deps: Deps, by: Officer, *, limit: int = 50
                 ) -> OfficerView:
    """What the officer's page shows: this hospital's entries, the members and their feeds,
    the latest entries received, appeals both ways, the matches here with the outcome, and
    the consortium's audit log. Pseudonymous: no identifier of anyone."""
    _allow(by, READERS)
    c = _consortium(deps)
    me = c.member_code()
    members = c.status()
    others = [s.member.code for s in members if not s.member.hub]
    matched = [Matched(row.at, (row.detail or {}).get("point", ""),
                       (row.detail or {}).get("outcome", ""),
                       tuple((row.detail or {}).get("entries", ())), row.patient_id,
                       row.account_id)
               for row in uow.events.recent(limit, "consortium.matched")]
    return OfficerView(
        me, tuple(k.epoch for k in c.store.epochs()), c.store.own_entries(), members,
        c.store.latest_entries(others, limit) if others else [], appeals(uow, deps, by),
        matched, {r.ref: r for r in c.store.reviews()}, c.store.audit_log(limit),
        may_publish(by))

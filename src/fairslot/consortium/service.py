"""``Consortium``: what the rest of fairslot calls. ``check`` answers, from memory, whether
an identity, phone, payer or device is named by an entry in force and what this hospital's
policy does about it; the other methods publish and withdraw this hospital's entries, pull the
other members' feeds, and carry appeals.

One ``Consortium`` per process. Its in-memory index follows the database: ``refresh`` reads
what other processes (a CLI sync, another worker) have stored since, and applies it."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from fairslot.clock import Clock
from fairslot.consortium.client import FeedClient, SourceDown
from fairslot.consortium.feed import FeedError, ForkRefused, RollbackRefused, verify_page
from fairslot.consortium.index import Index
from fairslot.consortium.model import (
    Action,
    Entry,
    Match,
    Policy,
    SubjectType,
    check_member_code,
)
from fairslot.consortium.pseudonyms import EpochKey, normalise, pseudonym, pseudonym_bytes
from fairslot.consortium.signing import MemberKey, parse_public_key
from fairslot.consortium.store import Appeal, ConsortiumStore, MemberRow, NewEntry, Review
from fairslot.domain.errors import Conflict, FairslotError, InvalidInput, NotFound
from fairslot.storage.database import side_engine

__all__ = ["MAX_APPEAL_CHARS", "Consortium", "MemberStatus", "SyncResult"]

MAX_APPEAL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class SyncResult:
    member: str
    ok: bool
    source: str | None
    applied: int
    version: int
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MemberStatus:
    member: MemberRow
    entries: int
    stale: bool
    age: dt.timedelta | None
    """How old the freshest verified head of its feed is (None: never synced)."""


@dataclass(frozen=True, slots=True)
class _State:
    index: Index
    keys: tuple[EpochKey, ...]
    policy: Policy
    versions: dict[str, int]
    members: frozenset[str]
    epochs: frozenset[int]


class Consortium:
    def __init__(self, engine: Engine, clock: Clock, *, http: httpx.Client | None = None,
                 stale_after: dt.timedelta = dt.timedelta(hours=1)) -> None:
        # Beside the requests' pool: a request holding one of its connections calls in here
        # (a look-up's first read of the list, the desk's reviews, a patient's appeal).
        self.store = ConsortiumStore(side_engine(engine))
        self.clock = clock
        self.stale_after = stale_after
        self._http = http
        self._lock = threading.Lock()
        # Built on first use: the routes that serve feeds and take appeals never need it.
        self._loaded: _State | None = None

    @property
    def _state(self) -> _State:
        state = self._loaded
        return self.load() if state is None else state

    def load(self) -> _State:
        """The list in memory, read from the database if it is not yet. A server reads it
        at its start, so that no request waits for it; anything else reads it at its first
        look-up (on the side engine's connection, while the caller holds a pooled one)."""
        with self._lock:
            if self._loaded is None:
                self._loaded = self._build()
            return self._loaded

    # -- the look-up ---------------------------------------------------------------------------

    def check(self, *, identity: str | None = None, phone: str | None = None,
              payer: str | None = None, device: str | None = None,
              at: dt.datetime | None = None) -> list[Match]:
        """Entries in force (at ``at``, by default now) naming any of these identifiers,
        with this hospital's action for each; entries whose kind this hospital ignores are
        left out. Reads memory only."""
        state = self._state
        now = int((at or self.clock.now()).timestamp())
        found: list[Match] = []
        for subject, value in ((SubjectType.IDENTITY, identity), (SubjectType.PHONE, phone),
                               (SubjectType.PAYER, payer), (SubjectType.DEVICE, device)):
            if not value or not value.strip():
                continue
            for key in state.keys:
                for hit in state.index.lookup(pseudonym_bytes(key, subject, value), now):
                    action = state.policy.action(hit.kind, hit.role)
                    if action is not Action.IGNORE:
                        found.append(Match(hit.issuer, hit.entry_no, hit.kind, hit.role,
                                           hit.severity, hit.starts_at, hit.expires_at,
                                           hit.subject_type, action))
        return found

    @property
    def index_size(self) -> int:
        return len(self._state.index)

    # -- keeping the index in step with the database ----------------------------------------

    def _active(self) -> tuple[frozenset[str], tuple[EpochKey, ...]]:
        me = self.store.self_row()
        members = {m.code for m in self.store.members() if not m.hub}
        if me is not None:
            members.add(me.member)
        return frozenset(members), tuple(self.store.epochs())

    def _build(self) -> _State:
        members, keys = self._active()
        versions = self.store.feed_versions()  # before the entries: a change in between
        epochs = frozenset(k.epoch for k in keys)  # is applied twice, which is harmless
        index = Index.from_records(self.store.entry_records(sorted(members), sorted(epochs)))
        return _State(index, keys, self.store.policy(), versions, members, epochs)

    def refresh(self) -> None:
        """Apply what the database holds beyond this process's index: new feed versions,
        policies; rebuild when a member or an epoch came or went; read the whole list if
        this process has not yet."""
        if self._loaded is None:
            self.load()  # not read yet (a server's read at its start failed): read it now
            return
        with self._lock:
            state = self._loaded
            members, keys = self._active()
            epochs = frozenset(k.epoch for k in keys)
            if members != state.members or epochs != state.epochs:
                self._loaded = self._build()
                return
            versions = self.store.feed_versions()
            changes: list[Entry] = []
            for member in sorted(members):
                if versions.get(member, 0) > state.versions.get(member, 0):
                    for entry in self.store.changes_after(member,
                                                            state.versions.get(member, 0)):
                        if entry.epoch not in epochs and not entry.withdrawn:
                            entry = _as_withdrawn(entry)
                        changes.append(entry)
            index = state.index.apply(changes) if changes else state.index
            self._loaded = _State(index, keys, self.store.policy(), versions, members, epochs)

    # -- this hospital's own entries --------------------------------------------------------

    def _current_key(self) -> EpochKey:
        keys = self.store.epochs()
        if not keys:
            raise FairslotError("no consortium epoch key here: add the consortium's current "
                                "key with `fairslot consortium epoch add`",
                                code="consortium_no_epoch")
        return keys[-1]

    def publish(self, items: Sequence[NewEntry], actor: str) -> list[Entry]:
        """Publish entries (one feed version each); the clear identifiers stay here."""
        if not items:
            return []
        key = self._current_key()
        for item in items:
            if not 1 <= item.severity <= 3:
                raise InvalidInput("severity is 1, 2 or 3", code="consortium_bad_severity")
            if item.expires_at <= item.starts_at or item.expires_at <= self.clock.now():
                raise InvalidInput("an entry must expire after it starts and in the future",
                                   code="consortium_bad_expiry")
        clear = [NewEntry(i.kind, i.role, i.severity, i.starts_at, i.expires_at,
                          i.subject_type, normalise(i.subject_type, i.identifier), i.source)
                 for i in items]
        names = [pseudonym(key, i.subject_type, i.identifier) for i in clear]
        entries = self.store.publish(clear, names, key.epoch, self.clock.now(), actor)
        self.refresh()
        return entries

    def withdraw(self, entry_no: int, reason: str, actor: str) -> Entry:
        if not reason.strip():
            raise InvalidInput("say why the entry is withdrawn", code="consortium_no_reason")
        entry = self.store.withdraw(entry_no, reason.strip(), self.clock.now(), actor)
        self.refresh()
        return entry

    def rekey(self, actor: str) -> int:
        """Republish every active own entry under the newest epoch key."""
        key = self._current_key()
        stale = [o.entry for o in self.store.own_entries(active_only=True)
                 if o.entry.epoch != key.epoch]
        clear = self.store.own_identifiers([e.entry_no for e in stale])
        names = {e.entry_no: pseudonym(key, e.subject_type, clear[e.entry_no]) for e in stale}
        done = self.store.rekey(names, key.epoch, self.clock.now(), actor)
        self.refresh()
        return done

    # -- other members' feeds ---------------------------------------------------------------

    def _client(self) -> FeedClient:
        me = self.store.self_row()
        if me is None:
            raise FairslotError("this hospital has no consortium key yet: run "
                                "`fairslot consortium keys` first", code="consortium_no_key")
        return FeedClient(me.key, self.clock, self._http)

    def sync(self, members: Sequence[str] | None = None) -> list[SyncResult]:
        """Pull every member's feed now: from the member, or when it is down or refuses,
        from each hub in turn. What was applied before stays whatever happens."""
        client = self._client()
        try:
            rows = self.store.members()
            hubs = [m for m in rows if m.hub]
            wanted = [m for m in rows if not m.hub and (members is None or m.code in members)]
            if members is not None and (unknown := set(members) - {m.code for m in wanted}):
                raise NotFound(f"no member {', '.join(sorted(unknown))}",
                               code="consortium_no_member")
            results = [self._sync_one(client, m, hubs) for m in wanted]
            self._deliver_pending(client)
        finally:
            if self._http is None:
                client.close()
        self.refresh()
        self._note_withdrawn_appeals()
        return results

    def _sync_one(self, client: FeedClient, member: MemberRow,
                  hubs: Sequence[MemberRow]) -> SyncResult:
        errors: list[str] = []
        public = parse_public_key(member.public_key)
        for url, label in [(member.url, "member")] + [(h.url, f"hub {h.code}") for h in hubs]:
            applied = 0
            try:
                while True:
                    row = self.store.member(member.code)
                    assert row is not None
                    page = client.fetch(url, member.code, row.version)
                    verified = verify_page(member.code, public, row.version, row.chain, page)
                    if not verified.changes:
                        self.store.note_fresh_head(member.code, verified.head, self.clock.now())
                        break
                    applied += len(self.store.apply(member.code, verified, self.clock.now(),
                                                    source=label))
                    if verified.head.version >= verified.head.latest:
                        break
            except SourceDown as exc:
                errors.append(f"{label}: unreachable ({exc})")
                continue
            except (FeedError, RollbackRefused, ForkRefused) as exc:
                errors.append(f"{label}: {exc.detail}")
                self.store.record_attempt(member.code, self.clock.now(), "; ".join(errors))
                self.store.audit_refusal(member.code, label, exc.code, exc.detail,
                                         self.clock.now())
                continue
            row = self.store.member(member.code)
            assert row is not None
            if errors:  # served by a relay after the member failed: say so in the status
                self.store.record_attempt(member.code, self.clock.now(), "; ".join(errors))
            return SyncResult(member.code, True, label, applied, row.version, tuple(errors))
        self.store.record_attempt(member.code, self.clock.now(), "; ".join(errors))
        return SyncResult(member.code, False, None, 0, member.version, tuple(errors))

    def status(self) -> list[MemberStatus]:
        now = self.clock.now()
        counts = self._state.index.count_by_member()
        out = []
        for m in self.store.members():
            age = None if m.head_at is None else now - m.head_at
            stale = not m.hub and (age is None or age > self.stale_after)
            out.append(MemberStatus(m, counts.get(m.code, 0), stale, age))
        return out

    # -- members and policy -----------------------------------------------------------------

    def add_member(self, code: str, url: str, public_key: str, *, name: str = "",
                   hub: bool = False, actor: str) -> None:
        check_member_code(code)
        parse_public_key(public_key)
        if not url.startswith(("http://", "https://")):
            raise InvalidInput("a member's URL starts with https:// (or http:// on a private "
                               "network)", code="consortium_bad_url")
        self.store.add_member(code, name or code, url.rstrip("/"), public_key.strip(), hub,
                              self.clock.now(), actor)
        self.refresh()

    def set_policy(self, key: str, action: Action, actor: str) -> None:
        self.store.set_policy(Policy.parse_key(key), action, self.clock.now(), actor)
        self.refresh()

    # -- appeals ----------------------------------------------------------------------------

    def appeal(self, issuer: str, entry_no: int, subject: SubjectType, identifier: str,
               message: str, *, patient_id: int | None = None, actor: str) -> Appeal:
        """A patient here appeals another member's entry: checked against the entry (the
        patient's identifier must be the one it names), stored, and forwarded to the issuer
        with the pseudonym and the patient's message only. Kept and retried by ``sync``
        when the issuer is down."""
        message = message.strip()
        if not message or len(message) > MAX_APPEAL_CHARS:
            raise InvalidInput(f"an appeal's message has 1 to {MAX_APPEAL_CHARS} characters",
                               code="consortium_bad_appeal")
        entry = self.store.entry(issuer, entry_no)
        member = self.store.member(issuer)
        if entry is None or entry.withdrawn or member is None:
            raise NotFound(f"no entry {issuer}/{entry_no} in force here",
                           code="consortium_no_entry")
        keys = {k.epoch: k for k in self.store.epochs(include_retired=True)}
        key = keys.get(entry.epoch)
        if (key is None or entry.subject_type is not subject
                or pseudonym(key, subject, identifier) != entry.pseudonym):
            raise InvalidInput(f"entry {issuer}/{entry_no} does not name this patient's "
                               f"{subject.value}", code="consortium_not_named")
        now = self.clock.now()
        appeal = Appeal(str(uuid.uuid4()), "out", issuer, issuer, entry_no, entry.pseudonym,
                        message, patient_id, "pending", now, None, None, None, None)
        self.store.add_appeal(appeal, now, actor)
        client = self._client()
        try:
            self._deliver(client, appeal)
        finally:
            if self._http is None:
                client.close()
        found = self.store.appeal(appeal.ref)
        assert found is not None
        return found

    def _deliver(self, client: FeedClient, appeal: Appeal) -> None:
        member = self.store.member(appeal.issuer)
        if member is None:
            return
        body = {"ref": appeal.ref, "issuer": appeal.issuer, "entry_no": appeal.entry_no,
                "pseudonym": appeal.pseudonym, "message": appeal.message,
                "sent_at": self.clock.now().isoformat()}
        now = self.clock.now()
        try:
            status, answer = client.post_appeal(member.url, body)
        except SourceDown as exc:
            self.store.set_appeal(appeal.ref, now, "sync", error=f"issuer unreachable: {exc}")
            return
        if status in (200, 201):
            self.store.set_appeal(appeal.ref, now, "sync", status="delivered", sent_at=now,
                                  error=None)
        else:
            detail = str(answer.get("detail") or answer.get("code") or f"HTTP {status}")
            self.store.set_appeal(appeal.ref, now, "sync", status="refused",
                                  error=detail[:300])

    def _deliver_pending(self, client: FeedClient) -> None:
        for appeal in self.store.appeals(direction="out"):
            if appeal.status == "pending":
                self._deliver(client, appeal)

    def _note_withdrawn_appeals(self) -> None:
        for appeal in self.store.appeals(direction="out"):
            if appeal.status == "delivered":
                entry = self.store.entry(appeal.issuer, appeal.entry_no)
                if entry is not None and entry.withdrawn:
                    self.store.set_appeal(appeal.ref, self.clock.now(), "sync",
                                          status="withdrawn", decided_at=self.clock.now())

    def receive_appeal(self, sender: str, body: object) -> tuple[Appeal, bool]:
        """An appeal another member forwards to this hospital, the issuer. Returns the
        stored appeal and whether it is new (a repeat of one already received is not)."""
        me = self.store.self_row()
        if not isinstance(body, dict):
            raise InvalidInput("an appeal is a JSON object", code="consortium_bad_appeal")
        try:
            ref = str(uuid.UUID(str(body["ref"])))
            issuer, entry_no = str(body["issuer"]), int(body["entry_no"])
            name, message = str(body["pseudonym"]), str(body["message"]).strip()
        except (KeyError, ValueError, TypeError):
            raise InvalidInput("an appeal has ref (a UUID), issuer, entry_no, pseudonym and "
                               "message", code="consortium_bad_appeal") from None
        if me is None or issuer != me.member:
            raise NotFound(f"this hospital is not {issuer}", code="consortium_not_issuer")
        if not message or len(message) > MAX_APPEAL_CHARS:
            raise InvalidInput(f"an appeal's message has 1 to {MAX_APPEAL_CHARS} characters",
                               code="consortium_bad_appeal")
        known = self.store.appeal(ref)
        if known is not None:
            if known.member != sender or known.entry_no != entry_no:
                raise Conflict("this appeal reference is taken", code="consortium_appeal_ref")
            return known, False
        found = self.store.own_entries(entry_no=entry_no)
        # The pseudonym must be the entry's: a member cannot use appeals to probe.
        if not found or found[0].entry.pseudonym != name:
            raise NotFound(f"this hospital has no entry {entry_no} naming that pseudonym",
                           code="consortium_no_entry")
        now = self.clock.now()
        appeal = Appeal(ref, "in", sender, issuer, entry_no, name, message, None, "received",
                        now, now, None, None, None)
        self.store.add_appeal(appeal, now, f"member:{sender}")
        return appeal, True

    def decide_appeal(self, ref: str, *, withdraw: bool, note: str, actor: str) -> Appeal:
        """The issuer's answer: withdraw the entry (the withdrawal reaches every member
        through the feed) or uphold it."""
        appeal = self.store.appeal(ref)
        if appeal is None or appeal.direction != "in":
            raise NotFound(f"no appeal {ref} received here", code="consortium_no_appeal")
        if appeal.status != "received":
            raise Conflict(f"appeal {ref} was already decided ({appeal.status})",
                           code="consortium_appeal_decided")
        if not note.strip():
            raise InvalidInput("give the decision a note", code="consortium_no_reason")
        if withdraw:
            self.withdraw(appeal.entry_no, f"appeal {ref}: {note.strip()}", actor)
        self.store.set_appeal(ref, self.clock.now(), actor,
                              status="withdrawn" if withdraw else "upheld",
                              decided_at=self.clock.now(), decision=note.strip()[:500])
        found = self.store.appeal(ref)
        assert found is not None
        return found

    def member_code(self) -> str | None:
        me = self.store.self_row()
        return None if me is None else me.member

    def appeals_about(self, refs: Iterable[tuple[str, int]],
                      patient_ids: Iterable[int]) -> list[Appeal]:
        """Appeals sent from here about these entries or for these patients."""
        wanted, patients = set(refs), set(patient_ids)
        return [a for a in self.store.appeals(direction="out")
                if (a.issuer, a.entry_no) in wanted or a.patient_id in patients]

    def reviews(self, *, status: str | None = None) -> list[Review]:
        """Other members' entries held here for review (``status`` None: all)."""
        return self.store.reviews(status=status)

    def decide_review(self, ref: str, *, clear: bool, note: str, actor: str) -> Review:
        """A member of staff's decision on an entry held for review here: ``clear`` lets the
        person through from now on (the entry stops applying at this hospital), otherwise
        the entry is refused here from now on."""
        issuer, _, number = ref.partition("/")
        if not number.isdigit():
            raise InvalidInput("an entry is named issuer/number, e.g. nj-gulou/17",
                               code="consortium_bad_ref")
        if not note.strip():
            raise InvalidInput("give the decision a note", code="consortium_no_reason")
        return self.store.decide_review(issuer, int(number), "cleared" if clear else "refused",
                                        note.strip()[:500], self.clock.now(), actor)

    def create_key(self, member: str, name: str, actor: str) -> MemberKey:
        key = MemberKey.generate(check_member_code(member))
        self.store.set_self(key, name or member, self.clock.now(), actor)
        self.refresh()
        return key


def _as_withdrawn(entry: Entry) -> Entry:
    return Entry(entry.issuer, entry.entry_no, entry.version, entry.kind, entry.role,
                 entry.severity, entry.starts_at, entry.expires_at, entry.subject_type,
                 entry.pseudonym, entry.epoch, withdrawn=True)

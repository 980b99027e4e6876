"""The consortium's repository (SQLAlchemy Core): this hospital's member key and epoch keys,
the members it subscribes to, every feed as received, the current state of every entry, its
own entries (with the clear identifier, encrypted), policies, appeals and the audit log.

Each public method is one transaction. Every change to the consortium's state writes an
audit row in the same transaction."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fairslot.consortium.feed import (
    Head,
    Page,
    Verified,
    canonical,
    chain,
    change_body,
    genesis,
    page_end,
    parse_change,
)
from fairslot.consortium.index import Record
from fairslot.consortium.model import (
    Action,
    Entry,
    EntryKind,
    Policy,
    RingRole,
    SubjectType,
)
from fairslot.consortium.pseudonyms import EpochKey
from fairslot.consortium.signing import MemberKey
from fairslot.domain.errors import Conflict, FairslotError, NotFound
from fairslot.storage import tables as t

__all__ = ["Appeal", "ConsortiumStore", "MemberRow", "NewEntry", "OwnEntry", "Review",
           "SelfRow"]


@dataclass(frozen=True, slots=True)
class SelfRow:
    member: str
    name: str
    key: MemberKey
    public_key: str


@dataclass(frozen=True, slots=True)
class MemberRow:
    code: str
    name: str
    url: str
    public_key: str
    hub: bool
    removed: bool
    version: int
    chain: str
    head_at: dt.datetime | None
    attempt_at: dt.datetime | None
    success_at: dt.datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry this hospital is about to publish, with the clear identifier."""

    kind: EntryKind
    role: RingRole | None
    severity: int
    starts_at: dt.datetime
    expires_at: dt.datetime
    subject_type: SubjectType
    identifier: str
    source: str


@dataclass(frozen=True, slots=True)
class OwnEntry:
    entry: Entry
    source: str
    created_by: str
    created_at: dt.datetime
    withdrawn_at: dt.datetime | None
    withdraw_reason: str | None


@dataclass(frozen=True, slots=True)
class Review:
    """Another member's entry that this hospital's policy held for review: ``pending``,
    ``cleared`` (no longer applies here) or ``refused`` (refused here from then on)."""

    issuer: str
    entry_no: int
    status: str
    point: str
    patient_id: int | None
    account_id: int | None
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    note: str | None

    @property
    def ref(self) -> str:
        return f"{self.issuer}/{self.entry_no}"


@dataclass(frozen=True, slots=True)
class Appeal:
    ref: str
    direction: str
    member: str
    issuer: str
    entry_no: int
    pseudonym: str
    message: str
    patient_id: int | None
    status: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    decided_at: dt.datetime | None
    decision: str | None
    error: str | None


def _entry(row: Any) -> Entry:
    return Entry(row.member, int(row.entry_no), row.entry_version, EntryKind(row.kind),
                 RingRole(row.role) if row.role else None, row.severity, row.starts_at,
                 row.expires_at, SubjectType(row.subject), row.pseudonym, row.epoch,
                 withdrawn=row.withdrawn)


def _member(row: Any) -> MemberRow:
    return MemberRow(row.code, row.name, row.url, row.public_key, row.hub,
                     row.removed_at is not None, row.version, row.chain, row.head_at,
                     row.attempt_at, row.success_at, row.error)


def _appeal(row: Any) -> Appeal:
    return Appeal(row.ref, row.direction, row.member, row.issuer, int(row.entry_no),
                  row.pseudonym, row.message, row.patient_id, row.status, row.created_at,
                  row.sent_at, row.decided_at, row.decision, row.error)


class ConsortiumStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- audit ------------------------------------------------------------------------------

    @staticmethod
    def _audit(conn: Connection, now: dt.datetime, actor: str, action: str,
               member: str | None = None, entry_no: int | None = None, /,
               **detail: Any) -> None:
        conn.execute(t.consortium_audit.insert().values(
            at=now, actor=actor, action=action, member=member, entry_no=entry_no,
            detail=detail))

    def audit_log(self, limit: int = 50) -> list[dict[str, Any]]:
        a = t.consortium_audit
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(a).order_by(a.c.id.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in rows]

    # -- this hospital's key and the epoch keys ---------------------------------------------

    def self_row(self) -> SelfRow | None:
        s = t.consortium_self
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(s).where(s.c.id == 1)).first()
        if row is None:
            return None
        return SelfRow(row.member, row.name, MemberKey.from_secret(row.member, row.signing_key),
                       row.public_key)

    def set_self(self, key: MemberKey, name: str, now: dt.datetime, actor: str) -> None:
        s = t.consortium_self
        with self.engine.begin() as conn:
            if conn.execute(sa.select(s.c.id)).first() is not None:
                raise Conflict("this hospital already has a consortium key; its feed is "
                               "pinned by that key (see docs/consortium.md to replace it)",
                               code="consortium_key_exists")
            conn.execute(s.insert().values(id=1, member=key.member, name=name,
                                           signing_key=key.secret(),
                                           public_key=key.public_text, created_at=now))
            self._audit(conn, now, actor, "key.created", key.member, public_key=key.public_text)

    def epochs(self, *, include_retired: bool = False) -> list[EpochKey]:
        e = t.consortium_epochs
        query = sa.select(e).order_by(e.c.epoch)
        if not include_retired:
            query = query.where(e.c.retired_at.is_(None))
        with self.engine.connect() as conn:
            return [EpochKey.parse(r.epoch, r.key) for r in conn.execute(query)]

    def epoch_rows(self) -> list[tuple[int, dt.datetime, dt.datetime | None]]:
        e = t.consortium_epochs
        with self.engine.connect() as conn:
            return [(r.epoch, r.added_at, r.retired_at)
                    for r in conn.execute(sa.select(e).order_by(e.c.epoch))]

    def add_epoch(self, key: EpochKey, now: dt.datetime, actor: str) -> None:
        e = t.consortium_epochs
        with self.engine.begin() as conn:
            if conn.execute(sa.select(e.c.epoch).where(e.c.epoch == key.epoch)).first():
                raise Conflict(f"epoch {key.epoch} already has a key here",
                               code="consortium_epoch_exists")
            conn.execute(e.insert().values(epoch=key.epoch, key=key.text(), added_at=now))
            self._audit(conn, now, actor, "epoch.added", epoch=key.epoch)

    def retire_epoch(self, epoch: int, now: dt.datetime, actor: str) -> None:
        e = t.consortium_epochs
        with self.engine.begin() as conn:
            done = conn.execute(e.update().where(e.c.epoch == epoch, e.c.retired_at.is_(None))
                                .values(retired_at=now)).rowcount
            if not done:
                raise NotFound(f"no active epoch {epoch} here", code="consortium_no_epoch")
            self._audit(conn, now, actor, "epoch.retired", epoch=epoch)

    # -- members ----------------------------------------------------------------------------

    def add_member(self, code: str, name: str, url: str, public_key: str, hub: bool,
                   now: dt.datetime, actor: str) -> None:
        m = t.consortium_members
        with self.engine.begin() as conn:
            own = conn.execute(sa.select(t.consortium_self.c.member)).scalar()
            if own == code:
                raise Conflict(f"{code} is this hospital's own code",
                               code="consortium_member_is_self")
            row = conn.execute(sa.select(m).where(m.c.code == code)).first()
            if row is not None and row.removed_at is None:
                raise Conflict(f"member {code} is already pinned; remove it first to change "
                               "its key or address", code="consortium_member_exists")
            if row is not None:
                if row.public_key != public_key:
                    raise Conflict(f"member {code} was pinned with another key before; its "
                                   "history here was verified under that key",
                                   code="consortium_member_key_changed")
                conn.execute(m.update().where(m.c.code == code).values(
                    name=name, url=url, hub=hub, removed_at=None))
            else:
                conn.execute(m.insert().values(code=code, name=name, url=url,
                                               public_key=public_key, hub=hub, added_at=now,
                                               version=0, chain=genesis(code)))
            self._audit(conn, now, actor, "member.added", code, url=url, hub=hub,
                        public_key=public_key)

    def remove_member(self, code: str, now: dt.datetime, actor: str) -> None:
        m = t.consortium_members
        with self.engine.begin() as conn:
            done = conn.execute(m.update().where(m.c.code == code, m.c.removed_at.is_(None))
                                .values(removed_at=now)).rowcount
            if not done:
                raise NotFound(f"no member {code}", code="consortium_no_member")
            self._audit(conn, now, actor, "member.removed", code)

    def members(self, *, include_removed: bool = False) -> list[MemberRow]:
        m = t.consortium_members
        query = sa.select(m).order_by(m.c.code)
        if not include_removed:
            query = query.where(m.c.removed_at.is_(None))
        with self.engine.connect() as conn:
            return [_member(r) for r in conn.execute(query)]

    def member(self, code: str) -> MemberRow | None:
        m = t.consortium_members
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(m).where(m.c.code == code)).first()
        return None if row is None else _member(row)

    def record_attempt(self, code: str, now: dt.datetime, error: str | None) -> None:
        m = t.consortium_members
        values: dict[str, Any] = {"attempt_at": now, "error": error and error[:300]}
        if error is None:
            values["success_at"] = now
        with self.engine.begin() as conn:
            conn.execute(m.update().where(m.c.code == code).values(**values))

    # -- policies ---------------------------------------------------------------------------

    def policy(self) -> Policy:
        p = t.consortium_policies
        with self.engine.connect() as conn:
            return Policy({r.key: Action(r.action) for r in conn.execute(sa.select(p))})

    def set_policy(self, key: str, action: Action, now: dt.datetime, actor: str) -> None:
        p = t.consortium_policies
        with self.engine.begin() as conn:
            conn.execute(p.delete().where(p.c.key == key))
            conn.execute(p.insert().values(key=key, action=action.value, updated_at=now))
            self._audit(conn, now, actor, "policy.set", key=key, action=action.value)

    # -- own feed ---------------------------------------------------------------------------

    def _append(self, conn: Connection, member: str, entries: Sequence[Entry],
                now: dt.datetime) -> list[int]:
        """Append changes to this hospital's feed and update the entries' states; the feed
        versions given, in order."""
        c = t.consortium_changes
        last = conn.execute(sa.select(c.c.version, c.c.chain).where(c.c.member == member)
                            .order_by(c.c.version.desc()).limit(1)).first()
        version, running = (0, genesis(member)) if last is None else (last.version, last.chain)
        rows: list[dict[str, Any]] = []
        versions: list[int] = []
        for entry in entries:
            version += 1
            versions.append(version)
            body = change_body(version, entry)
            running = chain(running, body)
            rows.append({"member": member, "version": version, "body": body,
                         "chain": running})
        if rows:
            conn.execute(c.insert(), rows)
        self._put_entries(conn, entries, now)
        return versions

    @staticmethod
    def _put_entries(conn: Connection, entries: Sequence[Entry], now: dt.datetime) -> None:
        """Write entry states: new entries inserted, known ones updated, all in bulk."""
        if not entries:
            return
        e = t.consortium_entries
        member = entries[0].issuer
        assert all(x.issuer == member for x in entries)
        latest = {x.entry_no: x for x in entries}
        known = {int(n) for n in conn.execute(sa.select(e.c.entry_no).where(
            e.c.member == member, e.c.entry_no.in_(list(latest)))).scalars()}
        inserts, updates, withdrawals = [], [], []
        for x in latest.values():
            values = {"entry_version": x.version, "withdrawn": x.withdrawn,
                      "kind": x.kind.value, "role": x.role.value if x.role else None,
                      "severity": x.severity, "starts_at": x.starts_at,
                      "expires_at": x.expires_at, "subject": x.subject_type.value,
                      "pseudonym": x.pseudonym, "epoch": x.epoch, "updated_at": now}
            if x.entry_no not in known:
                inserts.append({"member": member, "entry_no": x.entry_no, **values})
            elif x.withdrawn:  # a withdrawal carries no pseudonym: keep the one held
                withdrawals.append({"m": member, "n": x.entry_no, "v": x.version})
            else:
                updates.append({"m": member, "n": x.entry_no, **values})
        if inserts:
            conn.execute(e.insert(), inserts)
        where = (e.c.member == sa.bindparam("m")) & (e.c.entry_no == sa.bindparam("n"))
        if withdrawals:
            conn.execute(e.update().where(where).values(
                withdrawn=True, entry_version=sa.bindparam("v"), updated_at=now), withdrawals)
        if updates:
            columns = [k for k in updates[0] if k not in ("m", "n")]
            conn.execute(e.update().where(where).values(
                {k: sa.bindparam(f"b_{k}") for k in columns}),
                [{"m": u["m"], "n": u["n"], **{f"b_{k}": u[k] for k in columns}}
                 for u in updates])

    def publish(self, new: Sequence[NewEntry], pseudonyms: Sequence[str], epoch: int,
                now: dt.datetime, actor: str) -> list[Entry]:
        me = self.self_row()
        if me is None:
            raise FairslotError("this hospital has no consortium key yet: run "
                                "`fairslot consortium keys` first", code="consortium_no_key")
        o = t.consortium_own_entries
        with self.engine.begin() as conn:
            self._lock_feed(conn)
            numbers = conn.execute(o.insert().returning(o.c.entry_no,
                                                        sort_by_parameter_order=True), [{
                "version": 1, "kind": item.kind.value, "role": item.role and item.role.value,
                "severity": item.severity, "starts_at": item.starts_at,
                "expires_at": item.expires_at, "subject": item.subject_type.value,
                "identifier": item.identifier, "pseudonym": name, "epoch": epoch,
                "source": item.source[:300], "created_by": actor, "created_at": now,
            } for item, name in zip(new, pseudonyms, strict=True)]).scalars().all()
            out = [Entry(me.member, int(no), 1, item.kind, item.role, item.severity,
                         item.starts_at, item.expires_at, item.subject_type, name, epoch)
                   for no, item, name in zip(numbers, new, pseudonyms, strict=True)]
            versions = self._append(conn, me.member, out, now)
            conn.execute(t.consortium_audit.insert(), [{
                "at": now, "actor": actor, "action": "entry.published", "member": me.member,
                "entry_no": entry.entry_no, "detail": {
                    "kind": item.kind.value, "role": item.role and item.role.value,
                    "subject": item.subject_type.value, "feed_version": version,
                    "expires_at": item.expires_at.isoformat(), "source": item.source[:300]},
            } for entry, item, version in zip(out, new, versions, strict=True)])
        return out

    def _lock_feed(self, conn: Connection) -> None:
        # One writer at a time appends to this hospital's feed: versions are dense and the
        # chain is linear. PostgreSQL locks the one row; SQLite has one writer anyway.
        s = t.consortium_self
        conn.execute(sa.select(s.c.id).where(s.c.id == 1).with_for_update())

    def withdraw(self, entry_no: int, reason: str, now: dt.datetime, actor: str) -> Entry:
        me = self.self_row()
        o = t.consortium_own_entries
        if me is None:
            raise NotFound(f"no own entry {entry_no}", code="consortium_no_entry")
        with self.engine.begin() as conn:
            self._lock_feed(conn)
            row = conn.execute(sa.select(o).where(o.c.entry_no == entry_no)).first()
            if row is None:
                raise NotFound(f"this hospital published no entry {entry_no}",
                               code="consortium_no_entry")
            if row.withdrawn_at is not None:
                raise Conflict(f"entry {entry_no} was already withdrawn "
                               f"({row.withdrawn_at.isoformat()})",
                               code="consortium_already_withdrawn")
            version = row.version + 1
            conn.execute(o.update().where(o.c.entry_no == entry_no).values(
                version=version, withdrawn_at=now, withdraw_reason=reason[:300]))
            entry = Entry(me.member, entry_no, version, EntryKind(row.kind),
                          RingRole(row.role) if row.role else None, row.severity,
                          row.starts_at, row.expires_at, SubjectType(row.subject),
                          row.pseudonym, row.epoch, withdrawn=True)
            [feed_version] = self._append(conn, me.member, [entry], now)
            self._audit(conn, now, actor, "entry.withdrawn", me.member, entry_no,
                        reason=reason[:300], feed_version=feed_version)
        return entry

    def own_entries(self, *, active_only: bool = False,
                    entry_no: int | None = None) -> list[OwnEntry]:
        """This hospital's entries, without their clear identifiers (not decrypted)."""
        o = t.consortium_own_entries
        me = self.self_row()
        query = sa.select(*[c for c in o.c if c.name != "identifier"]).order_by(o.c.entry_no)
        if active_only:
            query = query.where(o.c.withdrawn_at.is_(None))
        if entry_no is not None:
            query = query.where(o.c.entry_no == entry_no)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        member = me.member if me else ""
        return [OwnEntry(Entry(member, r.entry_no, r.version, EntryKind(r.kind),
                               RingRole(r.role) if r.role else None, r.severity, r.starts_at,
                               r.expires_at, SubjectType(r.subject), r.pseudonym, r.epoch,
                               withdrawn=r.withdrawn_at is not None),
                         r.source, r.created_by, r.created_at, r.withdrawn_at,
                         r.withdraw_reason) for r in rows]

    def own_identifiers(self, entry_nos: Sequence[int]) -> dict[int, str]:
        o = t.consortium_own_entries
        with self.engine.connect() as conn:
            return {r.entry_no: r.identifier for r in conn.execute(
                sa.select(o.c.entry_no, o.c.identifier).where(o.c.entry_no.in_(entry_nos)))}

    def rekey(self, pseudonyms: dict[int, str], epoch: int, now: dt.datetime,
              actor: str) -> int:
        """Republish these active own entries under ``epoch`` (a new version each)."""
        me = self.self_row()
        o = t.consortium_own_entries
        if me is None or not pseudonyms:
            return 0
        with self.engine.begin() as conn:
            self._lock_feed(conn)
            rows = conn.execute(sa.select(o).where(o.c.entry_no.in_(list(pseudonyms)),
                                                   o.c.withdrawn_at.is_(None))).all()
            changed = []
            for r in rows:
                version = r.version + 1
                conn.execute(o.update().where(o.c.entry_no == r.entry_no).values(
                    version=version, pseudonym=pseudonyms[r.entry_no], epoch=epoch))
                changed.append(Entry(
                    me.member, r.entry_no, version, EntryKind(r.kind),
                    RingRole(r.role) if r.role else None, r.severity, r.starts_at,
                    r.expires_at, SubjectType(r.subject), pseudonyms[r.entry_no], epoch))
            self._append(conn, me.member, changed, now)
            self._audit(conn, now, actor, "feed.rekeyed", me.member, epoch=epoch,
                        entries=len(rows))
        return len(rows)

    # -- serving a feed (own, or relayed) ---------------------------------------------------

    def feed_page(self, member: str, since: int, now: dt.datetime) -> Page | None:
        """Changes ``since+1 ..`` of ``member``'s feed up to the next page end, with a head
        signed now (own feed) or as the issuer signed it (a relayed feed). None when this
        server holds no feed of that member."""
        c = t.consortium_changes
        me = self.self_row()
        own = me is not None and me.member == member
        with self.engine.connect() as conn:
            latest = conn.execute(sa.select(sa.func.max(c.c.version))
                                  .where(c.c.member == member)).scalar()
            if own:
                latest = latest or 0
                end = page_end(since, latest) if since < latest else latest
            else:
                if latest is None:
                    return None
                signed = c.c.signature.is_not(None)
                wanted = page_end(since, latest)
                end = conn.execute(sa.select(sa.func.max(c.c.version)).where(
                    c.c.member == member, signed, c.c.version <= max(wanted, since),
                    c.c.version > since)).scalar()
                if end is None:
                    end = conn.execute(sa.select(sa.func.min(c.c.version)).where(
                        c.c.member == member, signed, c.c.version > since)).scalar()
                if end is None:  # nothing newer signed: the newest signed head we hold
                    end = conn.execute(sa.select(sa.func.max(c.c.version)).where(
                        c.c.member == member, signed)).scalar()
                if end is None:
                    return None
            rows = conn.execute(sa.select(c.c.version, c.c.body).where(
                c.c.member == member, c.c.version > since, c.c.version <= end)
                .order_by(c.c.version)).all()
            tip = conn.execute(sa.select(c).where(c.c.member == member,
                                                  c.c.version == end)).first()
        changes = [(r.version, r.body) for r in rows]
        if own:
            assert me is not None
            head = Head(member, end, tip.chain if tip else genesis(member), latest, now)
            return Page(head, head.sign(me.key), changes)
        # A relay serves the issuer's head exactly as it was signed.
        assert tip is not None and tip.head is not None
        return Page(Head.from_json(json.loads(tip.head)), tip.signature, changes)

    # -- applying what a member published ---------------------------------------------------

    def apply(self, member: str, verified: Verified, now: dt.datetime, source: str,
              actor: str = "sync") -> list[Entry]:
        """Store a verified page of ``member``'s feed and the entry states it brings.

        Idempotent: run twice, the second finds the member already at this version and
        changes nothing. Refused (``FeedError``) when a change goes back on an entry: an
        older entry version, or a withdrawn entry coming back."""
        from fairslot.consortium.feed import FeedError, ForkRefused

        m, c, e = t.consortium_members, t.consortium_changes, t.consortium_entries
        applied: list[Entry] = []
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(m).where(m.c.code == member).with_for_update()).first()
            if row is None:
                raise NotFound(f"no member {member}", code="consortium_no_member")
            first = verified.changes[0][0] if verified.changes else verified.head.version + 1
            if row.version >= verified.head.version or first != row.version + 1:
                if row.version == verified.head.version and row.chain != verified.head.chain:
                    raise ForkRefused(f"{member}'s version {row.version} differs from the one "
                                      "already applied: fork refused")
                return []  # another sync got here first
            known: dict[int, tuple[int, bool]] = {
                int(r.entry_no): (r.entry_version, r.withdrawn) for r in conn.execute(
                    sa.select(e.c.entry_no, e.c.entry_version, e.c.withdrawn).where(
                        e.c.member == member,
                        e.c.entry_no.in_({x[3].entry_no for x in verified.changes})))}
            rows = []
            for version, body, running, entry in verified.changes:
                prior = known.get(entry.entry_no)
                if prior is not None and (prior[1] or entry.version <= prior[0]):
                    raise FeedError(f"{member}'s change {version} goes back on entry "
                                    f"{entry.entry_no} (withdrawn, or an older version)")
                if prior is None and entry.withdrawn:
                    raise FeedError(f"{member}'s change {version} withdraws entry "
                                    f"{entry.entry_no}, which it never published")
                end = version == verified.head.version
                rows.append({"member": member, "version": version, "body": body,
                             "chain": running,
                             "head": canonical(verified.head.as_json()).decode() if end
                             else None, "signature": verified.signature if end else None})
                known[entry.entry_no] = (entry.version, entry.withdrawn)
                applied.append(entry)
            conn.execute(c.insert(), rows)
            self._put_entries(conn, applied, now)
            conn.execute(m.update().where(m.c.code == member).values(
                version=verified.head.version, chain=verified.head.chain,
                head_at=verified.head.issued_at, success_at=now, attempt_at=now, error=None))
            withdrawn = sum(1 for x in applied if x.withdrawn)
            self._audit(conn, now, actor, "feed.applied", member,
                        from_version=row.version, to_version=verified.head.version,
                        entries=len(applied) - withdrawn, withdrawals=withdrawn, source=source)
        return applied

    def audit_refusal(self, member: str, source: str, code: str, reason: str,
                      now: dt.datetime) -> None:
        """A feed page refused (rollback, fork, bad signature): nothing applied, but kept."""
        with self.engine.begin() as conn:
            self._audit(conn, now, "sync", "feed.refused", member, source=source, code=code,
                        reason=reason[:300])

    def note_fresh_head(self, member: str, head: Head, now: dt.datetime) -> None:
        """A verified head with nothing new: the member is up to date as of its time."""
        m = t.consortium_members
        with self.engine.begin() as conn:
            conn.execute(m.update().where(m.c.code == member, m.c.version == head.version)
                         .values(head_at=sa.case((m.c.head_at.is_(None), head.issued_at),
                                                 (m.c.head_at < head.issued_at,
                                                  head.issued_at), else_=m.c.head_at),
                                 success_at=now, attempt_at=now, error=None))

    # -- reading entries --------------------------------------------------------------------

    def entries(self, *, members: Sequence[str] | None = None,
                batch: int = 20_000) -> Iterator[Entry]:
        """Current entry states (withdrawn ones left out), streamed."""
        e = t.consortium_entries
        query = sa.select(e).where(e.c.withdrawn.is_(False))
        if members is not None:
            query = query.where(e.c.member.in_(list(members)))
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(query)
            while chunk := result.fetchmany(batch):
                yield from (_entry(r) for r in chunk)

    def entry_records(self, members: Sequence[str], epochs: Sequence[int],
                      batch: int = 50_000) -> Iterator[Record]:
        """Entries in force or to come (not withdrawn) of these members under these epochs,
        as plain tuples for the index, streamed."""
        e = t.consortium_entries
        query = sa.select(e.c.member, e.c.entry_no, e.c.kind, e.c.role, e.c.severity,
                          e.c.starts_at, e.c.expires_at, e.c.subject, e.c.pseudonym).where(
            e.c.withdrawn.is_(False), e.c.member.in_(list(members)),
            e.c.epoch.in_(list(epochs)))
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(query)
            while chunk := result.fetchmany(batch):
                yield from (tuple(r) for r in chunk)

    def latest_entries(self, members: Sequence[str], limit: int = 50) -> list[Entry]:
        """The entries these members published last (the highest numbers of each, withdrawn
        ones included), newest change first, at most ``limit``: what the officer's page
        shows of the feeds received. One look-up of the primary key per member, so a list
        of a million entries costs the same."""
        e = t.consortium_entries
        found: list[tuple[dt.datetime, Entry]] = []
        with self.engine.connect() as conn:
            for member in members:
                rows = conn.execute(sa.select(e).where(e.c.member == member).order_by(
                    e.c.entry_no.desc()).limit(limit)).all()
                found += [(r.updated_at, _entry(r)) for r in rows]
        found.sort(key=lambda x: (x[0], x[1].issuer, x[1].entry_no), reverse=True)
        return [entry for _, entry in found[:limit]]

    def changes_after(self, member: str, version: int) -> list[Entry]:
        c = t.consortium_changes
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.c.version, c.c.body).where(
                c.c.member == member, c.c.version > version).order_by(c.c.version)).all()
        return [parse_change(member, r.version, r.body) for r in rows]

    def feed_versions(self) -> dict[str, int]:
        c = t.consortium_changes
        with self.engine.connect() as conn:
            return {r.member: r.v for r in conn.execute(
                sa.select(c.c.member, sa.func.max(c.c.version).label("v")).group_by(c.c.member))}

    def entry(self, member: str, entry_no: int) -> Entry | None:
        e = t.consortium_entries
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(e).where(e.c.member == member,
                                                  e.c.entry_no == entry_no)).first()
        return None if row is None else _entry(row)

    # -- appeals ----------------------------------------------------------------------------

    def add_appeal(self, appeal: Appeal, now: dt.datetime, actor: str) -> bool:
        """Store an appeal; False (and nothing changed) when its ref is already stored."""
        a = t.consortium_appeals
        with self.engine.begin() as conn:
            if conn.execute(sa.select(a.c.id).where(a.c.ref == appeal.ref)).first():
                return False
            conn.execute(a.insert().values(
                ref=appeal.ref, direction=appeal.direction, member=appeal.member,
                issuer=appeal.issuer, entry_no=appeal.entry_no, pseudonym=appeal.pseudonym,
                message=appeal.message, patient_id=appeal.patient_id, status=appeal.status,
                created_at=appeal.created_at, sent_at=appeal.sent_at))
            self._audit(conn, now, actor, f"appeal.{appeal.direction}.{appeal.status}",
                        appeal.issuer, appeal.entry_no, ref=appeal.ref, other=appeal.member)
        return True

    def set_appeal(self, ref: str, now: dt.datetime, actor: str, **values: Any) -> None:
        a = t.consortium_appeals
        with self.engine.begin() as conn:
            conn.execute(a.update().where(a.c.ref == ref).values(**values))
            detail = {k: v for k, v in values.items() if k in ("status", "decision", "error")}
            self._audit(conn, now, actor, "appeal.updated", None, None, ref=ref, **detail)

    def appeals(self, *, direction: str | None = None) -> list[Appeal]:
        a = t.consortium_appeals
        query = sa.select(a).order_by(a.c.id)
        if direction is not None:
            query = query.where(a.c.direction == direction)
        with self.engine.connect() as conn:
            return [_appeal(r) for r in conn.execute(query)]

    def appeal(self, ref: str) -> Appeal | None:
        a = t.consortium_appeals
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(a).where(a.c.ref == ref)).first()
        return None if row is None else _appeal(row)


    # -- reviews (another member's entry held here for staff to review) ---------------------

    def reviews(self, *, status: str | None = None) -> list[Review]:
        r = t.consortium_reviews
        query = sa.select(r).order_by(r.c.id)
        if status is not None:
            query = query.where(r.c.status == status)
        with self.engine.connect() as conn:
            return [_review(row) for row in conn.execute(query)]

    def decide_review(self, issuer: str, entry_no: int, status: str, note: str,
                      now: dt.datetime, actor: str) -> Review:
        """Clear (the entry stops applying here) or refuse (refused here from now on) an
        entry held for review; a review can be decided again (staff change their mind)."""
        r = t.consortium_reviews
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(r).where(r.c.issuer == issuer,
                                                    r.c.entry_no == entry_no)).first()
            if found is None:
                if conn.execute(sa.select(t.consortium_entries.c.entry_no).where(
                        t.consortium_entries.c.member == issuer,
                        t.consortium_entries.c.entry_no == entry_no)).first() is None:
                    raise NotFound(f"no entry {issuer}/{entry_no} here",
                                   code="consortium_no_entry")
                conn.execute(r.insert().values(
                    issuer=issuer, entry_no=entry_no, status=status, point="staff",
                    created_at=now, decided_at=now, decided_by=actor, note=note))
            else:
                conn.execute(r.update().where(r.c.id == found.id).values(
                    status=status, decided_at=now, decided_by=actor, note=note))
            self._audit(conn, now, actor, f"review.{status}", issuer, entry_no, note=note)
            row = conn.execute(sa.select(r).where(r.c.issuer == issuer,
                                                  r.c.entry_no == entry_no)).one()
        return _review(row)


def _review(row: Any) -> Review:
    return Review(row.issuer, int(row.entry_no), row.status, row.point, row.patient_id,
                  row.account_id, row.created_at, row.decided_at, row.decided_by, row.note)

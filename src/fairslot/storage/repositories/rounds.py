"""Release rounds, their sessions and entries, as typed records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg.types.json
import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.domain.draw.entries import MAX_CHOICES
from fairslot.domain.rounds import Entry, EntryOutcome, Round, RoundKind, RoundStatus
from fairslot.storage import tables as t
from fairslot.storage.repositories import raw

__all__ = ["EntryTarget", "RoundRepository", "taking_entries"]


def _round(row: Any) -> Round:
    return Round(id=row.id, department_id=row.department_id, opens_at=row.opens_at,
                 closes_at=row.closes_at, status=RoundStatus(row.status), seed=row.seed,
                 commitment=row.commitment, entries_digest=row.entries_digest,
                 beacon=row.beacon, beacon_source=row.beacon_source,
                 revealed_seed=row.revealed_seed, drawn_at=row.drawn_at,
                 entries_count=row.entries_count, kind=RoundKind(row.kind))


def _entry(row: Any) -> Entry:
    return Entry(id=row.id, round_id=row.round_id, ref=row.ref, patient_id=row.patient_id,
                 account_id=row.account_id, choices=tuple(int(c) for c in row.choices),
                 created_at=row.created_at, updated_at=row.updated_at,
                 withdrawn=bool(row.withdrawn), idempotency_key=row.idempotency_key,
                 outcome=EntryOutcome(row.outcome) if row.outcome else None,
                 position=row.position, won_session_id=row.won_session_id,
                 won_rank=row.won_rank, booking_id=row.booking_id)


def _entry_of_row(row: Any) -> Entry | None:
    """The ``entry_*`` columns of ``_ENTRY_TARGET``'s row, or None if it has no entry."""
    if row.entry_id is None:
        return None
    return Entry(id=row.entry_id, round_id=row.entry_round_id, ref=row.entry_ref,
                 patient_id=row.entry_patient_id, account_id=row.entry_account_id,
                 choices=tuple(int(c) for c in row.entry_choices),
                 created_at=row.entry_created_at, updated_at=row.entry_updated_at,
                 withdrawn=bool(row.entry_withdrawn),
                 idempotency_key=row.entry_idempotency_key,
                 outcome=EntryOutcome(row.entry_outcome) if row.entry_outcome else None,
                 position=row.entry_position, won_session_id=row.entry_won_session_id,
                 won_rank=row.entry_won_rank, booking_id=row.entry_booking_id)


@dataclasses.dataclass(frozen=True, slots=True)
class EntryTarget:
    """What entering a round needs to know, read in one statement (``entry_target``)."""

    round_id: int
    department_id: int
    opens_at: dt.datetime
    closes_at: dt.datetime
    status: RoundStatus
    kind: RoundKind
    choices_in_round: int
    """How many of the choices asked for are sessions of this round."""
    first_starts_at: dt.datetime | None
    """When the first choice's session starts (None if there is no such session)."""
    existing: Entry | None
    """The patient's entry in this round, withdrawn or not."""
    id_number: str | None
    """The patient's identity number, when asked for (the shared list looks it up)."""

    def is_open_at(self, now: dt.datetime) -> bool:
        return self.status is RoundStatus.OPEN and self.opens_at <= now < self.closes_at


def _entry_target_statement(with_identity: bool) -> sa.Select[Any]:
    r, e, rs, s = t.release_rounds, t.entries, t.round_sessions, t.sessions
    in_round = (sa.select(sa.func.count()).select_from(rs)
                .where(rs.c.round_id == sa.bindparam("round_id"),
                       rs.c.session_id.in_([sa.bindparam(f"choice{n}")
                                            for n in range(MAX_CHOICES)]))
                .scalar_subquery())
    first_starts = (sa.select(s.c.starts_at).where(s.c.id == sa.bindparam("first"))
                    .scalar_subquery())
    joined = r.outerjoin(e, sa.and_(e.c.round_id == r.c.id,
                                    e.c.patient_id == sa.bindparam("patient_id")))
    columns: list[Any] = [r.c.id, r.c.department_id, r.c.opens_at, r.c.closes_at, r.c.status,
                          r.c.kind, in_round.label("choices_in_round"),
                          first_starts.label("first_starts_at"),
                          *(c.label(f"entry_{c.name}") for c in e.columns)]
    if with_identity:
        joined = joined.outerjoin(t.patients, t.patients.c.id == sa.bindparam("patient_id"))
        columns.append(t.patients.c.id_number)
    else:
        columns.append(sa.null().label("id_number"))
    # Locks only the round's row, against the draw (as ``get(for_share=True)``).
    return (sa.select(*columns).select_from(joined).where(r.c.id == sa.bindparam("round_id"))
            .with_for_update(read=True, key_share=True, of=r))


# Built once: executing a prepared statement object skips building and hashing it again.
_ENTRY_TARGET = {identity: _entry_target_statement(identity) for identity in (False, True)}
_INSERT_ENTRY = sa.insert(t.entries).returning(t.entries)
_ENTRY_COLUMNS = ("round_id", "ref", "patient_id", "account_id", "choices", "created_at",
                  "updated_at", "withdrawn", "idempotency_key")
_RECEIPT_COLUMNS = ("seq", "kind", "at", "body")


def _bound(table: sa.Table, prefix: str, columns: Sequence[str]) -> dict[str, Any]:
    return {c: sa.bindparam(prefix + c, type_=table.c[c].type) for c in columns}


def _new_entry_statement() -> sa.Select[Any]:
    """PostgreSQL: a new entry, its event and its receipt in one statement (data-modifying
    CTEs all run, referenced or not); the entry's row comes back."""
    entry = (sa.insert(t.entries).values(_bound(t.entries, "entry_", _ENTRY_COLUMNS))
             .returning(*t.entries.c).cte("new_entry"))
    event = (sa.insert(t.events).values(_bound(
        t.events, "event_", [c.name for c in t.events.columns if c.name != "id"]))
        .cte("new_event"))
    receipt_values = _bound(t.draw_receipts, "receipt_", _RECEIPT_COLUMNS)
    receipt = (sa.insert(t.draw_receipts).from_select(
        ["round_id", "entry_id", "ref", *_RECEIPT_COLUMNS],
        sa.select(entry.c.round_id, entry.c.id, entry.c.ref,
                  *(receipt_values[c] for c in _RECEIPT_COLUMNS)))
        .cte("new_receipt"))
    return sa.select(*entry.c).add_cte(event, receipt)


_NEW_ENTRY = _new_entry_statement()

# PostgreSQL's fast path (migration 0020's functions), sent through psycopg's client-side
# binding so that a message can carry several statements. Each parameter is cast to the
# function's type: the call resolves to the one function whatever a literal looks like.
_FAST_ENTRY_COLUMNS = (
    "managed", "r_id", "r_department_id", "r_opens_at", "r_closes_at", "r_status", "r_kind",
    "choices_in_round", "first_starts_at", *(f"entry_{c.name}" for c in t.entries.columns),
    "id_number")
_ENTRY_FIELDS = tuple(c.name for c in t.entries.columns)
_FAST_ENTRY_READ = (
    "SELECT " + ", ".join(_FAST_ENTRY_COLUMNS)
    + " FROM fairslot_entry_target(%s::bigint[], %s::integer, %s::integer, %s::integer,"
    " %s::integer, %s::integer, %s::integer, %s::boolean);"
    " SELECT kind, key, at FROM fairslot_quota_facts(%s::integer, %s::timestamptz,"
    " %s::timestamptz, %s::timestamptz, %s::integer, %s::integer, %s::varchar)")
_FAST_ADD_ENTRY = (
    "SELECT fairslot_add_entry(%s::integer, %s::varchar, %s::integer, %s::integer, %s::json,"
    " %s::timestamptz, %s::varchar, %s::integer, %s::varchar, %s::varchar, %s::json,"
    " %s::varchar, %s::timestamptz, %s::text)")
# The function takes exactly this many choices.
assert MAX_CHOICES == 3
_, _, _DECODE_ID_NUMBER = raw.decoders(t.patients, ("id_number",), "")[0]


def _utc(value: Any) -> Any:
    return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else value


def _padded(choices: Sequence[int]) -> list[int]:
    # Fewer choices than the most: the first again, which counts its session once.
    return [choices[n] if n < len(choices) else choices[0] for n in range(MAX_CHOICES)]


def taking_entries(now: dt.datetime | sa.BindParameter[dt.datetime]
                   ) -> sa.ColumnElement[bool]:
    """A round (``release_rounds``) taking entries ``now``: open, its window around now."""
    r = t.release_rounds
    return sa.and_(r.c.status == RoundStatus.OPEN.value, r.c.opens_at <= now,
                   r.c.closes_at > now)


class RoundRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def get(self, round_id: int, *, for_update: bool = False,
            for_share: bool = False) -> Round | None:
        """The round; ``for_update`` locks it against everything else (the draw, the
        beacon), ``for_share`` only against those (entries into one round do not wait for
        each other, and none commits once the draw holds the round)."""
        query = sa.select(t.release_rounds).where(t.release_rounds.c.id == round_id)
        if for_update:
            query = query.with_for_update()
        elif for_share:
            query = query.with_for_update(read=True, key_share=True)
        row = self.db.execute(query).first()
        return None if row is None else _round(row)

    def joinable(self, department_id: int, closes_at: dt.datetime,
                 kind: RoundKind = RoundKind.RELEASE) -> Round | None:
        """An open round of this department, kind and release time that nobody has entered
        yet: a session may still join it without changing a draw anyone is already in."""
        has_entries = sa.select(t.entries.c.id).where(
            t.entries.c.round_id == t.release_rounds.c.id).exists()
        row = self.db.execute(sa.select(t.release_rounds).where(
            t.release_rounds.c.department_id == department_id,
            t.release_rounds.c.closes_at == closes_at,
            t.release_rounds.c.kind == kind.value,
            t.release_rounds.c.status == RoundStatus.OPEN.value, ~has_entries)).first()
        return None if row is None else _round(row)

    def create(self, **values: Any) -> int:
        return int(self.db.execute(
            sa.insert(t.release_rounds).values(**values).returning(t.release_rounds.c.id)
        ).scalar_one())

    def update(self, round_id: int, **values: Any) -> None:
        self.db.execute(sa.update(t.release_rounds)
                        .where(t.release_rounds.c.id == round_id).values(**values))

    def add_session(self, round_id: int, session_id: int, capacity: int) -> None:
        self.db.execute(sa.insert(t.round_sessions).values(
            round_id=round_id, session_id=session_id, capacity=capacity))

    def sessions(self, round_id: int) -> list[int]:
        return list(self.capacities(round_id))

    def capacities(self, round_id: int) -> dict[int, int]:
        """Each session of the round and the slots it gives out, as published at open."""
        return {int(sid): int(cap) for sid, cap in self.db.execute(
            sa.select(t.round_sessions.c.session_id, t.round_sessions.c.capacity)
            .where(t.round_sessions.c.round_id == round_id)
            .order_by(t.round_sessions.c.session_id)).all()}

    def round_of_session(self, session_id: int) -> int | None:
        """The session's first round (its release round, for a draw session)."""
        found = self.rounds_of_session(session_id)
        return found[0] if found else None

    def rounds_of_session(self, session_id: int) -> list[int]:
        """Every round the session is in, oldest first: its release round, then the short
        rounds of slots that freed up later."""
        return [int(r) for r in self.db.scalars(
            sa.select(t.round_sessions.c.round_id)
            .where(t.round_sessions.c.session_id == session_id)
            .order_by(t.round_sessions.c.round_id)).all()]

    def unrounded_hot_fcfs_sessions(self, opening_before: dt.datetime, now: dt.datetime
                                    ) -> list[tuple[int, dt.datetime, int]]:
        """(session, release time, department) of a hot doctor's fcfs sessions, released
        before ``opening_before``, not started, and in no round yet (a session scheduled
        after its release time included)."""
        s, d = t.sessions, t.doctors
        return [(int(sid), at, int(dep)) for sid, at, dep in self.db.execute(
            sa.select(s.c.id, s.c.release_at, d.c.department_id)
            .join(d, d.c.id == s.c.doctor_id)
            .outerjoin(t.round_sessions, t.round_sessions.c.session_id == s.c.id)
            .where(s.c.release_policy == "fcfs", d.c.hot.is_(True), s.c.status == "scheduled",
                   t.round_sessions.c.round_id.is_(None),
                   s.c.release_at <= opening_before, s.c.starts_at > now)
            .order_by(s.c.release_at, s.c.id)
        ).all()]

    def open_rounds_of_sessions(self, session_ids: Sequence[int],
                                now: dt.datetime) -> dict[int, int]:
        """Session id -> the round taking entries for it now."""
        if not session_ids:
            return {}
        rs, r = t.round_sessions, t.release_rounds
        rows = self.db.execute(
            sa.select(rs.c.session_id, r.c.id).join(r, r.c.id == rs.c.round_id)
            .where(rs.c.session_id.in_(set(session_ids)), taking_entries(now))
            .order_by(r.c.id.desc())).all()
        # Should a session be in two open rounds, the lowest round id, as
        # ``ScheduleRepository.session_at_a_glance`` answers.
        return {int(sid): int(rid) for sid, rid in rows}

    def unrounded_draw_sessions(self, opening_before: dt.datetime, now: dt.datetime
                                ) -> list[tuple[int, dt.datetime, int]]:
        """(session, release time, department) of draw sessions whose window has opened and
        that are in no round yet."""
        s, d = t.sessions, t.doctors
        return [(int(sid), at, int(dep)) for sid, at, dep in self.db.execute(
            sa.select(s.c.id, s.c.release_at, d.c.department_id)
            .join(d, d.c.id == s.c.doctor_id)
            .outerjoin(t.round_sessions, t.round_sessions.c.session_id == s.c.id)
            .where(s.c.release_policy == "draw", s.c.status == "scheduled",
                   t.round_sessions.c.round_id.is_(None),
                   s.c.release_at <= opening_before, s.c.starts_at > now)
            .order_by(s.c.release_at, s.c.id)
        ).all()]

    def due(self, now: dt.datetime) -> list[int]:
        return [int(x) for x in self.db.scalars(
            sa.select(t.release_rounds.c.id).where(
                t.release_rounds.c.status == RoundStatus.OPEN.value,
                t.release_rounds.c.closes_at <= now)
            .order_by(t.release_rounds.c.closes_at)).all()]

    def drawn_at(self, when: dt.datetime) -> list[int]:
        return [int(x) for x in self.db.scalars(
            sa.select(t.release_rounds.c.id).where(t.release_rounds.c.drawn_at == when)).all()]

    def open_rounds(self, now: dt.datetime) -> list[Round]:
        return [_round(r) for r in self.db.execute(
            sa.select(t.release_rounds).where(
                t.release_rounds.c.status == RoundStatus.OPEN.value,
                t.release_rounds.c.opens_at <= now)
            .order_by(t.release_rounds.c.closes_at)).all()]

    def by_ids(self, round_ids: Sequence[int]) -> dict[int, Round]:
        if not round_ids:
            return {}
        return {int(r.id): _round(r) for r in self.db.execute(
            sa.select(t.release_rounds).where(t.release_rounds.c.id.in_(set(round_ids))))}

    # --- entries

    def entry_target(self, round_id: int, patient_id: int, choices: Sequence[int], *,
                     identity: bool = False) -> EntryTarget | None:
        """In one statement, the round (locked as ``get(for_share=True)`` does), how many of
        ``choices`` are its sessions, when the first choice starts, the patient's entry in
        it and, with ``identity``, the patient's identity number; None if there is no such
        round. ``choices`` are distinct, at most ``MAX_CHOICES``. The caller has taken the
        patient's lock first, so the entry read is current."""
        row = self.db.execute(_ENTRY_TARGET[identity], {
            "round_id": round_id, "patient_id": patient_id, "first": choices[0],
            **{f"choice{n}": c for n, c in enumerate(_padded(choices))}}).first()
        if row is None:
            return None
        return EntryTarget(round_id=row.id, department_id=row.department_id,
                           opens_at=row.opens_at, closes_at=row.closes_at,
                           status=RoundStatus(row.status), kind=RoundKind(row.kind),
                           choices_in_round=int(row.choices_in_round),
                           first_starts_at=row.first_starts_at, existing=_entry_of_row(row),
                           id_number=row.id_number)

    # --- PostgreSQL's fast path: two messages per new entry (migration 0020's functions)

    def read_for_entry(self, lock_keys: list[int], account_id: int, patient_id: int,
                       round_id: int, choices: Sequence[int], *, identity: bool,
                       facts: dict[str, Any]
                       ) -> tuple[bool, EntryTarget | None,
                                  list[tuple[str, str | None, dt.datetime | None]]]:
        """PostgreSQL only: what ``PatientRepository.is_managed_by`` (taking ``lock_keys``),
        then ``entry_target`` and then ``QuotaRepository.facts`` (with ``facts`` as that
        method's keywords) read, in one message to the server. Opens the transaction first
        when the connection is in autocommit (``UnitOfWork.autocommit``): the locks are held
        until ``add_entry_and_commit`` or the unit of work ends it. Returns whether the
        account manages the patient, the target (None: no such round, or not managed) and
        the fact rows."""
        params = (lock_keys, account_id, patient_id, round_id, *_padded(choices), identity,
                  patient_id, facts["now"], facts["served_since"], facts["offences_since"],
                  facts.get("session_id"), facts.get("account_id"), facts.get("phone_index"))
        row, facts_rows = raw.read_with_facts(self.db, _FAST_ENTRY_READ, params)
        if row is None:
            return True, None, facts_rows
        if not row[0]:
            return False, None, facts_rows
        v = dict(zip(_FAST_ENTRY_COLUMNS, map(_utc, row), strict=True))
        existing = None
        if v["entry_id"] is not None:
            existing = _entry(types.SimpleNamespace(**{
                c: v[f"entry_{c}"] for c in _ENTRY_FIELDS}))
        id_number = v["id_number"]
        return True, EntryTarget(
            round_id=v["r_id"], department_id=v["r_department_id"], opens_at=v["r_opens_at"],
            closes_at=v["r_closes_at"], status=RoundStatus(v["r_status"]),
            kind=RoundKind(v["r_kind"]), choices_in_round=int(v["choices_in_round"]),
            first_starts_at=v["first_starts_at"], existing=existing,
            id_number=id_number if id_number is None or _DECODE_ID_NUMBER is None
            else _DECODE_ID_NUMBER(id_number, self.db.get_bind().dialect)), facts_rows

    def add_entry_and_commit(self, entry: dict[str, Any], event: dict[str, Any],
                             receipt: dict[str, Any], *, commit: bool) -> Entry:
        """PostgreSQL only: what ``add_new_entry`` writes, as one function call, and with
        ``commit`` the transaction's ``COMMIT`` in the same message (only for a transaction
        that wrote nothing else). ``entry`` as the entry's columns (new: not withdrawn,
        updated when created), ``event`` as ``EventRepository.along`` gives it (its kind
        entry.created), ``receipt`` as ``receipt_values`` (the entry's first); the entry as
        written."""
        assert entry["withdrawn"] is False and entry["updated_at"] == entry["created_at"]
        assert receipt["seq"] == 1 and receipt["ref"] == entry["ref"]
        assert event["kind"] == "entry.created" and event["at"] == entry["created_at"]
        conn = raw.connection(self.db)
        params = (entry["round_id"], entry["ref"], entry["patient_id"], entry["account_id"],
                  psycopg.types.json.Json(list(entry["choices"])), entry["created_at"],
                  entry["idempotency_key"], event["session_id"], event["ip"],
                  event["device_id"], psycopg.types.json.Json(event["detail"]),
                  receipt["kind"], receipt["at"], receipt["body"])
        with raw.errors(), psycopg.ClientCursor(conn) as cur:
            cur.execute(_FAST_ADD_ENTRY + ("; COMMIT" if commit else ""), params)
            found = cur.fetchone()
        assert found is not None
        return Entry(id=int(found[0]), round_id=entry["round_id"], ref=entry["ref"],
                     patient_id=entry["patient_id"], account_id=entry["account_id"],
                     choices=tuple(int(c) for c in entry["choices"]),
                     created_at=entry["created_at"], updated_at=entry["updated_at"],
                     withdrawn=False, idempotency_key=entry["idempotency_key"], outcome=None,
                     position=None, won_session_id=None, won_rank=None, booking_id=None)

    def entry_of(self, round_id: int, patient_id: int) -> Entry | None:
        row = self.db.execute(sa.select(t.entries).where(
            t.entries.c.round_id == round_id, t.entries.c.patient_id == patient_id)).first()
        return None if row is None else _entry(row)

    def entry_by_key(self, account_id: int, key: str) -> Entry | None:
        row = self.db.execute(sa.select(t.entries).where(
            t.entries.c.account_id == account_id, t.entries.c.idempotency_key == key)).first()
        return None if row is None else _entry(row)

    def entry(self, entry_id: int) -> Entry | None:
        row = self.db.execute(sa.select(t.entries).where(t.entries.c.id == entry_id)).first()
        return None if row is None else _entry(row)

    def add_entry(self, **values: Any) -> Entry:
        """Insert an entry; the row as written (no second read)."""
        return _entry(self.db.execute(_INSERT_ENTRY, values).one())

    def add_new_entry(self, entry: dict[str, Any], event: dict[str, Any],
                      receipt: dict[str, Any]) -> Entry:
        """PostgreSQL: insert an entry, its event (``EventRepository.along``) and its first
        receipt (``receipt_values``, the ref the entry's) in one round trip; the row as
        written."""
        params = {f"entry_{c}": entry[c] for c in _ENTRY_COLUMNS}
        params.update((f"event_{c}", v) for c, v in event.items())
        params.update((f"receipt_{c}", receipt[c]) for c in _RECEIPT_COLUMNS)
        return _entry(self.db.execute(_NEW_ENTRY, params).one())

    def update_entry(self, entry_id: int, **values: Any) -> None:
        self.db.execute(sa.update(t.entries).where(t.entries.c.id == entry_id).values(**values))

    def change_entry(self, entry_id: int, **values: Any) -> Entry:
        """Update an entry; the row as written (no second read)."""
        return _entry(self.db.execute(
            sa.update(t.entries).where(t.entries.c.id == entry_id).values(**values)
            .returning(t.entries)).one())

    def waitlist_ahead(self, round_id: int, position: int) -> int:
        return int(self.db.scalar(sa.select(sa.func.count()).where(
            t.entries.c.round_id == round_id,
            t.entries.c.outcome == EntryOutcome.WAITLIST.value,
            t.entries.c.position < position)) or 0)

    def live_entry_counts(self, round_ids: Sequence[int]) -> dict[int, int]:
        """Entries not withdrawn, per round (the operator's console)."""
        if not round_ids:
            return {}
        return {int(r): int(n) for r, n in self.db.execute(
            sa.select(t.entries.c.round_id, sa.func.count()).where(
                t.entries.c.round_id.in_(list(round_ids)), t.entries.c.withdrawn.is_(False))
            .group_by(t.entries.c.round_id)).all()}

    def live_entries(self, round_id: int) -> list[Entry]:
        return [_entry(r) for r in self.db.execute(
            sa.select(t.entries).where(t.entries.c.round_id == round_id,
                                       t.entries.c.withdrawn.is_(False))
            .order_by(t.entries.c.ref)).all()]

    def entries_of_account(self, account_id: int, limit: int = 200) -> list[Entry]:
        return [_entry(r) for r in self.db.execute(
            sa.select(t.entries).where(t.entries.c.account_id == account_id)
            .order_by(t.entries.c.created_at.desc()).limit(limit)).all()]

    def entries_of_patient(self, patient_id: int, limit: int = 200) -> list[Entry]:
        """Every entry made for the patient, by any account (the identity's holder sees them)."""
        return [_entry(r) for r in self.db.execute(
            sa.select(t.entries).where(t.entries.c.patient_id == patient_id)
            .order_by(t.entries.c.created_at.desc()).limit(limit)).all()]

    def choice_counts(self, round_id: int) -> dict[int, int]:
        """First-choice counts per session, for the patient's odds while the window is open."""
        counts: dict[int, int] = {}
        for (choices,) in self.db.execute(
                sa.select(t.entries.c.choices).where(t.entries.c.round_id == round_id,
                                                     t.entries.c.withdrawn.is_(False))):
            if choices:
                counts[int(choices[0])] = counts.get(int(choices[0]), 0) + 1
        return counts

    def next_waiting(self, round_id: int, session_id: int) -> Entry | None:
        """The first waitlisted entry, in draw order, that chose ``session_id``."""
        for row in self.db.execute(
                sa.select(t.entries).where(t.entries.c.round_id == round_id,
                                           t.entries.c.outcome == EntryOutcome.WAITLIST.value)
                .order_by(t.entries.c.position)):
            if session_id in [int(c) for c in row.choices]:
                return _entry(row)
        return None

    def entry_for_booking(self, booking_id: int) -> Entry | None:
        row = self.db.execute(sa.select(t.entries)
                              .where(t.entries.c.booking_id == booking_id)).first()
        return None if row is None else _entry(row)

    def all_entries(self, round_id: int) -> list[Entry]:
        return [_entry(r) for r in self.db.execute(
            sa.select(t.entries).where(t.entries.c.round_id == round_id)
            .order_by(t.entries.c.ref)).all()]

    def cancellation_counts(self, doctor_id: int) -> dict[str, int]:
        """This doctor's bookings by status (how often a slot frees up)."""
        return {str(getattr(status, "value", status)): int(n) for status, n in self.db.execute(
            sa.select(t.bookings.c.status, sa.func.count()).join(
                t.sessions, t.sessions.c.id == t.bookings.c.session_id)
            .where(t.sessions.c.doctor_id == doctor_id).group_by(t.bookings.c.status)).all()}

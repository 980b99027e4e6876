"""What the quota and credit rules need to know about a patient, an account and a phone,
read in one statement (a UNION ALL of small selects) so that a booking pays one round trip
for all of them. The rules themselves are pure (``fairslot.domain.quotas`` and
``fairslot.domain.credit``); the caller takes the quota locks first (``UnitOfWork.lock``),
so what this reads cannot change under it before it writes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.domain.booking import ACTIVE_STATUSES, SLOT_TAKEN_STATUSES, VISIT_STATUSES
from fairslot.domain.rounds import RoundStatus
from fairslot.storage.types import UTCDateTime

__all__ = ["QuotaFacts", "QuotaRepository", "facts_of"]


@dataclasses.dataclass
class QuotaFacts:
    in_session: bool = False
    """The patient already has a booking that holds a slot in the session asked for."""
    active: int = 0
    """Active bookings (visit not over yet) plus entries in rounds not drawn yet."""
    visits: list[tuple[str, dt.datetime]] = dataclasses.field(default_factory=list)
    """(department, visit time) of the patient's visits and of their undrawn entries."""
    served_by_account: list[tuple[str, dt.datetime]] = dataclasses.field(default_factory=list)
    phones: list[str] = dataclasses.field(default_factory=list)
    """The phones (blind indexes) whose quotas the account's bookings count toward: the
    one it is on now and those it verified within the window."""
    served_by_phone: list[tuple[str, str, dt.datetime]] = dataclasses.field(
        default_factory=list)
    """(phone, patient, time): the patients served by each of ``phones``' accounts."""
    no_shows: list[dt.datetime] = dataclasses.field(default_factory=list)
    late_cancellations: list[dt.datetime] = dataclasses.field(default_factory=list)
    lapsed_holds: list[dt.datetime] = dataclasses.field(default_factory=list)
    account_lapsed_holds: list[dt.datetime] = dataclasses.field(default_factory=list)
    """When the account's holds (for any of its patients) expired unpaid."""


def _in(statuses: frozenset[object]) -> str:
    values = sorted(str(getattr(s, "value", s)) for s in statuses)
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# Written as SQL text, not built with the expression language: the booking path runs it on
# every booking, and composing and caching nine selects cost several times the query itself.
# Each part is (kind, key, time); the same text runs on SQLite and PostgreSQL.
_ALWAYS = f"""
SELECT 'active' AS kind, NULL AS key, s.ends_at AS at
  FROM bookings b JOIN sessions s ON s.id = b.session_id
 WHERE b.patient_id = :patient AND b.status IN {_in(ACTIVE_STATUSES)} AND s.ends_at > :now
UNION ALL
SELECT 'visit', CAST(d.department_id AS VARCHAR), s.starts_at
  FROM bookings b JOIN sessions s ON s.id = b.session_id JOIN doctors d ON d.id = s.doctor_id
 WHERE b.patient_id = :patient AND b.status IN {_in(VISIT_STATUSES)}
UNION ALL
SELECT 'entry', CAST(r.department_id AS VARCHAR),
       (SELECT min(s.starts_at) FROM sessions s
          JOIN round_sessions rs ON rs.session_id = s.id WHERE rs.round_id = e.round_id)
  FROM entries e JOIN release_rounds r ON r.id = e.round_id
 WHERE e.patient_id = :patient AND e.withdrawn = false AND r.status = '{RoundStatus.OPEN.value}'
UNION ALL
SELECT 'no_show', NULL, b.closed_at FROM bookings b
 WHERE b.patient_id = :patient AND b.status = 'no_show' AND b.closed_at >= :offences_since
UNION ALL
SELECT 'late', NULL, b.cancelled_at FROM bookings b
 WHERE b.patient_id = :patient AND b.late_cancel = true AND b.cancelled_at >= :offences_since
UNION ALL
SELECT 'lapsed', NULL, b.closed_at FROM bookings b
 WHERE b.patient_id = :patient AND b.status = 'expired' AND b.closed_at >= :offences_since"""
_IN_SESSION = f"""
UNION ALL
SELECT 'in_session', NULL, NULL FROM bookings b
 WHERE b.patient_id = :patient AND b.session_id = :session
   AND b.status IN {_in(SLOT_TAKEN_STATUSES)}"""
_ACCOUNT = """
UNION ALL
SELECT 'account', CAST(b.patient_id AS VARCHAR), b.created_at FROM bookings b
 WHERE b.account_id = :account AND b.created_at >= :served_since
UNION ALL
SELECT 'account', CAST(e.patient_id AS VARCHAR), e.created_at FROM entries e
 WHERE e.account_id = :account AND e.created_at >= :served_since
UNION ALL
SELECT 'account_lapsed', NULL, b.closed_at FROM bookings b
 WHERE b.account_id = :account AND b.status = 'expired' AND b.closed_at >= :offences_since"""
# The phones whose quotas the account's bookings and entries count toward: the one it is on
# now, and those it verified within the window and moved off (moving to another number does
# not take its history off the old one); and each phone's accounts, by the same rule (those
# on it now, and those that verified it within the window). A phone's served patients come
# keyed "<phone index>/<patient>".
_PHONES = """WITH phones (idx) AS (
    SELECT CAST(:phone AS VARCHAR)
    UNION SELECT phone_index FROM verification_codes
           WHERE account_id = :account AND purpose = 'phone' AND used_at >= :served_since),
phone_accounts (idx, account_id) AS (
    SELECT p.idx, a.id FROM phones p JOIN accounts a ON a.phone_index = p.idx
    UNION SELECT p.idx, v.account_id FROM phones p
            JOIN verification_codes v ON v.phone_index = p.idx
           WHERE v.purpose = 'phone' AND v.used_at >= :served_since)
"""
_PHONE = """
UNION ALL
SELECT 'phone_of_account', idx, NULL FROM phones
UNION ALL
SELECT 'phone', pa.idx || '/' || CAST(b.patient_id AS VARCHAR), b.created_at
  FROM phone_accounts pa JOIN bookings b ON b.account_id = pa.account_id
 WHERE b.created_at >= :served_since
UNION ALL
SELECT 'phone', pa.idx || '/' || CAST(e.patient_id AS VARCHAR), e.created_at
  FROM phone_accounts pa JOIN entries e ON e.account_id = pa.account_id
 WHERE e.created_at >= :served_since"""
_TIMES = ("now", "served_since", "offences_since")


@functools.cache
def _statement(session: bool, account: bool, phone: bool) -> sa.TextualSelect:
    text = (_PHONES if phone else "") + _ALWAYS + (_IN_SESSION if session else "") \
        + (_ACCOUNT if account else "") + (_PHONE if phone else "")
    used = [name for name in _TIMES if f":{name}" in text]
    return sa.text(text).bindparams(*(sa.bindparam(n, type_=UTCDateTime) for n in used)) \
        .columns(kind=sa.String, key=sa.String, at=UTCDateTime)


class QuotaRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def facts(self, patient_id: int, *, now: dt.datetime, served_since: dt.datetime,
              offences_since: dt.datetime, session_id: int | None = None,
              account_id: int | None = None, phone_index: str | None = None) -> QuotaFacts:
        statement = _statement(session_id is not None, account_id is not None,
                               phone_index is not None)
        params: dict[str, Any] = {"patient": patient_id, "now": now,
                                  "offences_since": offences_since}
        if session_id is not None:
            params["session"] = session_id
        if account_id is not None or phone_index is not None:
            params["served_since"] = served_since
        if account_id is not None or phone_index is not None:
            # A phone's facts need the account: the phones it verified count too.
            params["account"] = account_id
        if phone_index is not None:
            params["phone"] = phone_index
        return facts_of(self.db.execute(statement, params).all())


def facts_of(rows: Iterable[Any]) -> QuotaFacts:
    """The facts from the rows (kind, key, time) of ``QuotaRepository.facts``'s statement,
    or of PostgreSQL's ``fairslot_quota_facts``, which answers the same rows."""
    facts = QuotaFacts()
    for kind, key, when in rows:
        if kind == "active":
            facts.active += 1
        elif kind == "visit":
            facts.visits.append((str(key), when))
        elif kind == "entry":
            facts.active += 1
            if when is not None:
                facts.visits.append((str(key), when))
        elif kind == "in_session":
            facts.in_session = True
        elif kind == "account":
            facts.served_by_account.append((str(key), when))
        elif kind == "phone":
            phone, _, patient = str(key).rpartition("/")
            facts.served_by_phone.append((phone, patient, when))
        elif kind == "phone_of_account":
            facts.phones.append(str(key))
        elif kind == "no_show":
            facts.no_shows.append(when)
        elif kind == "late":
            facts.late_cancellations.append(when)
        elif kind == "lapsed":
            facts.lapsed_holds.append(when)
        elif kind == "account_lapsed":
            facts.account_lapsed_holds.append(when)
    return facts

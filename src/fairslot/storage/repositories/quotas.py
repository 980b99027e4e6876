"""What the quota and credit rules need to know about a patient, an account and a phone,
read in one statement (a UNION ALL of small selects) so that a booking pays one round trip
for all of them. The rules themselves are pure (``fairslot.domain.quotas`` and
``fairslot.domain.credit``); the caller takes the quota locks first (``UnitOfWork.lock``),
so what this reads cannot change under it before it writes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from fairslot.domain.booking import ACTIVE_STATUSES, SLOT_TAKEN_STATUSES, VISIT_STATUSES
from fairslot.domain.rounds import RoundStatus
from fairslot.storage import tables as t
from fairslot.storage.types import UTCDateTime

__all__ = ["QuotaFacts", "QuotaRepository"]


@dataclasses.dataclass
class QuotaFacts:
    in_session: bool = False
    """The patient already has a booking that holds a slot in the session asked for."""
    active: int = 0
    """Active bookings (visit not over yet) plus entries in rounds not drawn yet."""
    visits: list[tuple[str, dt.datetime]] = dataclasses.field(default_factory=list)
    """(department, visit time) of the patient's visits and of their undrawn entries."""
    served_by_account: list[tuple[str, dt.datetime]] = dataclasses.field(default_factory=list)
    served_by_phone: list[tuple[str, dt.datetime]] = dataclasses.field(default_factory=list)
    no_shows: list[dt.datetime] = dataclasses.field(default_factory=list)
    late_cancellations: list[dt.datetime] = dataclasses.field(default_factory=list)
    lapsed_holds: list[dt.datetime] = dataclasses.field(default_factory=list)


def _values(statuses: frozenset[object]) -> list[str]:
    return sorted(str(getattr(s, "value", s)) for s in statuses)


class QuotaRepository:
    def __init__(self, db: DbSession) -> None:
        self.db = db

    def facts(self, patient_id: int, *, now: dt.datetime, served_since: dt.datetime,
              offences_since: dt.datetime, session_id: int | None = None,
              account_id: int | None = None, phone_index: str | None = None) -> QuotaFacts:
        b, s, d, e, r = t.bookings, t.sessions, t.doctors, t.entries, t.release_rounds
        at = sa.type_coerce  # keep each column's type through the UNION

        def row(kind: str, key: sa.ColumnElement[Any] | None,
                when: sa.ColumnElement[Any] | None) -> list[sa.ColumnElement[Any]]:
            return [sa.literal(kind).label("kind"),
                    sa.cast(key, sa.String).label("key") if key is not None
                    else sa.cast(sa.null(), sa.String).label("key"),
                    at(when, UTCDateTime).label("at") if when is not None
                    else at(sa.null(), UTCDateTime).label("at")]

        undrawn = sa.and_(e.c.patient_id == patient_id, e.c.withdrawn.is_(False),
                          r.c.status == RoundStatus.OPEN.value)
        first_visit = (sa.select(sa.func.min(s.c.starts_at))
                       .join(t.round_sessions, t.round_sessions.c.session_id == s.c.id)
                       .where(t.round_sessions.c.round_id == e.c.round_id)
                       .scalar_subquery())
        parts = [
            sa.select(*row("active", None, s.c.ends_at)).select_from(b)
            .join(s, s.c.id == b.c.session_id)
            .where(b.c.patient_id == patient_id, b.c.status.in_(_values(ACTIVE_STATUSES)),
                   s.c.ends_at > now),
            sa.select(*row("visit", d.c.department_id, s.c.starts_at)).select_from(b)
            .join(s, s.c.id == b.c.session_id).join(d, d.c.id == s.c.doctor_id)
            .where(b.c.patient_id == patient_id, b.c.status.in_(_values(VISIT_STATUSES))),
            sa.select(*row("entry", r.c.department_id, first_visit)).select_from(e)
            .join(r, r.c.id == e.c.round_id).where(undrawn),
            sa.select(*row("no_show", None, b.c.closed_at)).where(
                b.c.patient_id == patient_id, b.c.status == "no_show",
                b.c.closed_at >= offences_since),
            sa.select(*row("late", None, b.c.cancelled_at)).where(
                b.c.patient_id == patient_id, b.c.late_cancel.is_(True),
                b.c.cancelled_at >= offences_since),
            sa.select(*row("lapsed", None, b.c.closed_at)).where(
                b.c.patient_id == patient_id, b.c.status == "expired",
                b.c.closed_at >= offences_since),
        ]
        if session_id is not None:
            parts.append(sa.select(*row("in_session", None, None)).where(
                b.c.patient_id == patient_id, b.c.session_id == session_id,
                b.c.status.in_(_values(SLOT_TAKEN_STATUSES))))
        if account_id is not None:
            parts += [
                sa.select(*row("account", b.c.patient_id, b.c.created_at)).where(
                    b.c.account_id == account_id, b.c.created_at >= served_since),
                sa.select(*row("account", e.c.patient_id, e.c.created_at)).where(
                    e.c.account_id == account_id, e.c.created_at >= served_since),
            ]
        if phone_index is not None:
            same_phone = sa.select(t.accounts.c.id).where(t.accounts.c.phone_index == phone_index)
            parts += [
                sa.select(*row("phone", b.c.patient_id, b.c.created_at)).where(
                    b.c.account_id.in_(same_phone), b.c.created_at >= served_since),
                sa.select(*row("phone", e.c.patient_id, e.c.created_at)).where(
                    e.c.account_id.in_(same_phone), e.c.created_at >= served_since),
            ]
        facts = QuotaFacts()
        for kind, key, when in self.db.execute(sa.union_all(*parts)).all():
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
                facts.served_by_phone.append((str(key), when))
            elif kind == "no_show":
                facts.no_shows.append(when)
            elif kind == "late":
                facts.late_cancellations.append(when)
            elif kind == "lapsed":
                facts.lapsed_holds.append(when)
        return facts

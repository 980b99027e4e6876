"""Less index upkeep per booking and per entry, with the same rules and the same rows kept:

- ``ix_bookings_review`` holds only the bookings a review concerns (``review`` set): the
  review queue (``review = 'pending'``) is its only reader, and the other bookings, nearly
  all of them, no longer add an entry to it.
- ``ix_entries_round_outcome_position`` holds only the drawn entries (``outcome`` set): its
  readers (the waitlist's order) ask for an outcome, and an entry made while the window is
  open, which has none, no longer adds an entry to it.

Not done, on purpose: a partial index of each session's free slots (``taken = false``)
would spare the hold its walk past the taken slots, but it puts ``taken`` among the
indexed columns, so the hold's ``UPDATE slots SET taken = true`` is no longer a HOT update
and writes an entry into both of the slot's other indexes instead: more buffers per hold,
not fewer (measured; see docs/performance.md).

Revision ID: 0021_dbcost_partial_indexes
Revises: 0020_perfentry_entry_functions
Create Date: 2026-11-28 17:30:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0021_dbcost_partial_indexes"
down_revision = "0020_perfentry_entry_functions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _review_index("review IS NOT NULL")
    _outcome_index("outcome IS NOT NULL")


def downgrade() -> None:
    _outcome_index(None)
    _review_index(None)


def _review_index(where: str | None) -> None:
    """``ix_bookings_review`` again, over the bookings ``where`` says (all when None)."""
    op.drop_index("ix_bookings_review", table_name="bookings")
    op.create_index("ix_bookings_review", "bookings", ["review"], **_where(where))


def _outcome_index(where: str | None) -> None:
    """``ix_entries_round_outcome_position`` again, over the entries ``where`` says (all of
    them when None)."""
    op.drop_index("ix_entries_round_outcome_position", table_name="entries")
    op.create_index("ix_entries_round_outcome_position", "entries",
                    ["round_id", "outcome", "position"], **_where(where))


def _where(where: str | None) -> dict[str, Any]:
    """The partial index's condition for both dialects, or none."""
    if where is None:
        return {}
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}

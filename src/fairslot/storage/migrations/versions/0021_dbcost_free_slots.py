"""Less database work per booking, with the same rules and the same rows kept:

- ``ix_slots_free``: the session's free slots by number, a partial index. A booking's hold
  takes the session's lowest-numbered free slot (``fairslot_hold_booking``, and
  ``ScheduleRepository``'s claim); through the unique (session, number) index it walked
  past every taken slot before that one, reading each one's row: on average half the
  session's bookings so far, on every booking. The unique index stays (the constraint).
- ``ix_bookings_review`` holds only the bookings a review concerns (``review`` set): the
  review queue (``review = 'pending'``) is its only reader, and the other bookings, nearly
  all of them, no longer add an entry to it.
- ``ix_entries_round_outcome_position`` holds only the drawn entries (``outcome`` set): its
  readers (the waitlist's order) ask for an outcome, and an entry made while the window is
  open, which has none, no longer adds an entry to it.

Revision ID: 0021_dbcost_free_slots
Revises: 0020_perfentry_entry_functions
Create Date: 2026-11-28 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_dbcost_free_slots"
down_revision = "0020_perfentry_entry_functions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_slots_free", "slots", ["session_id", "number"],
                    postgresql_where=sa.text("taken = false"),
                    sqlite_where=sa.text("taken = 0"))
    op.drop_index("ix_bookings_review", table_name="bookings")
    op.create_index("ix_bookings_review", "bookings", ["review"],
                    postgresql_where=sa.text("review IS NOT NULL"),
                    sqlite_where=sa.text("review IS NOT NULL"))
    _partial_outcome_index("outcome IS NOT NULL")


def _partial_outcome_index(where: str | None) -> None:
    """``ix_entries_round_outcome_position`` again, over the entries ``where`` says (all of
    them when None)."""
    op.drop_index("ix_entries_round_outcome_position", table_name="entries")
    options = {} if where is None else {"postgresql_where": sa.text(where),
                                        "sqlite_where": sa.text(where)}
    op.create_index("ix_entries_round_outcome_position", "entries",
                    ["round_id", "outcome", "position"], **options)


def downgrade() -> None:
    _partial_outcome_index(None)
    op.drop_index("ix_bookings_review", table_name="bookings")
    op.create_index("ix_bookings_review", "bookings", ["review"])
    op.drop_index("ix_slots_free", table_name="slots")

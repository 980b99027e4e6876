"""bookings held for review by a monitoring decision: bookings.review (pending, approved,
rejected, lapsed; NULL otherwise)

Revision ID: 0012
Revises: 0007
Create Date: 2026-11-27 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (no batch copy on SQLite, which would drop the
# bookings table's triggers).
def upgrade() -> None:
    op.add_column("bookings", sa.Column("review", sa.String(length=16), nullable=True))
    op.create_index(op.f("ix_bookings_review"), "bookings", ["review"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_bookings_review"), table_name="bookings")
    op.drop_column("bookings", "review")

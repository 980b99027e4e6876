"""a slot remembers when it last returned to the public pool (a cancellation, a lapsed hold
or offer), so a booking's event can say how soon after that re-opening the slot was taken
(docs/monitoring.md, ``release_snipe``)

Revision ID: 0017_t1freed_slot_freed_at
Revises: 0016_small_draw_key
Create Date: 2026-11-28 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_t1freed_slot_freed_at"
down_revision = "0016_small_draw_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("freed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slots", schema=None) as batch_op:
        batch_op.drop_column("freed_at")

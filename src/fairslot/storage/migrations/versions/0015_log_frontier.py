"""the log of rounds keeps, beside each checkpoint, the roots of the perfect subtrees of its
tree (its frontier), so that appending a record and signing the next checkpoint no longer
reads and hashes the whole log (docs/draw.md, "The log of rounds")

Revision ID: 0015
Revises: 0013
Create Date: 2026-11-28 00:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "draw_log_frontiers",
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("frontier", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )


def downgrade() -> None:
    op.drop_table("draw_log_frontiers")

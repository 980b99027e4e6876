"""each signed statement of a round keeps the public half of the draw key that signed it, so
a round's document names its own key even after the hospital rotates its draw key
(docs/draw.md, "Keys")

Revision ID: 0016_small_draw_key
Revises: 0016_small_claims
Create Date: 2026-11-28 03:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_small_draw_key"
down_revision = "0016_small_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("draw_statements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signing_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("draw_statements", schema=None) as batch_op:
        batch_op.drop_column("signing_key")

"""short request windows: a round has a kind (release, late, leftover, opening) and a
session may be in several rounds (its release round, then a short window for each slot
that frees up with nobody waiting)

Revision ID: 0009
Revises: 0013
Create Date: 2026-11-27 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("release_rounds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False,
                                      server_default="release"))
    with op.batch_alter_table("round_sessions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_round_sessions_session_id", type_="unique")
        batch_op.create_index("ix_round_sessions_session_id", ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("round_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_round_sessions_session_id")
        batch_op.create_unique_constraint("uq_round_sessions_session_id", ["session_id"])
    with op.batch_alter_table("release_rounds", schema=None) as batch_op:
        batch_op.drop_column("kind")

"""rounds freeze each session's capacity at open, name their beacon source, and a session
scheduled after a round has entries gets a round of its own

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("round_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("capacity", sa.Integer(), nullable=False,
                                      server_default="0"))
    with op.batch_alter_table("release_rounds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("beacon_source", sa.String(length=200), nullable=False,
                                      server_default=""))
        batch_op.drop_constraint("uq_release_rounds_department_id_closes_at", type_="unique")
        batch_op.create_index("ix_release_rounds_department_id_closes_at",
                              ["department_id", "closes_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("release_rounds", schema=None) as batch_op:
        batch_op.drop_index("ix_release_rounds_department_id_closes_at")
        batch_op.create_unique_constraint("uq_release_rounds_department_id_closes_at",
                                          ["department_id", "closes_at"])
        batch_op.drop_column("beacon_source")
    with op.batch_alter_table("round_sessions", schema=None) as batch_op:
        batch_op.drop_column("capacity")

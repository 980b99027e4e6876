"""the consortium's review queue: another member's entry that this hospital's policy holds
for review, and the decision a member of staff took on it (docs/consortium.md)

Revision ID: 0013
Revises: 0007
Create Date: 2026-11-27 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consortium_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=32), nullable=False),
        sa.Column("entry_no", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("point", sa.String(length=24), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consortium_reviews")),
        sa.UniqueConstraint("issuer", "entry_no", name=op.f("uq_consortium_reviews_issuer_entry_no")),
    )
    with op.batch_alter_table("consortium_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consortium_reviews_status"), ["status"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consortium_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consortium_reviews_status"))
    op.drop_table("consortium_reviews")

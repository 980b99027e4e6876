"""the desk's identity claims need a second member of staff: a claim is recorded pending,
with the clerk who made it, until another member of staff approves or rejects it, or it
expires (docs/identity.md, "At the desk: four eyes")

Revision ID: 0016_small_claims
Revises: 0015
Create Date: 2026-11-28 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_small_claims"
down_revision = "0015"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name=op.f("fk_identity_claims_patient_id_patients")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_identity_claims_account_id_accounts")),
        sa.ForeignKeyConstraint(["requested_by"], ["accounts.id"],
                                name=op.f("fk_identity_claims_requested_by_accounts")),
        sa.ForeignKeyConstraint(["decided_by"], ["accounts.id"],
                                name=op.f("fk_identity_claims_decided_by_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_claims")),
    )
    with op.batch_alter_table("identity_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_claims_patient_id"), ["patient_id"])
        batch_op.create_index(batch_op.f("ix_identity_claims_status"), ["status"])


def downgrade() -> None:
    with op.batch_alter_table("identity_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_claims_status"))
        batch_op.drop_index(batch_op.f("ix_identity_claims_patient_id"))
    op.drop_table("identity_claims")

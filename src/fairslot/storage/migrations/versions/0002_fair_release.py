"""fair release rounds, entries, notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:19:34.663407
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("read", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_notifications_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "release_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seed", sa.LargeBinary(), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.Column("entries_digest", sa.String(length=64), nullable=True),
        sa.Column("beacon", sa.String(length=200), nullable=False),
        sa.Column("revealed_seed", sa.String(length=64), nullable=True),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entries_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_release_rounds_department_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_rounds")),
        sa.UniqueConstraint(
            "department_id", "closes_at", name=op.f("uq_release_rounds_department_id_closes_at")
        ),
    )
    with op.batch_alter_table("release_rounds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_release_rounds_closes_at"), ["closes_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_release_rounds_status"), ["status"], unique=False)

    op.create_table(
        "round_sessions",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["release_rounds.id"],
            name=op.f("fk_round_sessions_round_id_release_rounds"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_round_sessions_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("round_id", "session_id", name=op.f("pk_round_sessions")),
        sa.UniqueConstraint("session_id", name=op.f("uq_round_sessions_session_id")),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("won_session_id", sa.Integer(), nullable=True),
        sa.Column("won_rank", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_entries_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_entries_booking_id_bookings")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_entries_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["round_id"], ["release_rounds.id"], name=op.f("fk_entries_round_id_release_rounds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.UniqueConstraint(
            "account_id", "idempotency_key", name=op.f("uq_entries_account_id_idempotency_key")
        ),
        sa.UniqueConstraint("ref", name=op.f("uq_entries_ref")),
        sa.UniqueConstraint("round_id", "patient_id", name=op.f("uq_entries_round_id_patient_id")),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entries_round_outcome_position", ["round_id", "outcome", "position"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_round_outcome_position")

    op.drop_table("entries")
    op.drop_table("round_sessions")
    with op.batch_alter_table("release_rounds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_rounds_status"))
        batch_op.drop_index(batch_op.f("ix_release_rounds_closes_at"))

    op.drop_table("release_rounds")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_account_id"))

    op.drop_table("notifications")

"""identity on evidence: verified phones, registered and claimed identities, one-time codes,
the messages sent (and the development outbox), failed real-name checks

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-27 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_verified_at", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=False,
                                      server_default="zh-CN"))
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registered_account_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", _WHEN, nullable=True))
        batch_op.create_foreign_key(op.f("fk_patients_registered_account_id_accounts"),
                                    "accounts", ["registered_account_id"], ["id"])
    # Accounts that existed before phones were verified keep working: they are taken as
    # verified from now on (their phones were accepted under the old rules), and each
    # identity's registered phone is that of the account that linked it first.
    op.execute("UPDATE accounts SET phone_verified_at = created_at "
               "WHERE phone IS NOT NULL AND role = 'patient'")
    op.execute("UPDATE patients SET registered_account_id = (SELECT ap.account_id FROM "
               "account_patients ap WHERE ap.patient_id = patients.id "
               "ORDER BY ap.added_at, ap.account_id LIMIT 1)")
    op.create_table(
        "verification_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.LargeBinary(), nullable=False),
        sa.Column("phone_index", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_verification_codes_account_id_accounts")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name=op.f("fk_verification_codes_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_codes")),
    )
    with op.batch_alter_table("verification_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_verification_codes_account_id"), ["account_id"])
        batch_op.create_index(batch_op.f("ix_verification_codes_phone_index"), ["phone_index"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("sent_at", _WHEN, nullable=True),
        sa.Column("provider_ref", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_messages_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_account_id"), ["account_id"])
        batch_op.create_index(batch_op.f("ix_messages_channel"), ["channel"])
    op.create_table(
        "identity_check_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("id_number_index", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_check_failures")),
    )
    with op.batch_alter_table("identity_check_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_check_failures_at"), ["at"])
        batch_op.create_index(batch_op.f("ix_identity_check_failures_account_id"),
                              ["account_id"])
        batch_op.create_index(batch_op.f("ix_identity_check_failures_id_number_index"),
                              ["id_number_index"])


def downgrade() -> None:
    op.drop_table("identity_check_failures")
    op.drop_table("messages")
    op.drop_table("verification_codes")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_patients_registered_account_id_accounts"),
                                 type_="foreignkey")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("registered_account_id")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("language")
        batch_op.drop_column("phone_verified_at")

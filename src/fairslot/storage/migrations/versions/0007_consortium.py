"""the consortium: own and subscribed entries, members with pinned keys, feeds as received,
epoch keys, policies, appeals and the audit log (docs/consortium.md)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 18:13:30.717266
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_APPEND_ONLY = {"consortium_audit": "the consortium audit log is append-only",
                "consortium_changes": "feed changes are never rewritten"}


def _create_guards() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, why in _APPEND_ONLY.items():
        if postgres:  # fairslot_refuse() comes with revision 0001
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION fairslot_refuse('{why}')")
        else:
            for verb in ("update", "delete"):
                op.execute(f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{why}'); END")


def _drop_guards() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _APPEND_ONLY:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


def upgrade() -> None:
    op.create_table(
        "consortium_appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column("member", sa.String(length=32), nullable=False),
        sa.Column("issuer", sa.String(length=32), nullable=False),
        sa.Column("entry_no", sa.BigInteger(), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.String(length=500), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consortium_appeals")),
        sa.UniqueConstraint("ref", name=op.f("uq_consortium_appeals_ref")),
    )
    with op.batch_alter_table("consortium_appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consortium_appeals_status"), ["status"], unique=False)

    op.create_table(
        "consortium_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("member", sa.String(length=32), nullable=True),
        sa.Column("entry_no", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consortium_audit")),
    )
    with op.batch_alter_table("consortium_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consortium_audit_at"), ["at"], unique=False)

    op.create_table(
        "consortium_changes",
        sa.Column("member", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("head", sa.Text(), nullable=True),
        sa.Column("signature", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("member", "version", name=op.f("pk_consortium_changes")),
    )
    op.create_table(
        "consortium_entries",
        sa.Column("member", sa.String(length=32), nullable=False),
        sa.Column("entry_no", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_version", sa.Integer(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=16), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member", "entry_no", name=op.f("pk_consortium_entries")),
    )
    with op.batch_alter_table("consortium_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consortium_entries_pseudonym"), ["pseudonym"], unique=False
        )

    op.create_table(
        "consortium_epochs",
        sa.Column("epoch", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("epoch", name=op.f("pk_consortium_epochs")),
    )
    op.create_table(
        "consortium_members",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("hub", sa.Boolean(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("head_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_consortium_members")),
    )
    op.create_table(
        "consortium_own_entries",
        sa.Column("entry_no", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=16), nullable=False),
        sa.Column("identifier", sa.LargeBinary(), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdraw_reason", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("entry_no", name=op.f("pk_consortium_own_entries")),
    )
    op.create_table(
        "consortium_policies",
        sa.Column("key", sa.String(length=48), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_consortium_policies")),
    )
    op.create_table(
        "consortium_self",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("signing_key", sa.LargeBinary(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consortium_self")),
    )

    _create_guards()


def downgrade() -> None:
    _drop_guards()
    op.drop_table("consortium_self")
    op.drop_table("consortium_policies")
    op.drop_table("consortium_own_entries")
    op.drop_table("consortium_members")
    op.drop_table("consortium_epochs")
    with op.batch_alter_table("consortium_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consortium_entries_pseudonym"))

    op.drop_table("consortium_entries")
    op.drop_table("consortium_changes")
    with op.batch_alter_table("consortium_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consortium_audit_at"))

    op.drop_table("consortium_audit")
    with op.batch_alter_table("consortium_appeals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consortium_appeals_status"))

    op.drop_table("consortium_appeals")

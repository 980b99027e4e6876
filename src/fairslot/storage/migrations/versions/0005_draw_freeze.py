"""draw format 2: signed statements, frozen lists, beacons, receipts, the log of rounds and
its checkpoints (new tables only; release_rounds and entries are unchanged)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 18:45:00

What the hospital signed is stored as it was signed and never rewritten: the statements,
the receipts, the log records and the checkpoints are append-only in the database itself
(the same guard as the event log), so no later code path can quietly change a published
fact. An entry's ``seq`` is the highest ``seq`` of its receipts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_APPEND_ONLY = ("draw_statements", "draw_frozen_lists", "draw_beacons", "draw_receipts",
                "draw_log_records", "draw_checkpoints")


def upgrade() -> None:
    # The opening, freeze and result statements of a round, each exactly as signed.
    op.create_table(
        "draw_statements",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),  # opening | freeze | result
        sa.Column("body", sa.Text(), nullable=False),  # the signed object, canonical JSON
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["release_rounds.id"],
                                name=op.f("fk_draw_statements_round_id_release_rounds")),
        sa.PrimaryKeyConstraint("round_id", "kind", name=op.f("pk_draw_statements")),
    )
    # The frozen list: its leaf lines in ref order, joined by newlines, and its root.
    op.create_table(
        "draw_frozen_lists",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("leaves", sa.Text(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("drawn", sa.Integer(), nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["release_rounds.id"],
                                name=op.f("fk_draw_frozen_lists_round_id_release_rounds")),
        sa.PrimaryKeyConstraint("round_id", name=op.f("pk_draw_frozen_lists")),
    )
    # The beacon of the round's stated drand round, once fetched and checked.
    op.create_table(
        "draw_beacons",
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.Column("beacon_round", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=192), nullable=False),
        sa.Column("previous_signature", sa.String(length=192), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["release_rounds.id"],
                                name=op.f("fk_draw_beacons_round_id_release_rounds")),
        sa.PrimaryKeyConstraint("round_id", name=op.f("pk_draw_beacons")),
    )
    # Every receipt given to a patient (entry, change, withdrawal).
    op.create_table(
        "draw_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["release_rounds.id"],
                                name=op.f("fk_draw_receipts_round_id_release_rounds")),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"],
                                name=op.f("fk_draw_receipts_entry_id_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draw_receipts")),
        sa.UniqueConstraint("entry_id", "seq", name=op.f("uq_draw_receipts_entry_id_seq")),
    )
    # The log of rounds: position is the leaf index, strictly 0, 1, 2, ...
    op.create_table(
        "draw_log_records",
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),  # opened | frozen | drawn
        sa.Column("body", sa.Text(), nullable=False),  # canonical JSON: the leaf data
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["round_id"], ["release_rounds.id"],
                                name=op.f("fk_draw_log_records_round_id_release_rounds")),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_draw_log_records")),
        sa.UniqueConstraint("round_id", "kind", name=op.f("uq_draw_log_records_round_id_kind")),
    )
    op.create_table(
        "draw_checkpoints",
        sa.Column("size", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),  # the signed checkpoint
        sa.PrimaryKeyConstraint("size", name=op.f("pk_draw_checkpoints")),
    )
    _guard()


def _guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION fairslot_refuse('{table} is append-only')""")
        return
    for table in _APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _APPEND_ONLY:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    for table in reversed(_APPEND_ONLY):
        op.drop_table(table)

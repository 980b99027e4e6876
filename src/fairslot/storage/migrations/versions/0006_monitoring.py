"""monitoring: alerts (one live alert per scenario and entity), their status history, and
the decisions taken on them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 18:15:31.392277
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('monitor_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scenario', sa.String(length=40), nullable=False),
    sa.Column('entity_type', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.String(length=120), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('related', sa.JSON(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_by', sa.String(length=80), nullable=True),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('status_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('quiet_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitor_alerts'))
    )
    with op.batch_alter_table('monitor_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_monitor_alerts_entity_type_entity_id', ['entity_type', 'entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_monitor_alerts_last_seen'), ['last_seen'], unique=False)
        batch_op.create_index(batch_op.f('ix_monitor_alerts_status'), ['status'], unique=False)
        batch_op.create_index('uq_monitor_alerts_live', ['scenario', 'entity_type', 'entity_id'], unique=True, sqlite_where=sa.text("status IN ('open', 'acknowledged')"), postgresql_where=sa.text("status IN ('open', 'acknowledged')"))

    op.create_table('monitor_alert_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['monitor_alerts.id'], name=op.f('fk_monitor_alert_history_alert_id_monitor_alerts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitor_alert_history'))
    )
    with op.batch_alter_table('monitor_alert_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitor_alert_history_alert_id'), ['alert_id'], unique=False)

    op.create_table('monitor_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('scenario', sa.String(length=40), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('param', sa.String(length=40), nullable=True),
    sa.Column('entity_type', sa.String(length=20), nullable=False),
    sa.Column('entity_id', sa.String(length=120), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=80), nullable=True),
    sa.Column('lifted_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['monitor_alerts.id'], name=op.f('fk_monitor_decisions_alert_id_monitor_alerts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitor_decisions')),
    sa.UniqueConstraint('alert_id', 'action', 'entity_type', 'entity_id', name=op.f('uq_monitor_decisions_alert_id_action_entity_type_entity_id'))
    )
    with op.batch_alter_table('monitor_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_monitor_decisions_entity_type_entity_id', ['entity_type', 'entity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_monitor_decisions_expires_at'), ['expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('monitor_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitor_decisions_expires_at'))
        batch_op.drop_index('ix_monitor_decisions_entity_type_entity_id')

    op.drop_table('monitor_decisions')
    with op.batch_alter_table('monitor_alert_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitor_alert_history_alert_id'))

    op.drop_table('monitor_alert_history')
    with op.batch_alter_table('monitor_alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_monitor_alerts_live', sqlite_where=sa.text("status IN ('open', 'acknowledged')"), postgresql_where=sa.text("status IN ('open', 'acknowledged')"))
        batch_op.drop_index(batch_op.f('ix_monitor_alerts_status'))
        batch_op.drop_index(batch_op.f('ix_monitor_alerts_last_seen'))
        batch_op.drop_index('ix_monitor_alerts_entity_type_entity_id')

    op.drop_table('monitor_alerts')

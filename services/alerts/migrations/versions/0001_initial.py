"""Baseline alerts schema, frozen: rules and rule versions, alerts, notifications and timeline, silences, signals, incident copies; the runtime's outbox, idempotency keys, feed cursors and inbox.

This revision is explicit DDL of the schema as first released. It never reads
the live models: every later change to a table is a new revision after it.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.runtime.revisions import runtime_tables_0001

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    runtime_tables_0001("alerts")
    op.create_table('alerts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('group_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('rule_id', sa.String(length=40), nullable=False),
    sa.Column('rule_version', sa.BigInteger(), nullable=False),
    sa.Column('area_kind', sa.String(length=10), server_default='', nullable=False),
    sa.Column('area_id', sa.String(length=40), server_default='', nullable=False),
    sa.Column('area_name', sa.Text(), server_default='', nullable=False),
    sa.Column('center_lon', sa.Float(), nullable=True),
    sa.Column('center_lat', sa.Float(), nullable=True),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('grid_id', sa.String(length=30), server_default='', nullable=False),
    sa.Column('subject', sa.String(length=200), server_default='', nullable=False),
    sa.Column('related_subjects', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('suggested_action', sa.Text(), server_default='', nullable=False),
    sa.Column('recipients', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('first_seen_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.BigInteger(), server_default='1', nullable=False),
    sa.Column('escalation_level', sa.Integer(), server_default='0', nullable=False),
    sa.Column('escalate_after_s', sa.Float(), server_default='0', nullable=False),
    sa.Column('next_escalation_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('auto_resolve_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('labels', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('hot_cells', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('cold_cells', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('silence_id', sa.String(length=40), server_default='', nullable=False),
    sa.Column('ack_actor', sa.Text(), nullable=True),
    sa.Column('ack_roles', postgresql.ARRAY(sa.Text()), nullable=True),
    sa.Column('ack_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ack_reason', sa.Text(), nullable=True),
    sa.Column('resolve_actor', sa.Text(), nullable=True),
    sa.Column('resolve_roles', postgresql.ARRAY(sa.Text()), nullable=True),
    sa.Column('resolve_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolve_reason', sa.Text(), nullable=True),
    sa.Column('update_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    schema='alerts'
    )
    op.create_index('alerts_escalation', 'alerts', ['next_escalation_time'], unique=False, schema='alerts', postgresql_where=sa.text("state = 'FIRING'"))
    op.create_index('alerts_last_seen', 'alerts', ['last_seen_time', 'id'], unique=False, schema='alerts')
    op.create_index('alerts_open_fingerprint', 'alerts', ['fingerprint'], unique=True, schema='alerts', postgresql_where=sa.text("state <> 'RESOLVED'"))
    op.create_index('alerts_station_state', 'alerts', ['station_id', 'state'], unique=False, schema='alerts')
    op.create_table('hourly_counts',
    sa.Column('area_kind', sa.String(length=10), nullable=False),
    sa.Column('area_id', sa.String(length=40), nullable=False),
    sa.Column('incident_type', sa.String(length=40), nullable=False),
    sa.Column('hour_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('area_kind', 'area_id', 'incident_type', 'hour_start'),
    schema='alerts'
    )
    op.create_table('incidents',
    sa.Column('report_id', sa.String(length=40), nullable=False),
    sa.Column('receive_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('grid_id', sa.String(length=30), server_default='', nullable=False),
    sa.Column('category', sa.String(length=20), server_default='', nullable=False),
    sa.Column('incident_type', sa.String(length=40), server_default='', nullable=False),
    sa.Column('merged_into', sa.String(length=60), server_default='', nullable=False),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('cells', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.PrimaryKeyConstraint('report_id'),
    schema='alerts'
    )
    op.create_index('incidents_grid_time', 'incidents', ['grid_id', 'receive_time'], unique=False, schema='alerts')
    op.create_index('incidents_station_time', 'incidents', ['station_id', 'receive_time'], unique=False, schema='alerts')
    op.create_index('incidents_time', 'incidents', ['receive_time'], unique=False, schema='alerts')
    op.create_table('obligations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('due_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_s', sa.Float(), server_default='0', nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('warned', sa.String(length=20), server_default='', nullable=False),
    sa.Column('complete_actor', sa.Text(), nullable=True),
    sa.Column('complete_roles', postgresql.ARRAY(sa.Text()), nullable=True),
    sa.Column('complete_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('complete_reason', sa.Text(), nullable=True),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('update_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    schema='alerts'
    )
    op.create_index('obligations_due', 'obligations', ['due_time'], unique=False, schema='alerts', postgresql_where=sa.text("state = 'PENDING'"))
    op.create_index('obligations_kind_subject', 'obligations', ['kind', 'subject'], unique=False, schema='alerts')
    op.create_table('rules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('update_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delete_time', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    schema='alerts'
    )
    op.create_table('signals',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('signal_type', sa.String(length=60), nullable=False),
    sa.Column('external_id', sa.Text(), server_default='', nullable=False),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('alert_ids', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('receive_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    schema='alerts'
    )
    op.create_index('signals_source_external', 'signals', ['source', 'external_id'], unique=True, schema='alerts', postgresql_where=sa.text("external_id <> ''"))
    op.create_table('silences',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('matchers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expire_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('creator', sa.Text(), nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expired_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expire_actor', sa.Text(), nullable=True),
    sa.Column('expire_roles', postgresql.ARRAY(sa.Text()), nullable=True),
    sa.Column('expire_reason', sa.Text(), nullable=True),
    sa.Column('applied', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('released', sa.Boolean(), server_default='false', nullable=False),
    sa.PrimaryKeyConstraint('id'),
    schema='alerts'
    )
    op.create_table('alert_notifications',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('alert_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('send_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('delivered', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.alerts.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    schema='alerts'
    )
    op.create_index(op.f('ix_alerts_alert_notifications_alert_id'), 'alert_notifications', ['alert_id'], unique=False, schema='alerts')
    op.create_table('alert_timeline',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('alert_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.alerts.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    schema='alerts'
    )
    op.create_index(op.f('ix_alerts_alert_timeline_alert_id'), 'alert_timeline', ['alert_id'], unique=False, schema='alerts')
    op.create_table('rule_versions',
    sa.Column('rule_id', sa.String(length=40), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('spec', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['alerts.rules.id'], ),
    sa.PrimaryKeyConstraint('rule_id', 'version'),
    schema='alerts'
    )


def downgrade() -> None:
    raise NotImplementedError("the baseline is not reversible; restore from backup")

"""Baseline intake schema, frozen: stations, grids, addresses, reports and their timeline, knowledge base and consultations; the runtime's outbox, idempotency keys, feed cursors and inbox.

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
    runtime_tables_0001("intake")
    op.create_table('addresses',
    sa.Column('code', sa.String(length=21), nullable=False),
    sa.Column('full_address', sa.Text(), nullable=False),
    sa.Column('district', sa.Text(), nullable=False),
    sa.Column('street', sa.Text(), nullable=False),
    sa.Column('community', sa.Text(), nullable=False),
    sa.Column('road', sa.Text(), nullable=False),
    sa.Column('house_number', sa.Text(), nullable=False),
    sa.Column('building', sa.Text(), server_default='', nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('grid_id', sa.String(length=30), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('code'),
    schema='intake'
    )
    op.create_table('knowledge_entries',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('topic', sa.String(length=20), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('keywords', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('source_consultation', sa.String(length=40), server_default='', nullable=False),
    sa.Column('author', sa.Text(), server_default='', nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('entry_id'),
    sa.UniqueConstraint('seq'),
    schema='intake'
    )
    op.create_table('reports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=30), nullable=False),
    sa.Column('caller_phone', sa.String(length=30), server_default='', nullable=False),
    sa.Column('caller_name', sa.String(length=60), server_default='', nullable=False),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('accuracy_m', sa.Float(), server_default='0', nullable=False),
    sa.Column('location_source', sa.String(length=30), server_default='', nullable=False),
    sa.Column('address_text', sa.Text(), server_default='', nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('attachments', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('language', sa.String(length=20), server_default='zh-CN', nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('incident_type', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('classification_reason', sa.Text(), nullable=False),
    sa.Column('rule_ids', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('corrected', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('grid_id', sa.String(length=30), server_default='', nullable=False),
    sa.Column('border_case', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('merged_into', sa.String(length=40), server_default='', nullable=False),
    sa.Column('receive_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answer_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('classify_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hand_off_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('satisfaction', sa.String(length=30), server_default='', nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('update_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('address_code', sa.String(length=21), server_default='', nullable=False),
    sa.Column('address_match', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    schema='intake'
    )
    op.create_index('reports_caller_time', 'reports', ['caller_phone', 'receive_time'], unique=False, schema='intake')
    op.create_index('reports_merged_into', 'reports', ['merged_into'], unique=False, schema='intake')
    op.create_index('reports_receive_time', 'reports', ['receive_time', 'id'], unique=False, schema='intake')
    op.create_index('reports_station_time', 'reports', ['station_id', 'receive_time'], unique=False, schema='intake')
    op.create_table('stations',
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('district', sa.Text(), nullable=False),
    sa.Column('hq_lon', sa.Float(), nullable=False),
    sa.Column('hq_lat', sa.Float(), nullable=False),
    sa.Column('boundary', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('station_id'),
    schema='intake'
    )
    op.create_table('consultations',
    sa.Column('report_id', sa.String(length=40), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('topic', sa.String(length=20), server_default='', nullable=False),
    sa.Column('answer', sa.Text(), server_default='', nullable=False),
    sa.Column('entry_id', sa.String(length=40), server_default='', nullable=False),
    sa.Column('score', sa.Float(), server_default='0', nullable=False),
    sa.Column('answered_at_once', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('expert', sa.Text(), server_default='', nullable=False),
    sa.Column('expert_name', sa.Text(), server_default='', nullable=False),
    sa.Column('suggestions', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claim_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answer_time', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['report_id'], ['intake.reports.id'], ),
    sa.PrimaryKeyConstraint('report_id'),
    schema='intake'
    )
    op.create_index('consultations_status_time', 'consultations', ['status', 'create_time', 'report_id'], unique=False, schema='intake')
    op.create_table('grids',
    sa.Column('grid_id', sa.String(length=30), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('arrival_target_seconds', sa.Integer(), nullable=False),
    sa.Column('boundary', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['intake.stations.station_id'], ),
    sa.PrimaryKeyConstraint('grid_id'),
    schema='intake'
    )
    op.create_table('report_handling',
    sa.Column('report_id', sa.String(length=40), nullable=False),
    sa.Column('merge_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('dispatch_case', sa.String(length=60), server_default='', nullable=False),
    sa.Column('work_order', sa.String(length=60), server_default='', nullable=False),
    sa.Column('satisfaction_comment', sa.Text(), server_default='', nullable=False),
    sa.Column('rate_time', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['report_id'], ['intake.reports.id'], ),
    sa.PrimaryKeyConstraint('report_id'),
    schema='intake'
    )
    op.create_index('report_handling_case', 'report_handling', ['dispatch_case'], unique=False, schema='intake')
    op.create_table('report_timeline',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('report_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['intake.reports.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    schema='intake'
    )
    op.create_index(op.f('ix_intake_report_timeline_report_id'), 'report_timeline', ['report_id'], unique=False, schema='intake')


def downgrade() -> None:
    raise NotImplementedError("the baseline is not reversible; restore from backup")

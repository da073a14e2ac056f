"""Baseline referral schema, frozen: departments, work orders with assignments, timeline and reviews, Open311 keys; the runtime's outbox, idempotency keys, feed cursors and inbox.

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
    runtime_tables_0001("referral")
    op.create_table('departments',
    sa.Column('dept_id', sa.String(length=20), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('matters', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('districts', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('supervisor', sa.Text(), server_default='', nullable=False),
    sa.Column('phone', sa.String(length=30), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('dept_id'),
    schema='referral'
    )
    op.create_table('unreasonable_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('work_order', sa.String(length=80), server_default='', nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('citizen_phone', sa.String(length=30), server_default='', nullable=False),
    sa.Column('citizen_name', sa.Text(), server_default='', nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('standard_reply', sa.Text(), nullable=False),
    sa.Column('typical_case', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('prior_requests', sa.Integer(), server_default='0', nullable=False),
    sa.Column('record_actor', sa.Text(), nullable=False),
    sa.Column('record_roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('overturn_actor', sa.Text(), server_default='', nullable=False),
    sa.Column('overturn_roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('overturn_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overturn_reason', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id'),
    schema='referral'
    )
    op.create_index('unreasonable_requests_create_time', 'unreasonable_requests', ['create_time', 'id'], unique=False, schema='referral')
    op.create_table('work_orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('report', sa.String(length=80), nullable=True),
    sa.Column('hotline_ticket_id', sa.String(length=80), server_default='', nullable=False),
    sa.Column('category', sa.Text(), server_default='', nullable=False),
    sa.Column('matter_code', sa.String(length=60), server_default='', nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('accuracy_m', sa.Float(), server_default='0', nullable=False),
    sa.Column('address_text', sa.Text(), server_default='', nullable=False),
    sa.Column('district', sa.Text(), server_default='', nullable=False),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('citizen_phone', sa.String(length=30), server_default='', nullable=False),
    sa.Column('citizen_name', sa.Text(), server_default='', nullable=False),
    sa.Column('confidential', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('urgency', sa.Integer(), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('preliminary_station', sa.String(length=40), server_default='', nullable=False),
    sa.Column('preliminary_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('overdue', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('satisfaction', sa.String(length=30), server_default='', nullable=False),
    sa.Column('satisfaction_comment', sa.Text(), server_default='', nullable=False),
    sa.Column('reopen_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('transferred_report', sa.String(length=80), server_default='', nullable=False),
    sa.Column('transferred_report_status', sa.String(length=40), server_default='', nullable=False),
    sa.Column('unreasonable_request', sa.String(length=80), server_default='', nullable=False),
    sa.Column('attachments', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('request_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('update_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('close_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('repeat_caller', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('prior_requests', sa.Integer(), server_default='0', nullable=False),
    sa.Column('escalated_to_name', sa.Text(), server_default='', nullable=False),
    sa.Column('escalated_to_phone', sa.String(length=30), server_default='', nullable=False),
    sa.Column('escalate_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('round', sa.Integer(), server_default='0', nullable=False),
    sa.Column('joint_rescue', sa.Boolean(), server_default='false', nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('report'),
    schema='referral'
    )
    op.create_index(op.f('ix_referral_work_orders_citizen_phone'), 'work_orders', ['citizen_phone'], unique=False, schema='referral')
    op.create_index('work_orders_create_time', 'work_orders', ['create_time', 'id'], unique=False, schema='referral')
    op.create_index('work_orders_open_deadline', 'work_orders', ['deadline'], unique=False, schema='referral', postgresql_where='NOT overdue')
    op.create_index('work_orders_transferred_report', 'work_orders', ['transferred_report'], unique=False, schema='referral')
    op.create_table('work_order_assignments',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('work_order_id', sa.String(length=40), nullable=False),
    sa.Column('dept_id', sa.String(length=20), nullable=False),
    sa.Column('dept_name', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('routing_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('assign_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accept_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolve_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reject_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('feedback', sa.Text(), server_default='', nullable=False),
    sa.Column('attachments', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.ForeignKeyConstraint(['work_order_id'], ['referral.work_orders.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    schema='referral'
    )
    op.create_index(op.f('ix_referral_work_order_assignments_dept_id'), 'work_order_assignments', ['dept_id'], unique=False, schema='referral')
    op.create_index(op.f('ix_referral_work_order_assignments_work_order_id'), 'work_order_assignments', ['work_order_id'], unique=False, schema='referral')
    op.create_table('work_order_reviews',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('work_order_id', sa.String(length=40), nullable=False),
    sa.Column('dept_id', sa.String(length=20), nullable=False),
    sa.Column('satisfaction', sa.String(length=30), nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['work_order_id'], ['referral.work_orders.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    schema='referral'
    )
    op.create_index(op.f('ix_referral_work_order_reviews_work_order_id'), 'work_order_reviews', ['work_order_id'], unique=False, schema='referral')
    op.create_table('work_order_timeline',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('work_order_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('department', sa.String(length=40), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['work_order_id'], ['referral.work_orders.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    schema='referral'
    )
    op.create_index(op.f('ix_referral_work_order_timeline_work_order_id'), 'work_order_timeline', ['work_order_id'], unique=False, schema='referral')


def downgrade() -> None:
    raise NotImplementedError("the baseline is not reversible; restore from backup")

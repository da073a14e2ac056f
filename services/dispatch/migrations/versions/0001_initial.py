"""Baseline dispatch schema, frozen: units and their timeline, shifts, grids, cases and their timeline, assignments, offers, stop-payment hand-offs; the runtime's outbox, idempotency keys, feed cursors and inbox.

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
    runtime_tables_0001("dispatch")
    op.create_table('cases',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('report', sa.String(length=60), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('grid_id', sa.String(length=30), server_default='', nullable=False),
    sa.Column('incident_type', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('address_text', sa.Text(), server_default='', nullable=False),
    sa.Column('summary', sa.Text(), server_default='', nullable=False),
    sa.Column('recommendations', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('report_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('update_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('arrival_target_s', sa.Integer(), server_default='0', nullable=False),
    sa.Column('accept_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('arrive_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('close_time', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('report'),
    schema='dispatch'
    )
    op.create_index('cases_create_time', 'cases', ['create_time', 'id'], unique=False, schema='dispatch')
    op.create_index('cases_station_status', 'cases', ['station_id', 'status'], unique=False, schema='dispatch')
    op.create_table('grids',
    sa.Column('grid_id', sa.String(length=30), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('arrival_target_s', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('grid_id'),
    schema='dispatch'
    )
    op.create_table('units',
    sa.Column('unit_id', sa.String(length=30), nullable=False),
    sa.Column('call_sign', sa.String(length=30), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('skills', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('vehicle', sa.String(length=30), server_default='', nullable=False),
    sa.Column('officers', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('position_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('position_accuracy_m', sa.Float(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('unit_id'),
    sa.UniqueConstraint('call_sign'),
    schema='dispatch'
    )
    op.create_index(op.f('ix_dispatch_units_station_id'), 'units', ['station_id'], unique=False, schema='dispatch')
    op.create_index('units_kind_status', 'units', ['kind', 'status'], unique=False, schema='dispatch')
    op.create_index('units_lat_lon', 'units', ['lat', 'lon'], unique=False, schema='dispatch')
    op.create_table('assignments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('unit_id', sa.String(length=30), nullable=False),
    sa.Column('call_sign', sa.String(length=30), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('officers', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('capability', sa.String(length=40), server_default='', nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('arrival_target_s', sa.Integer(), server_default='0', nullable=False),
    sa.Column('offer_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('offer_expire_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('update_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('accept_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('en_route_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('arrive_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('clear_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report_back_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decline_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('outcome', sa.String(length=30), server_default='', nullable=False),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.Column('evidence', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['dispatch.cases.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['dispatch.units.unit_id'], ),
    sa.PrimaryKeyConstraint('id'),
    schema='dispatch'
    )
    op.create_index('assignments_open_offers', 'assignments', ['offer_expire_time'], unique=False, schema='dispatch', postgresql_where=sa.text("state = 'OFFERED'"))
    op.create_index('assignments_unit_state', 'assignments', ['unit_id', 'state'], unique=False, schema='dispatch')
    op.create_index(op.f('ix_dispatch_assignments_case_id'), 'assignments', ['case_id'], unique=False, schema='dispatch')
    op.create_table('case_followups',
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('satisfaction', sa.String(length=30), nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('rate_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['dispatch.cases.id'], ),
    sa.PrimaryKeyConstraint('case_id'),
    schema='dispatch'
    )
    op.create_index('case_followups_station_time', 'case_followups', ['station_id', 'rate_time'], unique=False, schema='dispatch')
    op.create_table('case_timeline',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['dispatch.cases.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    schema='dispatch'
    )
    op.create_index(op.f('ix_dispatch_case_timeline_case_id'), 'case_timeline', ['case_id'], unique=False, schema='dispatch')
    op.create_table('shifts',
    sa.Column('shift_id', sa.String(length=60), nullable=False),
    sa.Column('unit_id', sa.String(length=30), nullable=False),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('area', sa.String(length=40), server_default='', nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['dispatch.units.unit_id'], ),
    sa.PrimaryKeyConstraint('shift_id'),
    schema='dispatch'
    )
    op.create_index('shifts_unit_time', 'shifts', ['unit_id', 'start_time', 'end_time'], unique=False, schema='dispatch')
    op.create_table('stop_payments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('banks', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('victim_account', sa.String(length=40), server_default='', nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('victim_name', sa.Text(), server_default='', nullable=False),
    sa.Column('victim_phone', sa.String(length=40), server_default='', nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('requested_by', sa.Text(), nullable=False),
    sa.Column('requested_roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('receipt_id', sa.String(length=80), server_default='', nullable=False),
    sa.Column('frozen_amount_fen', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('result_text', sa.Text(), server_default='', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('checks', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), server_default='', nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deliver_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_time', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['dispatch.cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key'),
    schema='dispatch'
    )
    op.create_index(op.f('ix_dispatch_stop_payments_case_id'), 'stop_payments', ['case_id'], unique=False, schema='dispatch')
    op.create_index('stop_payments_due', 'stop_payments', ['next_attempt_time'], unique=False, schema='dispatch', postgresql_where=sa.text('next_attempt_time IS NOT NULL'))
    op.create_table('unit_timeline',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('unit_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['dispatch.units.unit_id'], ),
    sa.PrimaryKeyConstraint('seq'),
    schema='dispatch'
    )
    op.create_index(op.f('ix_dispatch_unit_timeline_unit_id'), 'unit_timeline', ['unit_id'], unique=False, schema='dispatch')
    op.create_table('case_followup_officers',
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('officer_id', sa.String(length=20), nullable=False),
    sa.Column('officer_name', sa.Text(), server_default='', nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('unit_id', sa.String(length=30), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['dispatch.case_followups.case_id'], ),
    sa.PrimaryKeyConstraint('case_id', 'officer_id'),
    schema='dispatch'
    )


def downgrade() -> None:
    raise NotImplementedError("the baseline is not reversible; restore from backup")

"""Baseline scoring schema, frozen: rule sets, facts, the append-only ledger, cases, obligations, reviews, warnings; the sample rule set version 1; the runtime's outbox, idempotency keys, feed cursors and inbox.

This revision is explicit DDL of the schema as first released. It never reads
the live models: every later change to a table is a new revision after it.

Revision ID: 0001
Revises:
"""
import datetime
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.runtime.revisions import runtime_tables_0001

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    runtime_tables_0001("scoring")
    op.create_table('case_officers',
    sa.Column('case_name', sa.String(length=80), nullable=False),
    sa.Column('officer_id', sa.String(length=40), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('display_name', sa.Text(), server_default='', nullable=False),
    sa.Column('reported_back', sa.Boolean(), server_default='false', nullable=False),
    sa.PrimaryKeyConstraint('case_name', 'officer_id'),
    schema='scoring'
    )
    op.create_table('cases',
    sa.Column('case_name', sa.String(length=80), nullable=False),
    sa.Column('report', sa.String(length=80), server_default='', nullable=False),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('grid_id', sa.String(length=30), server_default='', nullable=False),
    sa.Column('incident_type', sa.String(length=40), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('case_name'),
    schema='scoring'
    )
    op.create_index('cases_report', 'cases', ['report'], unique=False, schema='scoring')
    op.create_table('fact_officers',
    sa.Column('fact_id', sa.String(length=120), nullable=False),
    sa.Column('officer_id', sa.String(length=40), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('occur_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('fact_id', 'officer_id'),
    schema='scoring'
    )
    op.create_index('fact_officers_officer', 'fact_officers', ['officer_id', 'occur_time'], unique=False, schema='scoring')
    op.create_index('fact_officers_station', 'fact_officers', ['station_id', 'occur_time'], unique=False, schema='scoring')
    op.create_table('facts',
    sa.Column('fact_id', sa.String(length=120), nullable=False),
    sa.Column('event_id', sa.String(length=60), nullable=False),
    sa.Column('event_type', sa.String(length=120), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('occur_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('station_id', sa.String(length=20), server_default='', nullable=False),
    sa.Column('officers', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('fact_id'),
    schema='scoring'
    )
    op.create_index('facts_occur_time', 'facts', ['occur_time'], unique=False, schema='scoring')
    op.create_index('facts_subject', 'facts', ['subject'], unique=False, schema='scoring')
    op.create_table('grid_targets',
    sa.Column('grid_id', sa.String(length=30), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('arrival_target_s', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('grid_id'),
    schema='scoring'
    )
    op.create_table('ledger_entries',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('officer_id', sa.String(length=40), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('dimension', sa.String(length=20), nullable=False),
    sa.Column('points', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=200), server_default='', nullable=False),
    sa.Column('event_id', sa.String(length=60), server_default='', nullable=False),
    sa.Column('event_type', sa.String(length=120), server_default='', nullable=False),
    sa.Column('fact_id', sa.String(length=120), server_default='', nullable=False),
    sa.Column('rule_id', sa.String(length=64), server_default='', nullable=False),
    sa.Column('rule_set_version', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('reverses', sa.String(length=40), server_default='', nullable=False),
    sa.Column('correction_actor', sa.Text(), server_default='', nullable=False),
    sa.Column('correction_roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('correction_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('correction_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('occur_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('seq'),
    schema='scoring'
    )
    op.create_index('ledger_officer_time', 'ledger_entries', ['officer_id', 'occur_time'], unique=False, schema='scoring')
    op.create_index('ledger_once_per_fact_rule_officer', 'ledger_entries', ['fact_id', 'rule_id', 'officer_id'], unique=True, schema='scoring', postgresql_where=sa.text("kind = 'RULE'"))
    op.create_index('ledger_one_reversal', 'ledger_entries', ['reverses'], unique=True, schema='scoring', postgresql_where=sa.text("kind = 'REVERSAL'"))
    op.create_index('ledger_station_time', 'ledger_entries', ['station_id', 'occur_time'], unique=False, schema='scoring')
    op.create_index('ledger_subject', 'ledger_entries', ['subject'], unique=False, schema='scoring')
    op.create_table('report_back_obligations',
    sa.Column('assignment', sa.String(length=120), nullable=False),
    sa.Column('case_name', sa.String(length=80), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('officers', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('due_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('warned', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('source_event_id', sa.String(length=60), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('assignment'),
    schema='scoring'
    )
    op.create_index('obligations_open_due', 'report_back_obligations', ['due_time'], unique=False, schema='scoring', postgresql_where=sa.text('done_time IS NULL AND NOT cancelled'))
    op.create_table('reviews',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('case_name', sa.String(length=80), nullable=False),
    sa.Column('officer_ids', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('evidence', sa.String(length=20), nullable=False),
    sa.Column('missing_evidence', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('procedure', sa.String(length=20), nullable=False),
    sa.Column('procedure_flaws', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('classification', sa.String(length=20), nullable=False),
    sa.Column('corrected_incident_type', sa.String(length=40), server_default='', nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('seq'),
    schema='scoring'
    )
    op.create_index(op.f('ix_scoring_reviews_case_name'), 'reviews', ['case_name'], unique=False, schema='scoring')
    op.create_index('reviews_create_time', 'reviews', ['create_time', 'id'], unique=False, schema='scoring')
    op.create_table('rule_sets',
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('rules', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('effective_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('create_actor', sa.Text(), nullable=False),
    sa.Column('create_roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('create_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('publish_actor', sa.Text(), server_default='', nullable=False),
    sa.Column('publish_roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('publish_time', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('version'),
    schema='scoring'
    )
    op.create_table('warnings',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('officer_id', sa.String(length=40), nullable=False),
    sa.Column('station_id', sa.String(length=20), nullable=False),
    sa.Column('case_name', sa.String(length=80), server_default='', nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('source_event_id', sa.String(length=60), server_default='', nullable=False),
    sa.Column('cause', sa.String(length=200), nullable=False),
    sa.Column('raise_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rectify_time', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    schema='scoring'
    )
    op.create_index('warnings_once', 'warnings', ['kind', 'officer_id', 'cause'], unique=True, schema='scoring')
    op.create_index('warnings_raise_time', 'warnings', ['raise_time', 'id'], unique=False, schema='scoring')
    op.create_index('warnings_station_time', 'warnings', ['station_id', 'raise_time'], unique=False, schema='scoring')
    op.create_table('warning_timeline',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('warning_id', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('roles', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['warning_id'], ['scoring.warnings.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    schema='scoring'
    )
    op.create_index(op.f('ix_scoring_warning_timeline_warning_id'), 'warning_timeline', ['warning_id'], unique=False, schema='scoring')

    # The points ledger is append-only, enforced by the database.
    op.execute(
        "CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  RAISE EXCEPTION 'the points ledger is append-only: % refused; correct an entry with a reversing entry', TG_OP\n    USING ERRCODE = 'restrict_violation';\nEND $$"
    )
    op.execute(
        'CREATE TRIGGER ledger_entries_no_update_or_delete BEFORE UPDATE OR DELETE ON ledger_entries\nFOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()'
    )
    op.execute(
        'CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries\nFOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only()'
    )
    op.bulk_insert(_RULE_SETS, [SAMPLE_RULE_SET_V1])


_RULE_SETS = sa.table(
    "rule_sets",
    sa.column("version", sa.Integer()),
    sa.column("description", sa.Text()),
    sa.column("rules", postgresql.JSONB()),
    sa.column("effective_time", sa.DateTime(timezone=True)),
    sa.column("published", sa.Boolean()),
    sa.column("create_actor", sa.Text()),
    sa.column("create_roles", postgresql.ARRAY(sa.Text())),
    sa.column("create_time", sa.DateTime(timezone=True)),
    sa.column("publish_actor", sa.Text()),
    sa.column("publish_roles", postgresql.ARRAY(sa.Text())),
    sa.column("publish_time", sa.DateTime(timezone=True)),
    schema="scoring",
)

# The sample rule set as it was published with the first release (frozen here:
# later changes to services/scoring/sample_rules.py are new rule-set versions).
SAMPLE_RULE_SET_V1 = {'version': 1,
 'description': '执法办案积分示例规则（第1版）：数量、质量、效率三个维度',
 'rules': [{'rule_id': 'QTY-ACCEPT',
            'description': '接单处警一次加1分，每月最多60分',
            'dimension': 'QUANTITY',
            'event_type': 'dispatch.AssignmentChanged',
            'condition': 'assignment.state == "ASSIGNMENT_STATE_ACCEPTED"',
            'points': '1',
            'reason_code': 'JOB_ACCEPTED',
            'explanation_template': '{case_name}接单处警，{points}分',
            'monthly_cap': '60'},
           {'rule_id': 'QTY-REPORT-BACK',
            'description': '完成回告一起加1分',
            'dimension': 'QUANTITY',
            'event_type': 'dispatch.AssignmentChanged',
            'condition': 'assignment.state == "ASSIGNMENT_STATE_REPORTED_BACK"',
            'points': '1',
            'reason_code': 'CASE_REPORTED_BACK',
            'explanation_template': '{case_name}完成回告（处置结果：{derived.outcome}），{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QTY-CASE-OPENED',
            'description': '处警后依法立案（刑事或行政）加2分',
            'dimension': 'QUANTITY',
            'event_type': 'dispatch.AssignmentChanged',
            'condition': 'assignment.state == "ASSIGNMENT_STATE_REPORTED_BACK" && assignment.outcome in '
                         '["OUTCOME_CRIMINAL_CASE", "OUTCOME_ADMINISTRATIVE_CASE"]',
            'points': '2',
            'reason_code': 'CASE_OPENED',
            'explanation_template': '{case_name}处警后立案（{derived.outcome}），{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QTY-PRELIMINARY',
            'description': '派出所对职责不清的12345工单先期处置加1分（记入派出所）',
            'dimension': 'QUANTITY',
            'event_type': 'referral.WorkOrderUpdated',
            'condition': 'work_order.status == "WORK_ORDER_STATUS_PRELIMINARY_POLICE"',
            'points': '1',
            'reason_code': 'PRELIMINARY_HANDLING',
            'explanation_template': '12345工单{work_order.name}由派出所先期处置，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'EFF-ACCEPT-FAST',
            'description': '派警后1分钟内接单加0.5分',
            'dimension': 'EFFICIENCY',
            'event_type': 'dispatch.AssignmentChanged',
            'condition': 'assignment.state == "ASSIGNMENT_STATE_ACCEPTED" && derived.accept_seconds <= 60',
            'points': '0.5',
            'reason_code': 'ACCEPTED_WITHIN_1_MIN',
            'explanation_template': '{case_name}派警后{derived.accept_seconds}秒接单，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'EFF-ARRIVE-ON-TARGET',
            'description': '在网格到场时限（1-3-5分钟圈）内到达现场加1分',
            'dimension': 'EFFICIENCY',
            'event_type': 'dispatch.AssignmentChanged',
            'condition': 'assignment.state == "ASSIGNMENT_STATE_ON_SCENE" && derived.arrive_seconds <= '
                         'derived.arrival_target_seconds',
            'points': '1',
            'reason_code': 'ARRIVED_WITHIN_TARGET',
            'explanation_template': '{case_name}派警后{derived.arrive_seconds}秒到场，未超过{derived.arrival_target_seconds}秒时限，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'EFF-ARRIVE-LATE',
            'description': '超过网格到场时限到达现场扣1分',
            'dimension': 'EFFICIENCY',
            'event_type': 'dispatch.AssignmentChanged',
            'condition': 'assignment.state == "ASSIGNMENT_STATE_ON_SCENE" && derived.arrive_seconds > '
                         'derived.arrival_target_seconds',
            'points': '-1',
            'reason_code': 'ARRIVED_LATE',
            'explanation_template': '{case_name}派警后{derived.arrive_seconds}秒到场，超过{derived.arrival_target_seconds}秒时限，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'EFF-REPORT-BACK-ON-TIME',
            'description': '在时限内回告（清场后30分钟内）加1分',
            'dimension': 'EFFICIENCY',
            'event_type': 'dispatch.AssignmentChanged',
            'condition': 'assignment.state == "ASSIGNMENT_STATE_REPORTED_BACK" && '
                         'derived.report_back_on_time',
            'points': '1',
            'reason_code': 'REPORT_BACK_ON_TIME',
            'explanation_template': '{case_name}按时回告（用时{derived.report_back_minutes}分钟），{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'EFF-REPORT-BACK-LATE',
            'description': '超过时限回告扣2分',
            'dimension': 'EFFICIENCY',
            'event_type': 'dispatch.AssignmentChanged',
            'condition': 'assignment.state == "ASSIGNMENT_STATE_REPORTED_BACK" && '
                         '!derived.report_back_on_time',
            'points': '-2',
            'reason_code': 'REPORT_BACK_LATE',
            'explanation_template': '{case_name}超时回告（用时{derived.report_back_minutes}分钟，时限{derived.report_back_limit_seconds}秒），{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-CASE-SATISFIED',
            'description': '群众回访满意加1分',
            'dimension': 'QUALITY',
            'event_type': 'dispatch.CaseUpdated',
            'condition': 'dispatch_case.satisfaction == "SATISFACTION_SATISFIED"',
            'points': '1',
            'reason_code': 'CITIZEN_SATISFIED',
            'explanation_template': '{dispatch_case.name}群众回访满意，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-CASE-UNSATISFIED',
            'description': '群众回访不满意扣2分',
            'dimension': 'QUALITY',
            'event_type': 'dispatch.CaseUpdated',
            'condition': 'dispatch_case.satisfaction == "SATISFACTION_UNSATISFIED"',
            'points': '-2',
            'reason_code': 'CITIZEN_UNSATISFIED',
            'explanation_template': '{dispatch_case.name}群众回访不满意，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-REPORT-SATISFIED',
            'description': '报警人对接处警满意加0.5分',
            'dimension': 'QUALITY',
            'event_type': 'intake.ReportUpdated',
            'condition': 'report.satisfaction == "SATISFACTION_SATISFIED"',
            'points': '0.5',
            'reason_code': 'REPORTER_SATISFIED',
            'explanation_template': '报警{report.name}报警人评价满意，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-REPORT-UNSATISFIED',
            'description': '报警人对接处警不满意扣1分',
            'dimension': 'QUALITY',
            'event_type': 'intake.ReportUpdated',
            'condition': 'report.satisfaction == "SATISFACTION_UNSATISFIED"',
            'points': '-1',
            'reason_code': 'REPORTER_UNSATISFIED',
            'explanation_template': '报警{report.name}报警人评价不满意，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-EVIDENCE-COMPLETE',
            'description': '法制审核证据齐全加1分',
            'dimension': 'QUALITY',
            'event_type': 'scoring.ReviewCreated',
            'condition': 'review.evidence == "EVIDENCE_VERDICT_COMPLETE"',
            'points': '1',
            'reason_code': 'EVIDENCE_COMPLETE',
            'explanation_template': '{review.case_name}经法制审核证据齐全，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-EVIDENCE-MISSING',
            'description': '法制审核发现证据缺失扣3分',
            'dimension': 'QUALITY',
            'event_type': 'scoring.ReviewCreated',
            'condition': 'review.evidence == "EVIDENCE_VERDICT_MISSING"',
            'points': '-3',
            'reason_code': 'EVIDENCE_MISSING',
            'explanation_template': '{review.case_name}经法制审核证据缺失（{derived.missing_evidence}），{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-PROCEDURE-CORRECT',
            'description': '法制审核程序规范加1分',
            'dimension': 'QUALITY',
            'event_type': 'scoring.ReviewCreated',
            'condition': 'review.procedure == "PROCEDURE_VERDICT_CORRECT"',
            'points': '1',
            'reason_code': 'PROCEDURE_CORRECT',
            'explanation_template': '{review.case_name}经法制审核程序规范，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-PROCEDURE-FLAWED',
            'description': '法制审核发现程序瑕疵扣3分',
            'dimension': 'QUALITY',
            'event_type': 'scoring.ReviewCreated',
            'condition': 'review.procedure == "PROCEDURE_VERDICT_FLAWED"',
            'points': '-3',
            'reason_code': 'PROCEDURE_FLAWED',
            'explanation_template': '{review.case_name}经法制审核程序存在瑕疵（{derived.procedure_flaws}），{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-CLASSIFICATION-CORRECT',
            'description': '法制审核定性准确加0.5分',
            'dimension': 'QUALITY',
            'event_type': 'scoring.ReviewCreated',
            'condition': 'review.classification == "CLASSIFICATION_VERDICT_CORRECT"',
            'points': '0.5',
            'reason_code': 'CLASSIFICATION_CORRECT',
            'explanation_template': '{review.case_name}经法制审核警情定性准确，{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-CLASSIFICATION-WRONG',
            'description': '法制审核发现定性错误扣2分',
            'dimension': 'QUALITY',
            'event_type': 'scoring.ReviewCreated',
            'condition': 'review.classification == "CLASSIFICATION_VERDICT_WRONG"',
            'points': '-2',
            'reason_code': 'CLASSIFICATION_WRONG',
            'explanation_template': '{review.case_name}经法制审核警情定性错误（应为{review.corrected_incident_type}），{points}分',
            'monthly_cap': '0'},
           {'rule_id': 'QUA-OUTCOME-CONTRADICTS',
            'description': '处置结果与警情类型矛盾（如打架斗殴以“未发现问题”结案）扣2分',
            'dimension': 'QUALITY',
            'event_type': 'dispatch.AssignmentChanged',
            'condition': 'assignment.state == "ASSIGNMENT_STATE_REPORTED_BACK" && '
                         'derived.outcome_contradicts_type',
            'points': '-2',
            'reason_code': 'OUTCOME_CONTRADICTS_TYPE',
            'explanation_template': '{case_name}警情类型{derived.incident_type}以{derived.outcome}结案，结果与类型矛盾，{points}分',
            'monthly_cap': '0'}],
 'effective_time': datetime.datetime(2020, 1, 1, 0, 0, tzinfo=datetime.timezone.utc),
 'published': True,
 'create_actor': 'scoring',
 'create_roles': ['service'],
 'create_time': datetime.datetime(2020, 1, 1, 0, 0, tzinfo=datetime.timezone.utc),
 'publish_actor': 'scoring',
 'publish_roles': ['service'],
 'publish_time': datetime.datetime(2020, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)}


def downgrade() -> None:
    raise NotImplementedError("the baseline is not reversible; restore from backup")

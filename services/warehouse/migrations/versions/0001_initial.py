"""Baseline warehouse schema, frozen: the report fact table partitioned by month (BRIN on receive time, a default partition), report keys, pending outcomes, the hourly and cell rollups (by type and of every type), bulk load runs (generated or imported from a CSV file, with the lines skipped), archived month partitions; the runtime's tables.

This revision is explicit DDL of the schema as first released. It never reads
the live models: every later change to a table is a new revision after it.
The month partitions themselves are created ahead by the maintenance job
(services/warehouse/workers.py) and by the bulk load for its months.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from services.runtime.revisions import dead_letters_0003, feed_readers_0004, retention_0002, runtime_tables_0001

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MEASURES = ("reports", "answered", "answered_3s", "handed_off", "handed_off_30s", "arrived",
            "arrived_on_target", "repeats", "rated", "satisfied", "referred", "closed")


def upgrade() -> None:
    runtime_tables_0001("warehouse")
    retention_0002("warehouse")
    dead_letters_0003()
    feed_readers_0004("warehouse")
    op.execute("""
        CREATE TABLE warehouse.report_facts (
            report varchar(80) NOT NULL,
            receive_time timestamptz NOT NULL,
            category varchar(20) NOT NULL DEFAULT '',
            incident_type varchar(40) NOT NULL DEFAULT '',
            priority smallint NOT NULL DEFAULT 0,
            channel varchar(30) NOT NULL DEFAULT '',
            station_id varchar(20) NOT NULL DEFAULT '',
            grid_id varchar(30) NOT NULL DEFAULT '',
            district_id varchar(20) NOT NULL DEFAULT '',
            longitude double precision,
            latitude double precision,
            h3_r7 bigint,
            h3_r8 bigint,
            h3_r9 bigint,
            answer_time timestamptz,
            hand_off_time timestamptz,
            arrival_time timestamptz,
            close_time timestamptz,
            arrival_target_s integer,
            merged boolean NOT NULL DEFAULT false,
            referred boolean NOT NULL DEFAULT false,
            satisfaction varchar(30) NOT NULL DEFAULT '',
            dispatch_case varchar(80) NOT NULL DEFAULT '',
            work_order varchar(80) NOT NULL DEFAULT '',
            update_time timestamptz,
            load_id integer
        ) PARTITION BY RANGE (receive_time)""")
    op.execute("CREATE TABLE warehouse.report_facts_default PARTITION OF warehouse.report_facts DEFAULT")
    # Partitioned indexes: every partition gets its own. BRIN on receive time (rows arrive in time order);
    # a b-tree on the report for the rows the feeds keep (they update a live report's row; report_keys
    # names its receive time, so its partition). Bulk-loaded rows (load_id set) are never updated and
    # stay out of it, so COPY maintains only the BRIN.
    op.execute("CREATE INDEX report_facts_receive_brin ON warehouse.report_facts USING brin (receive_time) "
               "WITH (pages_per_range = 32)")
    op.execute("CREATE INDEX report_facts_live_report ON warehouse.report_facts (report, receive_time) "
               "WHERE load_id IS NULL")
    op.create_table(
        "report_keys",
        sa.Column("report", sa.String(80), nullable=False),
        sa.Column("receive_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("report"),
        schema="warehouse",
    )
    op.create_table(
        "pending_outcomes",
        sa.Column("report", sa.String(80), nullable=False),
        sa.Column("hand_off_time", sa.DateTime(timezone=True)),
        sa.Column("arrival_time", sa.DateTime(timezone=True)),
        sa.Column("close_time", sa.DateTime(timezone=True)),
        sa.Column("arrival_target_s", sa.Integer()),
        sa.Column("referred", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("dispatch_case", sa.String(80), nullable=False, server_default=""),
        sa.Column("work_order", sa.String(80), nullable=False, server_default=""),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("report"),
        schema="warehouse",
    )
    op.create_table(
        "rollup_hourly",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("station_id", sa.String(20), nullable=False),
        sa.Column("incident_type", sa.String(40), nullable=False),
        *[sa.Column(m, sa.BigInteger(), nullable=False, server_default="0") for m in MEASURES],
        sa.PrimaryKeyConstraint("hour", "station_id", "incident_type"),
        schema="warehouse",
    )
    op.create_index("rollup_hourly_station_hour", "rollup_hourly", ["station_id", "hour"], schema="warehouse")
    op.create_table(
        "rollup_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("station_id", sa.String(20), nullable=False),
        sa.Column("incident_type", sa.String(40), nullable=False),
        *[sa.Column(m, sa.BigInteger(), nullable=False, server_default="0") for m in MEASURES],
        sa.PrimaryKeyConstraint("day", "station_id", "incident_type"),
        schema="warehouse",
    )
    op.create_index("rollup_daily_station_day", "rollup_daily", ["station_id", "day"], schema="warehouse")
    for table, period in (("rollup_daily_cell_totals", "day"), ("rollup_monthly_cell_totals", "month")):
        op.create_table(
            table,
            sa.Column(period, sa.Date(), nullable=False),
            sa.Column("cell", sa.BigInteger(), nullable=False),
            sa.Column("station_id", sa.String(20), nullable=False),
            sa.Column("longitude", sa.Float(), nullable=False),
            sa.Column("latitude", sa.Float(), nullable=False),
            sa.Column("reports", sa.BigInteger(), nullable=False, server_default="0"),
            sa.PrimaryKeyConstraint(period, "cell", "station_id"),
            schema="warehouse",
        )
    for table, period in (("rollup_daily_cells", "day"), ("rollup_monthly_cells", "month")):
        op.create_table(
            table,
            sa.Column(period, sa.Date(), nullable=False),
            sa.Column("cell", sa.BigInteger(), nullable=False),
            sa.Column("station_id", sa.String(20), nullable=False),
            sa.Column("incident_type", sa.String(40), nullable=False),
            sa.Column("longitude", sa.Float(), nullable=False),
            sa.Column("latitude", sa.Float(), nullable=False),
            sa.Column("reports", sa.BigInteger(), nullable=False, server_default="0"),
            sa.PrimaryKeyConstraint(period, "cell", "station_id", "incident_type"),
            schema="warehouse",
        )
    op.create_table(
        "load_runs",
        sa.Column("load_id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("reports", sa.BigInteger(), nullable=False),
        sa.Column("years", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("batches_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rows_loaded", sa.BigInteger(), nullable=False, server_default="0"),
        # An import's file (path and SHA-256, so a resume reads the same file); NULL for a generated history.
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("source_sha256", sa.String(length=64), nullable=True),
        sa.Column("rows_skipped", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("state", sa.String(20), nullable=False, server_default="LOADING"),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("load_id"),
        schema="warehouse",
    )
    # Retention: month partitions written to archive files and dropped (the rollups keep counting them).
    op.create_table(
        "archived_partitions",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("archive_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reattach_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name="archived_partitions_pkey"),
        schema="warehouse",
    )


def downgrade() -> None:
    for table in ("archived_partitions", "load_runs", "rollup_monthly_cell_totals", "rollup_daily_cell_totals", "rollup_monthly_cells",
                  "rollup_daily_cells", "rollup_daily", "rollup_hourly", "pending_outcomes",
                  "report_keys", "report_facts"):
        op.drop_table(table, schema="warehouse")

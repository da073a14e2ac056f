"""Unit history and append-only audit trails (全程留痕).

- unit_history: every status and position a unit had, written by the database itself (trigger
  units_record_history on insert or change of units), so no code path can forget it; the
  current units are its first rows.
- case_timeline, unit_timeline and unit_history refuse UPDATE, DELETE and TRUNCATE.

Expand only: a new table and triggers. The previous release's updates of units keep working and
are recorded too.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

from services.runtime.revisions import append_only_0005, append_only_0005_down

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("case_timeline", "unit_timeline", "unit_history")


def upgrade() -> None:
    op.create_table(
        "unit_history",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("unit_id", sa.String(length=30), nullable=False),
        sa.Column("recorded_time", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("position_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("position_accuracy_m", sa.Float(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("seq", name="unit_history_pkey"),
        schema="dispatch",
    )
    op.create_index("unit_history_unit_seq", "unit_history", ["unit_id", "seq"], schema="dispatch")
    op.execute(
        "CREATE FUNCTION units_record_history() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status OR NEW.lon IS DISTINCT FROM OLD.lon\n"
        "     OR NEW.lat IS DISTINCT FROM OLD.lat OR NEW.position_time IS DISTINCT FROM OLD.position_time THEN\n"
        # In the schema of the units table, whatever the session's search_path.
        "    EXECUTE format('INSERT INTO %I.unit_history (unit_id, status, lon, lat, position_time, '\n"
        "                   'position_accuracy_m) VALUES ($1, $2, $3, $4, $5, $6)', TG_TABLE_SCHEMA)\n"
        "      USING NEW.unit_id, NEW.status, NEW.lon, NEW.lat, NEW.position_time, NEW.position_accuracy_m;\n"
        "  END IF;\n"
        "  RETURN NEW;\n"
        "END $$")
    op.execute("CREATE TRIGGER units_history AFTER INSERT OR UPDATE ON units "
               "FOR EACH ROW EXECUTE FUNCTION units_record_history()")
    op.execute("INSERT INTO unit_history (unit_id, status, lon, lat, position_time, position_accuracy_m) "
               "SELECT unit_id, status, lon, lat, position_time, position_accuracy_m FROM units ORDER BY unit_id")
    append_only_0005(*TABLES)


def downgrade() -> None:
    append_only_0005_down(*TABLES)
    op.execute("DROP TRIGGER IF EXISTS units_history ON units")
    op.execute("DROP FUNCTION IF EXISTS units_record_history()")
    op.drop_index("unit_history_unit_seq", table_name="unit_history", schema="dispatch")
    op.drop_table("unit_history", schema="dispatch")

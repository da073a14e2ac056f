"""Retention: the retention_marks table (how far the outbox was pruned) and an index on the inbox's process time.

Expand only: a new table and a new index, which the previous release ignores.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_marks",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        schema="alerts",
    )
    op.create_index("inbox_process_time", "inbox", ["process_time"], unique=False, schema="alerts")


def downgrade() -> None:
    op.drop_index("inbox_process_time", table_name="inbox", schema="alerts")
    op.drop_table("retention_marks", schema="alerts")

"""Retention and archive: archived_partitions, the month partitions of the fact table written to
archive files and dropped after WAREHOUSE_RETENTION_MONTHS (the rollups keep counting them), with the
file, its row count and SHA-256, and when a partition was attached again.

Expand only: a new table, which the previous release ignores.

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
    op.drop_table("archived_partitions", schema="warehouse")

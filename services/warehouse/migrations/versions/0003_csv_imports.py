"""CSV imports through the bulk load: load_runs records the imported file (its path and SHA-256, so a
resume reads the same file) and how many lines were skipped as bad.

Expand only: nullable columns and one with a default, which the previous release ignores; every existing
load keeps its row (a generated history: no source, nothing skipped).

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("load_runs", sa.Column("source", sa.Text(), nullable=True), schema="warehouse")
    op.add_column("load_runs", sa.Column("source_sha256", sa.String(length=64), nullable=True), schema="warehouse")
    op.add_column("load_runs", sa.Column("rows_skipped", sa.BigInteger(), nullable=False, server_default="0"),
                  schema="warehouse")


def downgrade() -> None:
    for column in ("rows_skipped", "source_sha256", "source"):
        op.drop_column("load_runs", column, schema="warehouse")

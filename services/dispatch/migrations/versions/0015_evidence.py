"""evidence: the files an officer uploads for a report-back (现场证据: JPEG or PNG, at most 5 MB), the
bytes in the row, under the case and assignment; ReportBack records their metadata as before.

Expand only: a new table, which the previous release ignores; existing assignments keep the
evidence metadata they have.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("case_id", sa.String(40), sa.ForeignKey("dispatch.cases.id"), nullable=False),
        sa.Column("assignment_id", sa.String(40), nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.Text, server_default="", nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("uploaded_by", sa.Text, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        schema="dispatch",
    )
    op.create_index("evidence_assignment", "evidence", ["case_id", "assignment_id"], schema="dispatch")


def downgrade() -> None:
    op.drop_index("evidence_assignment", table_name="evidence", schema="dispatch")
    op.drop_table("evidence", schema="dispatch")

"""Closing and cancelling (办结、撤销), and cases nobody takes: cases.outcome (how the command closed
it), cases.cancel_reason (why it cancelled it), cases.close_notes, and cases.offers_exhausted_time
(when automatic offers stopped because nobody took the case), with a partial index for the
sweeper that raises such cases to district command.

Expand only: defaulted or nullable columns and an index, which the previous release ignores.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("outcome", sa.String(length=30), server_default="", nullable=False),
                  schema="dispatch")
    op.add_column("cases", sa.Column("cancel_reason", sa.String(length=30), server_default="", nullable=False),
                  schema="dispatch")
    op.add_column("cases", sa.Column("close_notes", sa.Text(), server_default="", nullable=False), schema="dispatch")
    op.add_column("cases", sa.Column("offers_exhausted_time", sa.DateTime(timezone=True), nullable=True),
                  schema="dispatch")
    op.create_index("cases_unanswered", "cases", ["offers_exhausted_time"], schema="dispatch",
                    postgresql_where=sa.text("offers_exhausted_time IS NOT NULL AND accept_time IS NULL"))


def downgrade() -> None:
    op.drop_index("cases_unanswered", table_name="cases", schema="dispatch")
    for column in ("offers_exhausted_time", "close_notes", "cancel_reason", "outcome"):
        op.drop_column("cases", column, schema="dispatch")

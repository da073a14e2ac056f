"""Follow-up closes the loop (回访不满意复核): the station chief's review of an unsatisfied follow-up on
case_followups (review_state OPEN, REOPENED or ANSWERED, who, when, the written answer), and
cases.reopen_time (when a review handed the case back for handling).

Expand only: defaulted or nullable columns, which the previous release ignores. Unsatisfied
follow-ups recorded before the upgrade wait for review (OPEN).

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("case_followups", sa.Column("review_state", sa.String(length=20), server_default="",
                                              nullable=False), schema="dispatch")
    op.add_column("case_followups", sa.Column("reviewed_by", sa.Text(), server_default="", nullable=False),
                  schema="dispatch")
    op.add_column("case_followups", sa.Column("review_time", sa.DateTime(timezone=True), nullable=True),
                  schema="dispatch")
    op.add_column("case_followups", sa.Column("review_answer", sa.Text(), server_default="", nullable=False),
                  schema="dispatch")
    op.execute("UPDATE dispatch.case_followups SET review_state = 'OPEN' WHERE flagged")
    op.add_column("cases", sa.Column("reopen_time", sa.DateTime(timezone=True), nullable=True), schema="dispatch")


def downgrade() -> None:
    op.drop_column("cases", "reopen_time", schema="dispatch")
    for column in ("review_answer", "review_time", "reviewed_by", "review_state"):
        op.drop_column("case_followups", column, schema="dispatch")

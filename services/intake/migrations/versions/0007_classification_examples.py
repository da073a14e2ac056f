"""Classification learns from call-takers: each report records the classifier version that
classified it, its confidence and whether it waits for the call-taker's confirmation; every
correction of a report's category, type or priority is kept as a labelled example for the next
training (classification_examples).

Expand only: new nullable or defaulted columns and a new table, which the previous release ignores.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reports", sa.Column("classifier_version", sa.String(length=60), server_default="",
                                       nullable=False), schema="intake")
    op.add_column("reports", sa.Column("classification_confidence", sa.Float(), nullable=True), schema="intake")
    op.add_column("reports", sa.Column("needs_confirmation", sa.Boolean(), server_default="false",
                                       nullable=False), schema="intake")
    op.create_table(
        "classification_examples",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("report_id", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("incident_type", sa.String(length=40), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("previous_category", sa.String(length=20), nullable=False),
        sa.Column("previous_type", sa.String(length=40), nullable=False),
        sa.Column("previous_priority", sa.Integer(), nullable=False),
        sa.Column("classifier_version", sa.String(length=60), server_default="", nullable=False),
        sa.Column("corrected_by", sa.Text(), server_default="", nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        schema="intake",
    )
    op.create_index("classification_examples_report", "classification_examples", ["report_id", "seq"],
                    schema="intake")


def downgrade() -> None:
    op.drop_index("classification_examples_report", table_name="classification_examples", schema="intake")
    op.drop_table("classification_examples", schema="intake")
    op.drop_column("reports", "needs_confirmation", schema="intake")
    op.drop_column("reports", "classification_confidence", schema="intake")
    op.drop_column("reports", "classifier_version", schema="intake")

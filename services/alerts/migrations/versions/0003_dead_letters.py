"""Dead letters: events the feed consumers parked (runtime table, see services/runtime/consumer.py).

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("source", sa.String(60), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="parked"),
        sa.Column("park_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("resolve_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolve_reason", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(120), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="dead_letters_pkey"),
    )
    op.create_index("dead_letters_source_subject_idx", "dead_letters", ["source", "subject", "status", "sequence"])


def downgrade() -> None:
    op.drop_index("dead_letters_source_subject_idx", table_name="dead_letters")
    op.drop_table("dead_letters")

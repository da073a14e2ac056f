"""Stop-payment lease: which sender has a hand-off in hand (claimed_by) and until when (lease_until), so the
partner call runs outside any transaction and only one replica sends a hand-off at a time.

Expand only: two nullable columns, which the previous release ignores. While both releases run, an old
sender (row lock held during its call) does not see leases and may send a hand-off a new sender has in
hand; the centre deduplicates on the idempotency key, as it does for any resend.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("stop_payments", sa.Column("claimed_by", sa.String(length=120), nullable=True), schema="dispatch")
    op.add_column("stop_payments", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
                  schema="dispatch")


def downgrade() -> None:
    op.drop_column("stop_payments", "lease_until", schema="dispatch")
    op.drop_column("stop_payments", "claimed_by", schema="dispatch")

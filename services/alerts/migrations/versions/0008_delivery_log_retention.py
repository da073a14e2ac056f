"""The delivery log's retention: an index on alert_deliveries.create_time over settled deliveries
(not PENDING), which the retention job reads oldest first to delete those of resolved alerts older
than ALERT_DELIVERY_RETENTION_DAYS.

Expand only: an index, which the previous release ignores.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("alert_deliveries_settled", "alert_deliveries", ["create_time"], schema="alerts",
                    postgresql_where=sa.text("state <> 'PENDING'"))


def downgrade() -> None:
    op.drop_index("alert_deliveries_settled", table_name="alert_deliveries", schema="alerts")

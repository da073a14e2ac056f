"""Border cases shared with the neighbouring station (边界警情): alerts.shared_station_ids, the stations
across the line named on the report an alert is about, which see the alert as their own (lists,
the alert itself, Subscribe), with a GIN index for the lists.

Expand only: a defaulted column and an index, which the previous release ignores.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("shared_station_ids", postgresql.ARRAY(sa.Text()), server_default="{}",
                                      nullable=False), schema="alerts")
    op.create_index("alerts_shared_stations", "alerts", ["shared_station_ids"], schema="alerts",
                    postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("alerts_shared_stations", table_name="alerts", schema="alerts")
    op.drop_column("alerts", "shared_station_ids", schema="alerts")

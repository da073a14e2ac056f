"""Border cases shared with the neighbouring station (边界警情): reports.shared_station_ids, the other
stations whose jurisdiction lies within the border tolerance of the report's point, with a GIN
index for the lists that include them.

Expand only: a defaulted column and an index, which the previous release ignores. Reports located
before the upgrade keep an empty list (their point is not located again).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reports", sa.Column("shared_station_ids", postgresql.ARRAY(sa.Text()), server_default="{}",
                                       nullable=False), schema="intake")
    op.create_index("reports_shared_stations", "reports", ["shared_station_ids"], schema="intake",
                    postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("reports_shared_stations", table_name="reports", schema="intake")
    op.drop_column("reports", "shared_station_ids", schema="intake")

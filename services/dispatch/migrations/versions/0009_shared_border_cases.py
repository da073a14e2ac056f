"""Border cases shared with the neighbouring station (边界警情): cases.shared_station_ids, the stations
across the line named by intake's report, which see the case as their own, with a GIN index for the
lists and the situation view that include them.

Expand only: a defaulted column and an index, which the previous release ignores (its inserts get
an empty list).

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
    op.add_column("cases", sa.Column("shared_station_ids", postgresql.ARRAY(sa.Text()), server_default="{}",
                                     nullable=False), schema="dispatch")
    op.create_index("cases_shared_stations", "cases", ["shared_station_ids"], schema="dispatch",
                    postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("cases_shared_stations", table_name="cases", schema="dispatch")
    op.drop_column("cases", "shared_station_ids", schema="dispatch")

"""Grid officers (网格责任民警): units.grid_ids, the grids a community officer is responsible for, with
a GIN index for finding a grid's officer. The seed fills it for the sample city's units.

Expand only: a defaulted column and an index, which the previous release ignores.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("units", sa.Column("grid_ids", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
                  schema="dispatch")
    op.create_index("units_grids", "units", ["grid_ids"], schema="dispatch", postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("units_grids", table_name="units", schema="dispatch")
    op.drop_column("units", "grid_ids", schema="dispatch")

"""Personal data views (个人信息查看留痕): who saw a caller's phone number or name unmasked, when,
in which report, through which RPC. Append-only.

Expand only: a new table, which the previous release ignores.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.runtime.revisions import append_only_0005, append_only_0005_down

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personal_data_views",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("report_id", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("station_id", sa.String(length=20), server_default="", nullable=False),
        sa.Column("view_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=60), nullable=False),
        sa.Column("fields", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("seq", name="personal_data_views_pkey"),
        schema="intake",
    )
    op.create_index("personal_data_views_report", "personal_data_views", ["report_id", "seq"], schema="intake")
    op.create_index("personal_data_views_actor", "personal_data_views", ["actor", "view_time"], schema="intake")
    append_only_0005("personal_data_views")


def downgrade() -> None:
    append_only_0005_down("personal_data_views", drop_function=False)
    op.drop_index("personal_data_views_actor", table_name="personal_data_views", schema="intake")
    op.drop_index("personal_data_views_report", table_name="personal_data_views", schema="intake")
    op.drop_table("personal_data_views", schema="intake")

"""Open311 service attributes: work_orders.service_attributes, the answers to a service definition's
attributes posted with a request (`attribute[cover_state]=missing`), for the departments to read.

Expand only: a defaulted column, which the previous release ignores; existing orders have none.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("work_orders", sa.Column("service_attributes", postgresql.JSONB(astext_type=sa.Text()),
                                           server_default="[]", nullable=False), schema="referral")


def downgrade() -> None:
    op.drop_column("work_orders", "service_attributes", schema="referral")

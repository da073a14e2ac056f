"""Personal data views say why (个人信息查看留痕): a service reading a caller's contact through
GetCallerContact names its purpose (e.g. STOP_PAYMENT, WORK_ORDER) and what it reads it for
(e.g. a stop-payment hand-off's name); both are kept with the view. A person's view keeps them
empty.

Expand only: two defaulted columns, which the previous release ignores.

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
    op.add_column("personal_data_views", sa.Column("purpose", sa.String(length=40), server_default="",
                                                   nullable=False), schema="intake")
    op.add_column("personal_data_views", sa.Column("reference", sa.Text(), server_default="", nullable=False),
                  schema="intake")


def downgrade() -> None:
    op.drop_column("personal_data_views", "reference", schema="intake")
    op.drop_column("personal_data_views", "purpose", schema="intake")

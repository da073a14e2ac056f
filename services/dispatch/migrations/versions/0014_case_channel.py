"""cases.channel: the channel of the report a case comes from (PHONE, SMS, ... HOTLINE_12345 for a
12345 order handled first by the police), so the SLA figures of the accept, arrive and close stages
can be split by channel as intake's answer time is.

Expand only: a new column with a default (existing cases get "", an unknown channel), which the
previous release ignores; its inserts get "" too.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("channel", sa.String(30), server_default="", nullable=False),
                  schema="dispatch")


def downgrade() -> None:
    op.drop_column("cases", "channel", schema="dispatch")

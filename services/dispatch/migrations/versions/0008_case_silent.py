"""Silent alarms (无声报警) reach the officers: cases.silent says the case comes from a caller who
cannot speak, so nobody calls back by voice and the police approach quietly.

Expand only: a new column with a default (existing cases get false), which the previous release
ignores; its inserts get false too.

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
    op.add_column("cases", sa.Column("silent", sa.Boolean(), server_default="false", nullable=False),
                  schema="dispatch")


def downgrade() -> None:
    op.drop_column("cases", "silent", schema="dispatch")

"""Deliveries to notification receivers (webhooks, SMS) with their delivery log.

Expand only: a new table, which the previous release ignores.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "alerts"


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("alert_id", sa.String(40), sa.ForeignKey(f"{SCHEMA}.alerts.id"), nullable=False),
        sa.Column("receiver", sa.String(60), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True)),
        sa.Column("last_attempt_time", sa.DateTime(timezone=True)),
        sa.Column("delivered_time", sa.DateTime(timezone=True)),
        sa.Column("remote_id", sa.Text(), nullable=False, server_default=""),
        sa.Column("inhibited_by", sa.String(60), nullable=False, server_default=""),
        sa.Column("claimed_by", sa.Text()),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index("ix_alerts_alert_deliveries_alert_id", "alert_deliveries", ["alert_id"], schema=SCHEMA)
    op.create_index("alert_deliveries_due", "alert_deliveries", ["next_attempt_time"], schema=SCHEMA,
                    postgresql_where=sa.text("state = 'PENDING'"))
    op.create_index("alert_deliveries_target", "alert_deliveries", ["kind", "target", "create_time"], schema=SCHEMA)
    op.create_index("alert_deliveries_inhibited", "alert_deliveries", ["inhibited_by"], schema=SCHEMA,
                    postgresql_where=sa.text("state = 'INHIBITED'"))


def downgrade() -> None:
    op.drop_table("alert_deliveries", schema=SCHEMA)

"""Citizens' updates posted through Open311 (servicerequestupdates, 市民补充说明): citizen_updates, one
row per app and app update id (a repeat is the same update), with the timeline entry it made and the
sender's contact. The contact is personal data and is kept here, not on the append-only timeline, so
it can be erased once the order has been closed for OPEN311_UPDATE_CONTACT_DAYS.

Expand only: a new table, which the previous release ignores.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizen_updates",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("work_order_id", sa.String(length=40), nullable=False),
        sa.Column("client", sa.String(length=16), nullable=False),
        sa.Column("client_update_id", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("timeline_seq", sa.BigInteger(), nullable=False),
        sa.Column("order_status", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("client_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_name", sa.Text(), server_default="", nullable=False),
        sa.Column("last_name", sa.Text(), server_default="", nullable=False),
        sa.Column("email", sa.Text(), server_default="", nullable=False),
        sa.Column("phone", sa.String(length=30), server_default="", nullable=False),
        sa.Column("media_url", sa.Text(), server_default="", nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_erase_time", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["work_order_id"], ["referral.work_orders.id"],
                                name="citizen_updates_work_order_id_fkey"),
        sa.PrimaryKeyConstraint("seq", name="citizen_updates_pkey"),
        sa.UniqueConstraint("client", "client_update_id", name="citizen_updates_client_update_id"),
        sa.UniqueConstraint("timeline_seq", name="citizen_updates_timeline_seq_key"),
        schema="referral",
    )
    op.create_index("ix_referral_citizen_updates_work_order_id", "citizen_updates", ["work_order_id"],
                    schema="referral")


def downgrade() -> None:
    op.drop_index("ix_referral_citizen_updates_work_order_id", table_name="citizen_updates", schema="referral")
    op.drop_table("citizen_updates", schema="referral")

"""Access grants bound to a case (权随案走): access_grants, one row per request, with its decision,
uses and end (each also an entry on the case's timeline).

Expand only: a new table, which the previous release ignores.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_grants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("case_station_id", sa.String(length=20), nullable=False),
        sa.Column("incident_type", sa.String(length=40), nullable=False),
        sa.Column("case_level", sa.String(length=20), nullable=False),
        sa.Column("grantee", sa.Text(), nullable=False),
        sa.Column("grantee_station_id", sa.String(length=20), nullable=False),
        sa.Column("grantee_roles", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("scope", sa.String(length=30), nullable=False),
        sa.Column("station_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("request_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("auto_granted", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("decided_by", sa.Text(), server_default="", nullable=False),
        sa.Column("decision_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("grant_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_use_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["dispatch.cases.id"], name="access_grants_case_id_fkey"),
        sa.PrimaryKeyConstraint("id", name="access_grants_pkey"),
        schema="dispatch",
    )
    op.create_index("access_grants_case", "access_grants", ["case_id"], schema="dispatch")
    op.create_index("access_grants_grantee_open", "access_grants", ["grantee"], schema="dispatch",
                    postgresql_where=sa.text("state IN ('PENDING', 'ACTIVE')"))
    op.create_index("access_grants_station_time", "access_grants", ["grantee_station_id", "request_time"],
                    schema="dispatch")
    op.create_index("access_grants_request_time", "access_grants", ["request_time", "id"], schema="dispatch")


def downgrade() -> None:
    op.drop_table("access_grants", schema="dispatch")

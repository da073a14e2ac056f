"""Retention: the retention_marks table (how far the outbox was pruned) and an index on the inbox's process time.

Expand only: a new table and a new index, which the previous release ignores.

Revision ID: 0002
Revises: 0001
"""
from services.runtime.revisions import retention_0002, retention_0002_down

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    retention_0002("scoring")


def downgrade() -> None:
    retention_0002_down("scoring")

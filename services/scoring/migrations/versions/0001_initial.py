"""Initial scoring schema: outbox, idempotency, feed cursors.

Revision ID: 0001
Revises:
"""
from services.scoring.store import TABLES, metadata
from services.runtime.migrate import create_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(metadata, TABLES)


def downgrade() -> None:
    raise NotImplementedError("the first migration is not reversible; restore from backup")

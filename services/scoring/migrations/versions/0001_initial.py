"""Initial scoring schema: rule sets, facts, the append-only ledger, cases,
obligations, reviews, warnings, and the runtime's outbox, idempotency and
feed tables; the sample rule set version 1.

Revision ID: 0001
Revises:
"""
from alembic import op

from services.scoring.sample_rules import SAMPLE_RULE_SET
from services.scoring.store import APPEND_ONLY_SQL, TABLES, metadata, rule_set_values, rule_sets
from services.runtime.migrate import create_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tables(metadata, TABLES)
    for statement in APPEND_ONLY_SQL:
        op.execute(statement)
    op.get_bind().execute(rule_sets.insert().values(**rule_set_values(SAMPLE_RULE_SET)))


def downgrade() -> None:
    raise NotImplementedError("the first migration is not reversible; restore from backup")

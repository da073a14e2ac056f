"""Append-only audit trail (全程留痕): the database refuses UPDATE, DELETE and TRUNCATE on alert_timeline.

No table or column changes: the previous release only ever inserted into these tables.

Revision ID: 0005
Revises: 0004
"""
from services.runtime.revisions import append_only_0005, append_only_0005_down

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("alert_timeline",)


def upgrade() -> None:
    append_only_0005(*TABLES)


def downgrade() -> None:
    append_only_0005_down(*TABLES)

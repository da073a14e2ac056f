"""Dead letters: events the feed consumers parked (runtime table, see services/runtime/consumer.py).

Revision ID: 0003
Revises: 0002
"""
from services.runtime.revisions import dead_letters_0003, dead_letters_0003_down

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dead_letters_0003()


def downgrade() -> None:
    dead_letters_0003_down()

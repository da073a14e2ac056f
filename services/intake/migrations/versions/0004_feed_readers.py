"""Feed readers: how far each consuming service has read the feed (retention keeps what one has not passed);
who resolved a parked event with which roles (dead_letters.resolved_roles).

Expand only: a new table and a nullable column, which the previous release ignores.

Revision ID: 0004
Revises: 0003
"""
from services.runtime.revisions import feed_readers_0004, feed_readers_0004_down

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    feed_readers_0004("intake")


def downgrade() -> None:
    feed_readers_0004_down("intake")

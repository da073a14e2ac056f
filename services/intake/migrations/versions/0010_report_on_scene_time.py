"""When the first officer of a report's case arrived on scene (到达现场): reports.on_scene_time.

Expand only: a nullable column, which the previous release ignores. Reports whose officers arrived
before the upgrade keep it empty. Statuses are left as they are: a report dispatched before the
upgrade keeps DISPATCHED even if no officer had accepted yet (ASSIGNING is set from now on).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reports", sa.Column("on_scene_time", sa.DateTime(timezone=True), nullable=True), schema="intake")


def downgrade() -> None:
    op.drop_column("reports", "on_scene_time", schema="intake")

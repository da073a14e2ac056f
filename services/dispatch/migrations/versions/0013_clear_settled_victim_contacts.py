"""Callers' contacts leave dispatch (个人信息最小化): the victim's name and phone kept on stop-payment
hand-offs the anti-fraud centre has settled are cleared. Dispatch no longer stores them (its sender
reads the contact from intake just before a delivery, recorded there); a settled hand-off is never
delivered again, so nothing needs them.

Hand-offs still under way keep theirs until they settle: the previous release, still running
during a rollout, delivers from the stored columns. No column is dropped (a later contract step,
once no release reads them). Irreversible by design: the cleared values are not restored.

Revision ID: 0013
Revises: 0012
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SETTLED = ("FROZEN", "PARTIALLY_FROZEN", "NOT_FROZEN", "REJECTED", "UNDELIVERABLE")


def upgrade() -> None:
    states = ", ".join(f"'{s}'" for s in SETTLED)
    op.execute(f"UPDATE dispatch.stop_payments SET victim_name = '', victim_phone = '' "
               f"WHERE state IN ({states}) AND (victim_name <> '' OR victim_phone <> '')")


def downgrade() -> None:
    pass  # the contacts are gone on purpose

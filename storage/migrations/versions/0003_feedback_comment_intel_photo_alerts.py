"""feedback comment, intel photo, alert indexes

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_rule_open_key", ["rule", "open_key"], unique=False)
        batch_op.create_index("ix_alerts_status_notified", ["status", "notified_at"], unique=False)

    with op.batch_alter_table("competitor_intel", schema=None) as batch_op:
        batch_op.add_column(sa.Column("photo_path", sa.String(length=256), nullable=True))

    with op.batch_alter_table("customer_feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("comment", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("customer_feedback", schema=None) as batch_op:
        batch_op.drop_column("comment")

    with op.batch_alter_table("competitor_intel", schema=None) as batch_op:
        batch_op.drop_column("photo_path")

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_status_notified")
        batch_op.drop_index("ix_alerts_rule_open_key")

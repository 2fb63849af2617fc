"""pipeline crossing stages (阶段穿越率), covering touch indexes for the process metrics

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The shipped templates name their crossing stages; existing installations get them too.
_TEMPLATE_CROSSINGS = {
    "b2b": ("初步沟通", "方案报价"),
    "hospital": ("获取科室使用意向书", "招标文件获取"),
    "store": ("到店/咨询", "报价"),
}


def upgrade() -> None:
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crossing_from", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("crossing_to", sa.String(length=64), nullable=True))
    pipelines = sa.table(
        "pipelines", sa.column("key", sa.String), sa.column("crossing_from", sa.String), sa.column("crossing_to", sa.String)
    )
    with op.batch_alter_table("touches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_touches_customer_cover", ["customer_id", "occurred_at", "undone_at", "channel", "next_due"], unique=False
        )
        batch_op.create_index("ix_touches_due_cover", ["next_due", "customer_id", "occurred_at", "undone_at"], unique=False)
    for key, (first, second) in _TEMPLATE_CROSSINGS.items():
        op.execute(
            pipelines.update().where(pipelines.c.key == key).values(crossing_from=first, crossing_to=second)
        )


def downgrade() -> None:
    with op.batch_alter_table("touches", schema=None) as batch_op:
        batch_op.drop_index("ix_touches_due_cover")
        batch_op.drop_index("ix_touches_customer_cover")
    with op.batch_alter_table("pipelines", schema=None) as batch_op:
        batch_op.drop_column("crossing_to")
        batch_op.drop_column("crossing_from")

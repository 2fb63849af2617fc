"""customer_owners: who owned a customer from when, so the metrics use the owner at their as-of

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_owners",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_customer_owners_customer_id_customers"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["members.id"], name=op.f("fk_customer_owners_owner_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_owners")),
    )
    with op.batch_alter_table("customer_owners", schema=None) as batch_op:
        batch_op.create_index("ix_customer_owners_customer_since", ["customer_id", "since"], unique=False)
    # Every existing customer has had its current owner since it was created (nothing older is known).
    op.execute("INSERT INTO customer_owners (customer_id, owner_id, since) SELECT id, owner_id, created_at FROM customers")


def downgrade() -> None:
    with op.batch_alter_table("customer_owners", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_owners_customer_since")
    op.drop_table("customer_owners")

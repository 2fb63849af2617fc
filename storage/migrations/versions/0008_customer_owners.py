"""customer_owners and member_teams: who owned a customer and which team a member was in, from when,
so the metrics use the owner and team at their as-of

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
        batch_op.create_index("ix_customer_owners_since", ["since"], unique=False)
    # Every existing customer has had its current owner since it was created (nothing older is known).
    op.execute("INSERT INTO customer_owners (customer_id, owner_id, since) SELECT id, owner_id, created_at FROM customers")
    op.create_table(
        "member_teams",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_member_teams_member_id_members"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_member_teams_team_id_teams"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_teams")),
    )
    with op.batch_alter_table("member_teams", schema=None) as batch_op:
        batch_op.create_index("ix_member_teams_member_since", ["member_id", "since"], unique=False)
    op.execute("INSERT INTO member_teams (member_id, team_id, since) SELECT id, team_id, created_at FROM members")


def downgrade() -> None:
    with op.batch_alter_table("member_teams", schema=None) as batch_op:
        batch_op.drop_index("ix_member_teams_member_since")
    op.drop_table("member_teams")
    with op.batch_alter_table("customer_owners", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_owners_since")
        batch_op.drop_index("ix_customer_owners_customer_since")
    op.drop_table("customer_owners")

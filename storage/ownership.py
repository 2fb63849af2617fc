"""Who owned a customer from when (``customer_owners``): written wherever an owner changes.

``record_owner_change`` is called in the same transaction as the change and *before* it: a
customer's first change also records the owner it had until then (from its creation), so that
owner is known for any earlier instant. ``storage.metrics`` reads the rows to count each customer
for its owner at the as-of instant.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Select, exists, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Customer, CustomerOwner, Timestamp


async def record_owner_change(
    session: AsyncSession, customers: Select[Any], owner_id: int, *, now: dt.datetime
) -> None:
    """The customers whose ids ``customers`` selects belong to ``owner_id`` from ``now`` on.

    Two INSERT … SELECT statements, however many customers move.
    """
    ids = customers.correlate(None)  # its own FROM, even when it selects from customers too
    columns = ["customer_id", "owner_id", "since"]
    first = select(Customer.id, Customer.owner_id, Customer.created_at).where(
        Customer.id.in_(ids), ~exists().where(CustomerOwner.customer_id == Customer.id)
    )
    await session.execute(insert(CustomerOwner).from_select(columns, first))
    moved = select(Customer.id, literal(owner_id, BigInteger()), literal(now, Timestamp())).where(
        Customer.id.in_(ids), Customer.owner_id != owner_id
    )
    await session.execute(insert(CustomerOwner).from_select(columns, moved))


async def record_new_owner(session: AsyncSession, customer_id: int, owner_id: int, *, now: dt.datetime) -> None:
    """One customer belongs to ``owner_id`` from ``now`` on (call before changing ``owner_id``)."""
    await record_owner_change(session, select(Customer.id).where(Customer.id == customer_id), owner_id, now=now)

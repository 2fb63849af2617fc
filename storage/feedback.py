"""客户声音: customer feedback records, the customers they name, and the flags they set."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import dialect_insert, rowcount
from storage.models import Customer, CustomerFeedback


async def customers_named(session: AsyncSession, name: str) -> list[Customer]:
    """Customers whose name is exactly ``name`` (names are unique per owner, not across the org)."""
    return list(await session.scalars(select(Customer).where(Customer.name == name.strip()).order_by(Customer.id)))


async def record_feedback(
    session: AsyncSession,
    *,
    customer_id: int,
    source: str,
    external_id: str,
    options: list[str],
    now: dt.datetime,
    comment: str = "",
) -> CustomerFeedback | None:
    """Store a feedback once per (source, external id); None when it was stored before."""
    insert = dialect_insert(session)
    result = await session.execute(
        insert(CustomerFeedback)
        .values(
            customer_id=customer_id, source=source, external_id=external_id[:128], options=options, actions=[],
            comment=comment[:4000], received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
    )
    if rowcount(result) != 1:
        return None
    return await session.scalar(
        select(CustomerFeedback).where(
            CustomerFeedback.source == source, CustomerFeedback.external_id == external_id[:128]
        )
    )


async def set_actions(session: AsyncSession, feedback: CustomerFeedback, actions: list[dict[str, Any]]) -> None:
    """What the feedback triggered (packs pushed, flags set), kept with it for later review."""
    feedback.actions = actions
    await session.flush()


async def add_flag(session: AsyncSession, customer: Customer, flag: str) -> bool:
    """Mark the customer (e.g. 下次拜访必演示); False when the mark was already there."""
    flags = list(customer.flags or [])
    if flag in flags:
        return False
    customer.flags = [*flags, flag]
    await session.flush()
    return True


async def feedback_since(session: AsyncSession, since: dt.datetime) -> list[CustomerFeedback]:
    """Feedback received at or after ``since``, oldest first (for reports)."""
    return list(
        await session.scalars(
            select(CustomerFeedback)
            .where(CustomerFeedback.received_at >= since)
            .order_by(CustomerFeedback.received_at, CustomerFeedback.id)
        )
    )

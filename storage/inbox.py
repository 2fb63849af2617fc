"""Inbox queries: incoming events stored before acknowledgement, claimed and processed once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxItem, InboxStatus


async def store_incoming(
    session: AsyncSession,
    *,
    platform: str,
    platform_msg_id: str,
    conversation_key: str,
    payload: dict[str, Any],
    now: dt.datetime,
) -> tuple[int, bool]:
    """Store an event; returns (inbox id, is_new). A redelivered message id is not stored twice.

    One ``INSERT … ON CONFLICT DO NOTHING`` decides, so concurrent deliveries of the same message
    (WeCom retries, DingTalk redelivery) race safely on the unique constraint.
    """
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    result = await session.execute(
        insert(InboxItem)
        .values(
            platform=platform,
            platform_msg_id=platform_msg_id,
            conversation_key=conversation_key,
            payload=payload,
            status=InboxStatus.PENDING,
            attempts=0,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["platform", "platform_msg_id"])
        .returning(InboxItem.id)
    )
    inserted = result.scalar_one_or_none()
    if inserted is not None:
        return inserted, True
    existing = await _find(session, platform, platform_msg_id)
    assert existing is not None
    return existing, False


async def _find(session: AsyncSession, platform: str, platform_msg_id: str) -> int | None:
    return await session.scalar(
        select(InboxItem.id).where(
            InboxItem.platform == platform, InboxItem.platform_msg_id == platform_msg_id
        )
    )


async def claim(session: AsyncSession, inbox_id: int, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Take the lease on a pending item; False when someone else holds it or it is finished."""
    result = await session.execute(
        update(InboxItem)
        .where(
            InboxItem.id == inbox_id,
            InboxItem.status == InboxStatus.PENDING,
            or_(InboxItem.lease_until.is_(None), InboxItem.lease_until <= now),
        )
        .values(lease_until=now + lease, attempts=InboxItem.attempts + 1)
    )
    return result.rowcount == 1


async def load(session: AsyncSession, inbox_id: int) -> InboxItem | None:
    return await session.get(InboxItem, inbox_id)


async def finish(session: AsyncSession, inbox_id: int, now: dt.datetime) -> bool:
    """Mark processed, inside the transaction that holds the handler's changes.

    Returns False when the item was already finished (a second processor lost the race), in
    which case the caller must roll back.
    """
    result = await session.execute(
        update(InboxItem)
        .where(InboxItem.id == inbox_id, InboxItem.status == InboxStatus.PENDING)
        .values(status=InboxStatus.DONE, processed_at=now, lease_until=None, error=None)
    )
    return result.rowcount == 1


async def record_failure(
    session: AsyncSession, inbox_id: int, error: str, *, give_up: bool, retry_at: dt.datetime
) -> None:
    values: dict[str, Any] = {"error": error[:4000], "lease_until": retry_at}
    if give_up:
        values["status"] = InboxStatus.FAILED
    await session.execute(update(InboxItem).where(InboxItem.id == inbox_id).values(**values))


async def due_items(session: AsyncSession, now: dt.datetime, limit: int) -> list[tuple[int, str]]:
    """Pending items whose lease is free, oldest first: (id, conversation key)."""
    rows = await session.execute(
        select(InboxItem.id, InboxItem.conversation_key)
        .where(
            InboxItem.status == InboxStatus.PENDING,
            or_(InboxItem.lease_until.is_(None), InboxItem.lease_until <= now),
        )
        .order_by(InboxItem.id)
        .limit(limit)
    )
    return [(row.id, row.conversation_key) for row in rows]


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(InboxItem.status, func.count()).group_by(InboxItem.status))
    return {status.value: n for status, n in rows}

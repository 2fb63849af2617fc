"""Inbox queries: incoming events stored before acknowledgement, claimed and processed once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import InboxStatus
from storage.db import dialect_insert, rowcount
from storage.models import InboxItem


@dataclass(frozen=True)
class Incoming:
    """One event to store: its de-duplication key, the conversation it belongs to, its JSON."""

    platform: str
    platform_msg_id: str
    conversation_key: str
    payload: dict[str, Any]


async def store_incoming(
    session: AsyncSession,
    *,
    platform: str,
    platform_msg_id: str,
    conversation_key: str,
    payload: dict[str, Any],
    now: dt.datetime,
) -> tuple[int, bool]:
    """Store one event; returns (inbox id, is_new). A redelivered message id is not stored twice."""
    [result] = await store_incoming_many(
        session, [Incoming(platform, platform_msg_id, conversation_key, payload)], now=now
    )
    return result


async def store_incoming_many(
    session: AsyncSession, items: Sequence[Incoming], *, now: dt.datetime
) -> list[tuple[int, bool]]:
    """Store events in one statement; (inbox id, is_new) for each, in order.

    One ``INSERT … ON CONFLICT DO NOTHING`` decides, so concurrent deliveries of the same message
    (WeCom retries, DingTalk redelivery) race safely on the unique constraint. Within ``items``,
    only the first of several with one message id is new.
    """
    first: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        first.setdefault((item.platform, item.platform_msg_id), index)
    if not first:
        return []
    rows = [
        {
            "platform": items[index].platform,
            "platform_msg_id": items[index].platform_msg_id,
            "conversation_key": items[index].conversation_key,
            "payload": items[index].payload,
            "status": InboxStatus.PENDING,
            "attempts": 0,
            "received_at": now,
        }
        for index in first.values()
    ]
    inserted = await session.execute(
        dialect_insert(session)(InboxItem)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["platform", "platform_msg_id"])
        .returning(InboxItem.id, InboxItem.platform, InboxItem.platform_msg_id)
    )
    ids = {(row.platform, row.platform_msg_id): row.id for row in inserted}
    new = set(ids)
    stored_before = [key for key in first if key not in ids]
    if stored_before:
        ids.update(await _find_many(session, stored_before))
    keys = [(item.platform, item.platform_msg_id) for item in items]
    return [(ids[key], key in new and first[key] == index) for index, key in enumerate(keys)]


async def _find_many(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    by_platform: dict[str, list[str]] = {}
    for platform, msg_id in keys:
        by_platform.setdefault(platform, []).append(msg_id)
    rows = await session.execute(
        select(InboxItem.id, InboxItem.platform, InboxItem.platform_msg_id).where(
            or_(
                *(
                    and_(InboxItem.platform == platform, InboxItem.platform_msg_id.in_(msg_ids))
                    for platform, msg_ids in by_platform.items()
                )
            )
        )
    )
    return {(row.platform, row.platform_msg_id): row.id for row in rows}


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
    return rowcount(result) == 1


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
    return rowcount(result) == 1


async def record_failure(
    session: AsyncSession, inbox_id: int, attempt: int, error: str, *, give_up: bool, retry_at: dt.datetime
) -> bool:
    """Record that claim number ``attempt`` failed: retry at ``retry_at``, or give up for good.

    Only while the item is still pending and nobody claimed it since: a worker whose lease ran out
    must neither mark an item another worker finished as failed nor cut short that worker's lease.
    Returns False when the failure was not recorded for that reason.
    """
    values: dict[str, Any] = {"error": error[:4000], "lease_until": retry_at}
    if give_up:
        values["status"] = InboxStatus.FAILED
    result = await session.execute(
        update(InboxItem)
        .where(InboxItem.id == inbox_id, InboxItem.status == InboxStatus.PENDING, InboxItem.attempts == attempt)
        .values(**values)
    )
    return rowcount(result) == 1


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

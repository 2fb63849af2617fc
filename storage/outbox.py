"""Outbox queries: outgoing messages queued with the state they report, delivered by a worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import OutboxStatus
from storage.db import rowcount
from storage.models import OutboxItem


def enqueue(
    session: AsyncSession,
    *,
    platform: str,
    target_kind: str,
    target_id: int,
    target: str,
    kind: str,
    payload: dict[str, Any],
    now: dt.datetime,
    source_event_id: int | None = None,
) -> OutboxItem:
    item = OutboxItem(
        source_event_id=source_event_id,
        platform=platform,
        target_kind=target_kind,
        target_id=target_id,
        target=target,
        kind=kind,
        payload=payload,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(item)
    return item


async def due_items(session: AsyncSession, platforms: Sequence[str], now: dt.datetime, limit: int) -> list[tuple[int, str]]:
    """Items ready to send, oldest first, as (id, "platform:target") so a target gets them in order."""
    rows = await session.execute(
        select(OutboxItem.id, OutboxItem.platform, OutboxItem.target)
        .where(
            OutboxItem.platform.in_(platforms),
            or_(
                (OutboxItem.status == OutboxStatus.PENDING) & (OutboxItem.next_attempt_at <= now),
                # A worker died mid-send: its lease ran out, try again.
                (OutboxItem.status == OutboxStatus.SENDING) & (OutboxItem.lease_until < now),
            ),
        )
        .order_by(OutboxItem.id)
        .limit(limit)
    )
    return [(row.id, f"{row.platform}:{row.target}") for row in rows]


async def claim(session: AsyncSession, item_id: int, now: dt.datetime, lease: dt.timedelta) -> OutboxItem | None:
    result = await session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.id == item_id,
            or_(
                (OutboxItem.status == OutboxStatus.PENDING) & (OutboxItem.next_attempt_at <= now),
                (OutboxItem.status == OutboxStatus.SENDING) & (OutboxItem.lease_until < now),
            ),
        )
        .values(status=OutboxStatus.SENDING, lease_until=now + lease, attempts=OutboxItem.attempts + 1)
    )
    if rowcount(result) != 1:
        return None
    return await session.get(OutboxItem, item_id, populate_existing=True)


async def mark_sent(session: AsyncSession, item_id: int, now: dt.datetime, receipt: str | None) -> None:
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id)
        .values(status=OutboxStatus.SENT, sent_at=now, lease_until=None, platform_receipt=receipt, last_error=None)
    )


async def mark_retry(session: AsyncSession, item_id: int, attempt: int, retry_at: dt.datetime, error: str) -> None:
    """Claim number ``attempt`` failed: back in the queue at ``retry_at`` (see ``_still_claimed``)."""
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, *_still_claimed(attempt))
        .values(status=OutboxStatus.PENDING, next_attempt_at=retry_at, lease_until=None, last_error=error[:4000])
    )


async def defer(session: AsyncSession, item_id: int, retry_at: dt.datetime, reason: str) -> None:
    """Put back without counting an attempt (e.g. the target's rate limit is full)."""
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id)
        .values(
            status=OutboxStatus.PENDING,
            next_attempt_at=retry_at,
            lease_until=None,
            attempts=OutboxItem.attempts - 1,
            last_error=reason,
        )
    )


async def mark_dead(session: AsyncSession, item_id: int, attempt: int, error: str) -> None:
    """Claim number ``attempt`` failed for good: a dead letter (see ``_still_claimed``)."""
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, *_still_claimed(attempt))
        .values(status=OutboxStatus.DEAD, lease_until=None, last_error=error[:4000])
    )


def _still_claimed(attempt: int) -> tuple[ColumnElement[bool], ...]:
    # A sender whose lease ran out reports late: by then another worker may have claimed the item
    # again (and be sending it, or have sent it). Its failure must not requeue or bury that one.
    return OutboxItem.status == OutboxStatus.SENDING, OutboxItem.attempts == attempt


async def sent_count_since(session: AsyncSession, platform: str, target: str, since: dt.datetime) -> int:
    """How many messages went to one target since an instant (for per-target rate limits)."""
    return await session.scalar(
        select(func.count())
        .select_from(OutboxItem)
        .where(OutboxItem.platform == platform, OutboxItem.target == target, OutboxItem.sent_at >= since)
    ) or 0


async def replies_to_event(session: AsyncSession, inbox_id: int) -> list[OutboxItem]:
    rows = await session.scalars(
        select(OutboxItem).where(OutboxItem.source_event_id == inbox_id).order_by(OutboxItem.id)
    )
    return list(rows)


async def feed(
    session: AsyncSession, *, target_kind: str, target_id: int, after_id: int, limit: int
) -> list[OutboxItem]:
    """Everything pushed to one member or group, on any platform, after an item id."""
    rows = await session.scalars(
        select(OutboxItem)
        .where(OutboxItem.target_kind == target_kind, OutboxItem.target_id == target_id, OutboxItem.id > after_id)
        .order_by(OutboxItem.id)
        .limit(limit)
    )
    return list(rows)


async def dead_letters(session: AsyncSession, limit: int = 50) -> list[OutboxItem]:
    rows = await session.scalars(
        select(OutboxItem).where(OutboxItem.status == OutboxStatus.DEAD).order_by(OutboxItem.id.desc()).limit(limit)
    )
    return list(rows)

"""Sent cards: who may answer them and whether they were answered."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import rowcount
from storage.models import CardRecord


def record_card(
    session: AsyncSession, *, task_id: str, kind: str, member_id: int | None, payload: dict[str, Any], now: dt.datetime
) -> None:
    session.add(CardRecord(task_id=task_id, kind=kind, member_id=member_id, payload=payload, created_at=now))


async def get_card(session: AsyncSession, task_id: str) -> CardRecord | None:
    return await session.get(CardRecord, task_id)


async def latest_open_card(session: AsyncSession, member_id: int, since: dt.datetime) -> CardRecord | None:
    """The member's most recent unanswered card sent since ``since``."""
    return await session.scalar(
        select(CardRecord)
        .where(CardRecord.member_id == member_id, CardRecord.answered_at.is_(None), CardRecord.created_at >= since)
        .order_by(CardRecord.created_at.desc())
        .limit(1)
    )


async def mark_answered(session: AsyncSession, task_id: str, answer: str, now: dt.datetime) -> bool:
    """Close a card; False when it was already answered (a double click or a replay)."""
    result = await session.execute(
        update(CardRecord)
        .where(CardRecord.task_id == task_id, CardRecord.answered_at.is_(None))
        .values(answered_at=now, answer=answer[:256])
    )
    return rowcount(result) == 1


async def remember_platform_state(session: AsyncSession, task_id: str, platform: str, state: dict[str, Any]) -> None:
    card = await session.get(CardRecord, task_id)
    if card is not None:
        card.platform_state = {**card.platform_state, platform: state}


async def update_payload(session: AsyncSession, task_id: str, payload: dict[str, Any]) -> None:
    await session.execute(update(CardRecord).where(CardRecord.task_id == task_id).values(payload=payload))


_INSERT_CARDS = insert(cast(Table, CardRecord.__table__))  # built once


async def record_cards(session: AsyncSession, rows: list[dict[str, Any]], *, now: dt.datetime) -> None:
    """``record_card`` for several cards in one statement (task_id, kind, member_id, payload each)."""
    if rows:
        # Core on the session's connection: nothing of this transaction is remembered from cards.
        connection = await session.connection()
        await connection.execute(_INSERT_CARDS, [{**row, "created_at": now, "platform_state": {}} for row in rows])

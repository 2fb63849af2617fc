"""审计: every admin change leaves a row — who, what, before, after, when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


async def record(
    session: AsyncSession,
    *,
    member_id: int | None,
    action: str,
    subject: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    now: dt.datetime,
) -> None:
    session.add(
        AuditEntry(
            at=now, member_id=member_id, action=action[:64], subject=subject[:256],
            before=before or {}, after=after or {},
        )
    )


async def entries(session: AsyncSession, *, action: str | None = None, limit: int | None = None) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc() if limit else AuditEntry.id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if limit:
        query = query.limit(limit)
    return list(await session.scalars(query))

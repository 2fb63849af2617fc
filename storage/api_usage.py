"""Metered platform API calls per month, counted in the settings table (one row per platform and month).

Replicas share the count: the row is locked while it is changed (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite serialises writers anyway), and the first call of a month inserts the row
inside a savepoint, so two replicas racing to create it both end up counting.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Setting


@dataclass(frozen=True)
class Usage:
    calls: int
    crossed_warning: bool  # this addition reached the warning level first (warn once)


def usage_key(platform: str, month: str) -> str:
    return f"api_calls:{platform}:{month}"[:64]


async def add_api_calls(session: AsyncSession, platform: str, month: str, calls: int, *, warn_at: int) -> Usage:
    key = usage_key(platform, month)
    query = select(Setting).where(Setting.key == key).with_for_update().execution_options(populate_existing=True)
    row = await session.scalar(query)
    if row is None:
        try:
            async with session.begin_nested():
                session.add(Setting(key=key, value={"calls": 0, "warned": False}))
        except IntegrityError:
            pass  # another replica created it first
        row = await session.scalar(query)
        assert row is not None
    value = dict(row.value)
    total = int(value.get("calls", 0)) + calls
    crossed = total >= warn_at and not value.get("warned")
    row.value = {**value, "calls": total, "warned": bool(value.get("warned")) or crossed}
    await session.flush()
    return Usage(total, crossed)


async def api_calls(session: AsyncSession, platform: str, month: str) -> int:
    row = await session.get(Setting, usage_key(platform, month))
    return int(row.value.get("calls", 0)) if row else 0

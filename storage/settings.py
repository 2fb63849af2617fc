"""Small persistent settings.

A setting read is remembered for the rest of the transaction (``storage.batch_cache``): the rule
thresholds are read for every event of an inbox batch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage import batch_cache
from storage.models import Setting

_TABLES = (Setting.__tablename__,)


async def get(session: AsyncSession, key: str) -> dict[str, Any] | None:
    cache_key = ("setting", key)
    value = batch_cache.lookup(session, cache_key)
    if value is batch_cache.MISSING:
        row = await session.get(Setting, key)
        value = row.value if row else None
        batch_cache.remember(session, cache_key, _TABLES, value)
    return value  # type: ignore[no-any-return]


async def put(session: AsyncSession, key: str, value: dict[str, Any]) -> None:
    batch_cache.forget(session, ("setting", key))  # the row changes before it is flushed
    row = await session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value

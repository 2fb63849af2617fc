"""Small persistent settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Setting


async def get(session: AsyncSession, key: str) -> dict[str, Any] | None:
    row = await session.get(Setting, key)
    return row.value if row else None


async def put(session: AsyncSession, key: str, value: dict[str, Any]) -> None:
    row = await session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value

"""Admins' edits of the libraries (话术包, 常见障碍应答库, 竞品库): add, edit, retire, restore.

The shipped seed (storage/library_seed.py) inserts only what is missing, by title / obstacle /
name, and retiring keeps the row (``retired_at``), so no upgrade brings back or overwrites what an
admin changed. Every change writes an audit row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.models import Competitor, ObstacleResponse, ScriptPack

# kind → (model, key column name, text column name)
LIBRARIES: dict[str, tuple[Any, str, str]] = {
    "pack": (ScriptPack, "title", "body"),
    "response": (ObstacleResponse, "obstacle", "guidance"),
    "competitor": (Competitor, "name", "counter_script"),
}


async def entries(session: AsyncSession, kind: str) -> list[Any]:
    model, key, _text = LIBRARIES[kind]
    return list(await session.scalars(select(model).order_by(getattr(model, key))))


async def entry(session: AsyncSession, kind: str, key_value: str) -> Any | None:
    model, key, _text = LIBRARIES[kind]
    return await session.scalar(select(model).where(getattr(model, key) == key_value))


def _snapshot(row: Any, kind: str) -> dict[str, Any]:
    _model, key, text = LIBRARIES[kind]
    shot = {key: getattr(row, key), text: getattr(row, text), "retired": row.retired_at is not None}
    if kind == "competitor":
        shot["aliases"] = list(row.aliases or [])
    return shot


async def add(session: AsyncSession, kind: str, key_value: str, text: str, *, actor_id: int, now: dt.datetime) -> Any:
    model, key, text_column = LIBRARIES[kind]
    row = model(**{key: key_value, text_column: text}, updated_at=now, retired_at=None)
    if kind == "competitor":
        row.aliases = []
    if kind == "response":
        row.review_questions = []
    if kind == "pack":
        row.tags = {}
    session.add(row)
    await session.flush()
    await audit.record(session, member_id=actor_id, action=f"library.{kind}.add", subject=key_value,
                       after=_snapshot(row, kind), now=now)
    return row


async def change(
    session: AsyncSession, kind: str, row: Any, *, actor_id: int, now: dt.datetime, action: str, **values: Any
) -> None:
    before = _snapshot(row, kind)
    for column, value in values.items():
        setattr(row, column, value)
    row.updated_at = now
    await audit.record(session, member_id=actor_id, action=f"library.{kind}.{action}", subject=getattr(row, LIBRARIES[kind][1]),
                       before=before, after=_snapshot(row, kind), now=now)

"""Dialogue state: a small state name plus fields, per (platform, conversation, member).

Loaded with a row lock on PostgreSQL so that two replicas cannot advance one dialogue at once
(SQLite serialises writers already).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import rowcount
from storage.models import Dialogue


@dataclass(frozen=True)
class DialogueKey:
    platform: str
    conversation: str
    member_id: int


_WHERE = (
    Dialogue.platform == bindparam("platform"),
    Dialogue.conversation == bindparam("conversation"),
    Dialogue.member_id == bindparam("member_id"),
)
# Built once: read for every member event. Most events find no dialogue; the probe reads no
# columns but takes the row lock, and only a row that exists is loaded as an object.
_PROBE = select(Dialogue.member_id).where(*_WHERE).with_for_update()


async def load_dialogue(session: AsyncSession, key: DialogueKey) -> Dialogue | None:
    found = await session.scalar(
        _PROBE, {"platform": key.platform, "conversation": key.conversation, "member_id": key.member_id}
    )
    if found is None:
        return None
    return await session.get(Dialogue, (key.platform, key.conversation, key.member_id))


async def save_dialogue(
    session: AsyncSession, key: DialogueKey, state: str, data: dict[str, Any], now: dt.datetime, idle: dt.timedelta
) -> Dialogue:
    row = await load_dialogue(session, key)
    if row is None:
        row = Dialogue(
            platform=key.platform,
            conversation=key.conversation,
            member_id=key.member_id,
            state=state,
            data=data,
            updated_at=now,
            expires_at=now + idle,
        )
        session.add(row)
    else:
        row.state, row.data, row.updated_at, row.expires_at = state, data, now, now + idle
    await session.flush()
    return row


async def clear_dialogue(session: AsyncSession, key: DialogueKey) -> None:
    await session.execute(
        delete(Dialogue).where(
            Dialogue.platform == key.platform,
            Dialogue.conversation == key.conversation,
            Dialogue.member_id == key.member_id,
        )
    )


async def purge_expired(session: AsyncSession, now: dt.datetime) -> int:
    result = await session.execute(delete(Dialogue).where(Dialogue.expires_at < now))
    return rowcount(result)

"""Libraries: script packs (话术包/物料), the obstacle response library (常见障碍应答库), competitors."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import dialect_insert, rowcount
from storage.models import Competitor, ObstacleResponse, PackDelivery, ScriptPack


async def pack_by_title(session: AsyncSession, title: str) -> ScriptPack | None:
    return await session.scalar(select(ScriptPack).where(ScriptPack.title == title.strip("《》 "), ScriptPack.retired_at.is_(None)))


async def all_packs(session: AsyncSession) -> list[ScriptPack]:
    return list(await session.scalars(select(ScriptPack).where(ScriptPack.retired_at.is_(None)).order_by(ScriptPack.id)))


async def record_delivery(
    session: AsyncSession, *, pack_id: int, member_id: int, customer_id: int | None, cause: str, now: dt.datetime
) -> bool:
    """Remember that a pack went to a member for a cause; False if it already did (never twice)."""
    insert = dialect_insert(session)
    result = await session.execute(
        insert(PackDelivery)
        .values(pack_id=pack_id, member_id=member_id, customer_id=customer_id, cause=cause[:128], delivered_at=now)
        .on_conflict_do_nothing(index_elements=["member_id", "cause"])
    )
    return rowcount(result) == 1


async def obstacle_response(session: AsyncSession, obstacle: str) -> ObstacleResponse | None:
    return await session.scalar(select(ObstacleResponse).where(ObstacleResponse.obstacle == obstacle, ObstacleResponse.retired_at.is_(None)))


async def all_competitors(session: AsyncSession) -> list[Competitor]:
    return list(await session.scalars(select(Competitor).where(Competitor.retired_at.is_(None)).order_by(Competitor.id)))


async def delivered_pack_ids(session: AsyncSession, member_id: int) -> set[int]:
    """Packs the member has already received, for any cause."""
    return set(await session.scalars(select(PackDelivery.pack_id).where(PackDelivery.member_id == member_id).distinct()))

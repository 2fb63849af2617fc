"""Members and teams: identity lookup and the people a member may act for.

The sender of an inbox event is looked up for every event; the lookup is remembered for the rest
of the transaction (``storage.batch_cache``), so a batch of one rep's messages reads it once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Role
from storage import batch_cache
from storage.models import Member, Setting, Team

# Which column links a member to each platform's user id.
_IDENTITY = {
    "console": Member.code,
    "wecom": Member.wecom_userid,
    "dingtalk": Member.dingtalk_staff_id,
}

# Built once: the sender of every event is looked up.
_BY_IDENTITY = {
    platform: select(Member).where(column == bindparam("user_id"), Member.active.is_(True))
    for platform, column in _IDENTITY.items()
}


async def member_by_platform_id(session: AsyncSession, platform: str, user_id: str) -> Member | None:
    column = _IDENTITY.get(platform)
    if column is None or not user_id:
        return None
    key = ("member", platform, user_id)
    member = batch_cache.lookup(session, key)
    # A change to the row not yet flushed (deactivated, identity changed) is seen on the object.
    if isinstance(member, Member) and member.active and getattr(member, column.key) == user_id:
        return member
    member = await session.scalar(_BY_IDENTITY[platform], {"user_id": user_id})
    if member is not None:  # an unknown sender is looked up again: a member may be added meanwhile
        batch_cache.remember(session, key, _MEMBER_TABLES, member)
    return member


_MEMBER_TABLES = (Member.__tablename__,)


async def member_by_code(session: AsyncSession, code: str) -> Member | None:
    return await session.scalar(select(Member).where(Member.code == code))


async def get_member(session: AsyncSession, member_id: int) -> Member | None:
    return await session.get(Member, member_id)


async def get_team(session: AsyncSession, team_id: int) -> Team | None:
    return await session.get(Team, team_id)


async def all_members(session: AsyncSession) -> list[Member]:
    return list(await session.scalars(select(Member).where(Member.active.is_(True)).order_by(Member.id)))


async def all_teams(session: AsyncSession) -> list[Team]:
    return list(await session.scalars(select(Team).order_by(Team.id)))


async def members_including_inactive(session: AsyncSession) -> list[Member]:
    """Every member, active or not (``all_members`` returns only the active ones)."""
    return list(await session.scalars(select(Member)))


async def teams_by_key(session: AsyncSession) -> dict[str, Team]:
    """Every team, by its key."""
    return {team.key: team for team in await session.scalars(select(Team))}


async def admins(session: AsyncSession) -> list[Member]:
    return list(
        await session.scalars(select(Member).where(Member.role == Role.ADMIN, Member.active.is_(True)))
    )


async def team_member_ids(session: AsyncSession, team_id: int) -> list[int]:
    return list(await session.scalars(select(Member.id).where(Member.team_id == team_id)))


async def note_unknown_sender(session: AsyncSession, platform: str, user_id: str, now: dt.datetime) -> bool:
    """Remember a sender we could not identify; True the first time (so we answer once)."""
    key = f"unknown:{platform}:{user_id}"[:64]
    if await session.get(Setting, key) is not None:
        return False
    session.add(Setting(key=key, value={"first_seen": now.isoformat()}))
    await session.flush()
    return True

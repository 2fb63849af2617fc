"""Members and teams: identity lookup and the people a member may act for.

The sender of an inbox event is looked up for every event; the lookup is remembered for the rest
of the transaction (``storage.batch_cache``), so a batch of one rep's messages reads it once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, and_, bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from domain.enums import Role
from storage import batch_cache
from storage.models import Dialogue, Member, Setting, Team

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

# Built once: the sender together with whether they have a dialogue in the conversation.
_IN_CONVERSATION = and_(
    Dialogue.platform == bindparam("platform"),
    Dialogue.conversation == bindparam("conversation"),
    Dialogue.member_id == Member.id,
)


def _sender_with_dialogue(column: InstrumentedAttribute[Any], *, lock: bool) -> Select[Member, int]:
    if not lock:
        # SQLite has no row locks to take (its writers are serialised): a plain outer join.
        joined = select(Member, Dialogue.member_id).outerjoin(Dialogue, _IN_CONVERSATION)
    else:
        # The dialogue row is locked as it is read, as ``storage.dialogues.load_dialogue`` does:
        # ``FOR UPDATE`` cannot lock the nullable side of an outer join, but it can in a lateral subquery.
        dialogue = select(Dialogue.member_id).where(_IN_CONVERSATION).with_for_update().lateral("dialogue")
        joined = select(Member, dialogue.c.member_id).outerjoin(dialogue, true())
    return joined.where(column == bindparam("user_id"), Member.active.is_(True))


_WITH_DIALOGUE = {
    dialect: {platform: _sender_with_dialogue(column, lock=dialect != "sqlite") for platform, column in _IDENTITY.items()}
    for dialect in ("sqlite", "postgresql")
}


async def sender_and_dialogue(
    session: AsyncSession, platform: str, user_id: str, conversation: str
) -> tuple[Member | None, bool | None]:
    """``member_by_platform_id``, and whether that member has a dialogue row in ``conversation``
    (None: not looked at), in one statement.

    On PostgreSQL the dialogue row, when there is one, is locked by the same statement, as
    ``storage.dialogues.load_dialogue`` would. A sender remembered for the transaction is not read
    again (and the dialogue is then not looked at).
    """
    column = _IDENTITY.get(platform)
    statements = _WITH_DIALOGUE.get(session.get_bind().dialect.name)
    if column is None or not user_id or statements is None:
        return await member_by_platform_id(session, platform, user_id), None
    key = ("member", platform, user_id)
    remembered = batch_cache.lookup(session, key)
    if isinstance(remembered, Member) and remembered.active and getattr(remembered, column.key) == user_id:
        return remembered, None
    row = (
        await session.execute(statements[platform], {"user_id": user_id, "platform": platform,
                                                     "conversation": conversation})
    ).first()
    if row is None:
        return None, None
    member: Member = row[0]
    batch_cache.remember(session, key, _MEMBER_TABLES, member)
    return member, row[1] is not None


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

"""Obstacles (障碍), their evidence, and cross-department support requests (需跨部门支持).

Sweeps (reminders, slow support requests, resolution time) are single set-based queries over the
whole organisation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import CustomerStatus, ObstacleStatus, Role
from storage.db import rowcount
from storage.models import Customer, Member, Obstacle, SupportRequest

# --- obstacles ---------------------------------------------------------------------------------


async def get_obstacle(session: AsyncSession, obstacle_id: int) -> Obstacle | None:
    return await session.get(Obstacle, obstacle_id)


async def obstacle_for_change(session: AsyncSession, stage_change_id: int) -> Obstacle | None:
    return await session.scalar(select(Obstacle).where(Obstacle.stage_change_id == stage_change_id))


async def record_obstacle(
    session: AsyncSession,
    *,
    customer_id: int,
    stage_id: int,
    stage_change_id: int | None,
    member_id: int,
    option: str,
    required_evidence: str | None,
    now: dt.datetime,
) -> Obstacle:
    """Store an answered obstacle question; it waits for evidence when the option demands some."""
    obstacle = Obstacle(
        customer_id=customer_id,
        stage_id=stage_id,
        stage_change_id=stage_change_id,
        member_id=member_id,
        option=option[:64],
        required_evidence=required_evidence,
        status=ObstacleStatus.AWAITING_EVIDENCE if required_evidence else ObstacleStatus.OPEN,
        answered_at=now,
    )
    session.add(obstacle)
    await session.flush()
    return obstacle


async def resolve_open_obstacles(session: AsyncSession, customer_id: int, now: dt.datetime, *, keep: int) -> int:
    """The customer moved on: its earlier open obstacles count as resolved.

    Obstacles still waiting for evidence stay as they are — the evidence is still owed.
    """
    result = await session.execute(
        update(Obstacle)
        .where(Obstacle.customer_id == customer_id, Obstacle.status == ObstacleStatus.OPEN, Obstacle.id != keep)
        .values(status=ObstacleStatus.RESOLVED, resolved_at=now)
    )
    return rowcount(result)


async def obstacles_of_customer(session: AsyncSession, customer_id: int) -> list[Obstacle]:
    """All obstacle answers of a customer, newest first (for checklists and /阶段)."""
    return list(
        await session.scalars(
            select(Obstacle).where(Obstacle.customer_id == customer_id).order_by(Obstacle.answered_at.desc(),
                                                                               Obstacle.id.desc())
        )
    )


async def awaiting_evidence_of(session: AsyncSession, member_id: int) -> list[tuple[Obstacle, Customer]]:
    """Obstacles still waiting for evidence that the member answered or whose customer they own."""
    rows = await session.execute(
        select(Obstacle, Customer)
        .join(Customer, Customer.id == Obstacle.customer_id)
        .where(
            or_(Obstacle.member_id == member_id, Customer.owner_id == member_id),
            Obstacle.status == ObstacleStatus.AWAITING_EVIDENCE,
        )
        .order_by(Obstacle.answered_at, Obstacle.id)
    )
    return [(row[0], row[1]) for row in rows]


async def attach_evidence(session: AsyncSession, obstacle: Obstacle, evidence_id: int) -> bool:
    """Link the demanded evidence; the obstacle becomes open. False if it was not waiting any more."""
    result = await session.execute(
        update(Obstacle)
        .where(Obstacle.id == obstacle.id, Obstacle.status == ObstacleStatus.AWAITING_EVIDENCE)
        .values(evidence_id=evidence_id, status=ObstacleStatus.OPEN)
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(result) == 1


async def obstacles_due_reminder(
    session: AsyncSession, cutoff: dt.datetime, today: dt.date
) -> list[tuple[Obstacle, Customer]]:
    """Obstacles waiting for evidence whose last reminder (or answer) is at or before ``cutoff``.

    Closed customers and customers snoozed (暂缓) past ``today`` are left alone.
    """
    rows = await session.execute(
        select(Obstacle, Customer)
        .join(Customer, Customer.id == Obstacle.customer_id)
        .where(
            Obstacle.status == ObstacleStatus.AWAITING_EVIDENCE,
            func.coalesce(Obstacle.last_reminded_at, Obstacle.answered_at) <= cutoff,
            Customer.status != CustomerStatus.CLOSED,
            or_(Customer.snoozed_until.is_(None), Customer.snoozed_until <= today),
        )
        .order_by(Obstacle.member_id, Obstacle.answered_at, Obstacle.id)
    )
    return [(row[0], row[1]) for row in rows]


async def mark_reminded(session: AsyncSession, obstacle_ids: Sequence[int], now: dt.datetime) -> None:
    if obstacle_ids:
        await session.execute(
            update(Obstacle)
            .where(Obstacle.id.in_(list(obstacle_ids)))
            .values(last_reminded_at=now)
            .execution_options(synchronize_session="fetch")
        )


# --- support requests (需跨部门支持) -------------------------------------------------------------


def _is_open() -> ColumnElement[bool]:
    return SupportRequest.first_reply_at.is_(None)


async def pick_supporter(session: AsyncSession) -> Member | None:
    """The active supporter with the fewest unanswered requests (ties: the longest-standing member)."""
    open_count = func.count(SupportRequest.id)
    row = await session.execute(
        select(Member, open_count)
        .outerjoin(SupportRequest, and_(SupportRequest.supporter_id == Member.id, _is_open()))
        .where(Member.role == Role.SUPPORTER, Member.active.is_(True))
        .group_by(Member.id)
        .order_by(open_count, Member.id)
        .limit(1)
    )
    first = row.first()
    return first[0] if first else None


async def support_request_for(session: AsyncSession, obstacle_id: int) -> SupportRequest | None:
    return await session.scalar(
        select(SupportRequest).where(SupportRequest.obstacle_id == obstacle_id).order_by(SupportRequest.id).limit(1)
    )


async def create_support_request(
    session: AsyncSession, *, obstacle: Obstacle, requester_id: int, supporter_id: int | None, now: dt.datetime
) -> SupportRequest:
    request = SupportRequest(
        obstacle_id=obstacle.id,
        customer_id=obstacle.customer_id,
        requester_id=requester_id,
        supporter_id=supporter_id,
        requested_at=now,
    )
    session.add(request)
    await session.flush()
    return request


async def open_requests_for_supporter(
    session: AsyncSession, supporter_id: int
) -> list[tuple[SupportRequest, Obstacle, Customer]]:
    """Requests handed to the supporter and not answered yet, oldest first."""
    rows = await session.execute(
        select(SupportRequest, Obstacle, Customer)
        .join(Obstacle, Obstacle.id == SupportRequest.obstacle_id)
        .join(Customer, Customer.id == SupportRequest.customer_id)
        .where(SupportRequest.supporter_id == supporter_id, _is_open())
        .order_by(SupportRequest.requested_at, SupportRequest.id)
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def has_open_requests(session: AsyncSession, supporter_id: int) -> bool:
    found = await session.scalar(
        select(SupportRequest.id).where(SupportRequest.supporter_id == supporter_id, _is_open()).limit(1)
    )
    return found is not None


async def record_first_reply(session: AsyncSession, request: SupportRequest, text: str, now: dt.datetime) -> bool:
    """The supporter's first substantive reply stops the clock; False if one was recorded already."""
    result = await session.execute(
        update(SupportRequest)
        .where(SupportRequest.id == request.id, _is_open())
        .values(first_reply_at=now, reply_text=text)
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(result) == 1


async def open_support_requests_older_than(session: AsyncSession, cutoff: dt.datetime) -> list[SupportRequest]:
    """Support requests made before ``cutoff`` that still have no substantive reply (obstacle slow)."""
    return list(
        await session.scalars(
            select(SupportRequest)
            .where(_is_open(), SupportRequest.requested_at < cutoff)
            .order_by(SupportRequest.requested_at, SupportRequest.id)
        )
    )


async def resolution_hours(
    session: AsyncSession, since: dt.datetime, until: dt.datetime, *, team_id: int | None = None
) -> list[float]:
    """障碍解决时效: hours from 需跨部门支持 to the first substantive reply, for replies in [since, until).

    ``team_id`` limits it to requests made by that team's members.
    """
    query = select(SupportRequest.requested_at, SupportRequest.first_reply_at).where(
        SupportRequest.first_reply_at >= since, SupportRequest.first_reply_at < until
    )
    if team_id is not None:
        query = query.join(Member, Member.id == SupportRequest.requester_id).where(Member.team_id == team_id)
    rows = await session.execute(query)
    return [(row.first_reply_at - row.requested_at).total_seconds() / 3600 for row in rows]

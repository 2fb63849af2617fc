"""进度停滞 → 复盘: what stall detection reads and what an escalation changes (SPEC §3.2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.enums import AlertStatus, CustomerStatus, EscalationStatus, Role, StageChangeStatus
from storage.models import (
    Alert,
    Customer,
    Escalation,
    Evidence,
    Member,
    Obstacle,
    Stage,
    StageChange,
    StageHistory,
    SupportRequest,
    Team,
    Touch,
)


async def previous_touch(session: AsyncSession, touch: Touch) -> Touch | None:
    """The customer's touch logged just before ``touch``, ignoring withdrawn ones."""
    return await session.scalar(
        select(Touch)
        .where(
            Touch.customer_id == touch.customer_id,
            Touch.undone_at.is_(None),
            Touch.id != touch.id,
            or_(
                Touch.occurred_at < touch.occurred_at,
                and_(Touch.occurred_at == touch.occurred_at, Touch.id < touch.id),
            ),
        )
        .order_by(Touch.occurred_at.desc(), Touch.id.desc())
        .limit(1)
    )


async def counted_touches(
    session: AsyncSession, customer_id: int, *, after: dt.datetime | None, limit: int
) -> list[Touch]:
    """The customer's newest touches (not withdrawn) logged after ``after``, newest first."""
    query = select(Touch).where(Touch.customer_id == customer_id, Touch.undone_at.is_(None))
    if after is not None:
        query = query.where(Touch.occurred_at > after)
    return list(await session.scalars(query.order_by(Touch.occurred_at.desc(), Touch.id.desc()).limit(limit)))


async def stage_advanced_between(
    session: AsyncSession, customer_id: int, since: dt.datetime, until: dt.datetime
) -> bool:
    """Did the customer move to a later stage in (since, until]?

    Either a committed stage change forward, or a stage-history entry whose stage lies after the
    one before it (moves made by imports or admins leave only history).
    """
    from_stage, to_stage = aliased(Stage), aliased(Stage)
    committed = await session.scalar(
        select(StageChange.id)
        .join(from_stage, from_stage.id == StageChange.from_stage_id)
        .join(to_stage, to_stage.id == StageChange.to_stage_id)
        .where(
            StageChange.customer_id == customer_id,
            StageChange.status == StageChangeStatus.COMMITTED,
            StageChange.committed_at > since,
            StageChange.committed_at <= until,
            to_stage.position > from_stage.position,
        )
        .limit(1)
    )
    if committed is not None:
        return True
    rows = (
        await session.execute(
            select(StageHistory.entered_at, Stage.position)
            .join(Stage, Stage.id == StageHistory.stage_id)
            .where(StageHistory.customer_id == customer_id)
            .order_by(StageHistory.entered_at, StageHistory.id)
        )
    ).all()
    return any(
        since < entered_at <= until and position > rows[i - 1].position
        for i, (entered_at, position) in enumerate(rows)
        if i > 0
    )


async def milestone_completed_between(
    session: AsyncSession, customer_id: int, since: dt.datetime, until: dt.datetime
) -> bool:
    """Was a deliverable (a node's required evidence) provided for the customer in (since, until]?"""
    rows = await session.scalars(
        select(Evidence.attributes).where(
            Evidence.customer_id == customer_id, Evidence.created_at > since, Evidence.created_at <= until
        )
    )
    return any((attributes or {}).get("deliverable") for attributes in rows)


async def latest_escalation(session: AsyncSession, customer_id: int) -> Escalation | None:
    return await session.scalar(
        select(Escalation)
        .where(Escalation.customer_id == customer_id)
        .order_by(Escalation.raised_at.desc(), Escalation.id.desc())
        .limit(1)
    )


async def get_escalation(session: AsyncSession, escalation_id: int) -> Escalation | None:
    return await session.get(Escalation, escalation_id)


async def raise_escalation(
    session: AsyncSession,
    *,
    customer: Customer,
    manager_id: int | None,
    checklist: dict[str, Any],
    task_id: str | None,
    now: dt.datetime,
) -> Escalation:
    """Open an escalation and flag the customer 复盘中."""
    escalation = Escalation(
        customer_id=customer.id,
        manager_id=manager_id,
        status=EscalationStatus.OPEN,
        checklist=checklist,
        raised_at=now,
        task_id=task_id,
    )
    session.add(escalation)
    customer.status = CustomerStatus.REVIEWING
    await session.flush()
    return escalation


def close_escalation(
    escalation: Escalation,
    customer: Customer,
    *,
    status: EscalationStatus,
    by: int,
    now: dt.datetime,
    advice: str = "",
) -> None:
    """The manager acted: the escalation ends and the customer is followed up normally again."""
    escalation.status = status
    escalation.resolved_at = now
    escalation.resolved_by = by
    escalation.advice = advice
    if customer.status is CustomerStatus.REVIEWING:
        customer.status = CustomerStatus.ACTIVE


def snooze_customer(customer: Customer, *, until: dt.date, reason: str) -> None:
    """暂缓: alerts for the customer pause until ``until`` (exclusive)."""
    customer.snoozed_until = until
    customer.snooze_reason = reason[:256]


async def obstacles_of(
    session: AsyncSession, customer_id: int, limit: int = 10
) -> list[tuple[Obstacle, Evidence | None, SupportRequest | None]]:
    """The customer's answered obstacles, newest first, each with its evidence and support request."""
    rows = await session.execute(
        select(Obstacle, Evidence)
        .outerjoin(Evidence, Evidence.id == Obstacle.evidence_id)
        .where(Obstacle.customer_id == customer_id)
        .order_by(Obstacle.answered_at.desc(), Obstacle.id.desc())
        .limit(limit)
    )
    pairs = [(row[0], row[1]) for row in rows]
    support: dict[int, SupportRequest] = {}
    if pairs:
        requests = await session.scalars(
            select(SupportRequest)
            .where(SupportRequest.obstacle_id.in_([o.id for o, _e in pairs]))
            .order_by(SupportRequest.requested_at)
        )
        support = {r.obstacle_id: r for r in requests}
    return [(o, e, support.get(o.id)) for o, e in pairs]


async def open_alerts_of(session: AsyncSession, customer_id: int) -> list[Alert]:
    return list(
        await session.scalars(
            select(Alert)
            .where(Alert.customer_id == customer_id, Alert.status.in_((AlertStatus.RAISED, AlertStatus.NOTIFIED)))
            .order_by(Alert.raised_at)
        )
    )


async def reviewers_for(session: AsyncSession, member: Member) -> list[Member]:
    """Who reviews this member's customers: the team's manager, else the admins (never oneself)."""
    if member.team_id is not None:
        team = await session.get(Team, member.team_id)
        if team is not None and team.manager_id is not None and team.manager_id != member.id:
            manager = await session.get(Member, team.manager_id)
            if manager is not None and manager.active:
                return [manager]
    admins = await session.scalars(
        select(Member).where(Member.role == Role.ADMIN, Member.active.is_(True), Member.id != member.id).order_by(Member.id)
    )
    return list(admins)


async def may_review(session: AsyncSession, actor: Member, owner: Member) -> bool:
    """Only the owner's team manager (or an admin) acts on an escalation or a request — never the
    owner themselves, admins included (as ``reviewers_for``: nobody reviews their own)."""
    if actor.id == owner.id:
        return False
    if actor.role is Role.ADMIN:
        return True
    if actor.role is not Role.MANAGER or owner.team_id is None:
        return False
    team = await session.get(Team, owner.team_id)
    return team is not None and team.manager_id == actor.id


async def team_reps(session: AsyncSession, team_id: int | None) -> list[Member]:
    """Active reps of a team (all active reps when there is no team)."""
    query = select(Member).where(Member.role == Role.REP, Member.active.is_(True))
    if team_id is not None:
        query = query.where(Member.team_id == team_id)
    return list(await session.scalars(query.order_by(Member.id)))


async def owner_has_customer_named(session: AsyncSession, owner_id: int, name: str) -> bool:
    found = await session.scalar(select(Customer.id).where(Customer.owner_id == owner_id, Customer.name == name))
    return found is not None

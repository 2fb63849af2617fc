"""动作校准会 (SPEC §8.3): what the weekly calibration report reads, for all teams at once.

Each list is one set-based statement over the whole organisation for the week ``(since, as_of]``;
every item carries the team of the customer's owner (or of the member, for intel without a
customer) so the report can be split per team group without further queries.

"Overran" stays: a stay in a stage with a limit that lasted longer than the limit and was still
running at some point of the week. Working-day limits are counted as ``limit × 7 / 5`` calendar
days here (weekly report granularity; the alert rules use the exact holiday calendar).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.enums import AlertStatus
from storage.models import (
    Alert,
    Competitor,
    CompetitorIntel,
    Customer,
    Escalation,
    Member,
    Obstacle,
    ObstacleResponse,
    Pipeline,
    Stage,
    StageHistory,
    SupportRequest,
    Timestamp,
)


def _instant(value: dt.datetime) -> ColumnElement[dt.datetime]:
    return literal(value, Timestamp())


@dataclass(frozen=True)
class IgnoredAlert:
    team_id: int | None
    member: str
    customer: str
    rule: str
    since: dt.datetime  # notified (or raised) at


@dataclass(frozen=True)
class WaitingObstacle:
    team_id: int | None
    customer: str
    owner: str
    obstacle: str
    supporter: str
    requested_at: dt.datetime


@dataclass(frozen=True)
class Overrun:
    team_id: int | None
    pipeline: str
    stage: str
    count: int


@dataclass(frozen=True)
class Intel:
    team_id: int | None
    competitor: str | None
    text: str
    member: str
    customer: str | None
    reported_at: dt.datetime


@dataclass(frozen=True)
class FailedObstacle:
    team_id: int | None
    obstacle: str
    count: int


async def ignored_alerts(session: AsyncSession, since: dt.datetime, as_of: dt.datetime) -> list[IgnoredAlert]:
    """Alert episodes marked ignored during the week (who, which customer, since when)."""
    owner = aliased(Member)
    rows = await session.execute(
        select(owner.team_id, owner.name, func.coalesce(Customer.name, ""), Alert.rule,
               func.coalesce(Alert.notified_at, Alert.raised_at))
        .select_from(Alert)
        .outerjoin(Customer, Customer.id == Alert.customer_id)
        .join(owner, owner.id == func.coalesce(Alert.member_id, Customer.owner_id))
        .where(Alert.status == AlertStatus.IGNORED, Alert.closed_at > _instant(since), Alert.closed_at <= _instant(as_of))
        .order_by(func.coalesce(Alert.notified_at, Alert.raised_at), Alert.id)
    )
    return [IgnoredAlert(*row) for row in rows]


async def waiting_obstacles(session: AsyncSession, as_of: dt.datetime) -> list[WaitingObstacle]:
    """需跨部门支持 requests without a substantive reply at ``as_of``, longest waiting first."""
    owner = aliased(Member)
    supporter = aliased(Member)
    rows = await session.execute(
        select(owner.team_id, Customer.name, owner.name, Obstacle.option, func.coalesce(supporter.name, ""),
               SupportRequest.requested_at)
        .select_from(SupportRequest)
        .join(Customer, Customer.id == SupportRequest.customer_id)
        .join(owner, owner.id == Customer.owner_id)
        .join(Obstacle, Obstacle.id == SupportRequest.obstacle_id)
        .outerjoin(supporter, supporter.id == SupportRequest.supporter_id)
        .where(SupportRequest.requested_at <= _instant(as_of),
               or_(SupportRequest.first_reply_at.is_(None), SupportRequest.first_reply_at > _instant(as_of)))
        .order_by(SupportRequest.requested_at, SupportRequest.id)
    )
    return [WaitingObstacle(*row) for row in rows]


def _days_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "sqlite":
        return func.julianday(end) - func.julianday(start)
    return cast(func.extract("epoch", end - start), Float) / 86400.0


async def overruns(session: AsyncSession, since: dt.datetime, as_of: dt.datetime) -> list[Overrun]:
    """Per team and stage: stays longer than the stage's limit that were running during the week."""
    owner = aliased(Member)
    ended = func.coalesce(StageHistory.left_at, _instant(as_of))
    limit_days = case((Stage.limit_working_days, Stage.limit_days * 1.4), else_=Stage.limit_days)
    rows = await session.execute(
        select(owner.team_id, Pipeline.name, Stage.name, func.count())
        .select_from(StageHistory)
        .join(Stage, Stage.id == StageHistory.stage_id)
        .join(Pipeline, Pipeline.id == Stage.pipeline_id)
        .join(Customer, Customer.id == StageHistory.customer_id)
        .join(owner, owner.id == Customer.owner_id)
        .where(
            Stage.limit_days.is_not(None),
            StageHistory.entered_at <= _instant(as_of),
            or_(StageHistory.left_at.is_(None), StageHistory.left_at > _instant(since)),
            _days_between(session, StageHistory.entered_at, ended) > limit_days,
        )
        .group_by(owner.team_id, Pipeline.name, Stage.position, Stage.name)
        .order_by(func.count().desc(), Pipeline.name, Stage.position)
    )
    return [Overrun(team_id, pipeline, stage, int(count)) for team_id, pipeline, stage, count in rows]


async def competitor_intel(session: AsyncSession, since: dt.datetime, as_of: dt.datetime) -> list[Intel]:
    """竞品动态 reported during the week, oldest first."""
    reporter = aliased(Member)
    owner = aliased(Member)
    rows = await session.execute(
        select(func.coalesce(owner.team_id, reporter.team_id), Competitor.name, CompetitorIntel.text, reporter.name,
               Customer.name, CompetitorIntel.reported_at)
        .select_from(CompetitorIntel)
        .join(reporter, reporter.id == CompetitorIntel.member_id)
        .outerjoin(Competitor, Competitor.id == CompetitorIntel.competitor_id)
        .outerjoin(Customer, Customer.id == CompetitorIntel.customer_id)
        .outerjoin(owner, owner.id == Customer.owner_id)
        .where(CompetitorIntel.reported_at > _instant(since), CompetitorIntel.reported_at <= _instant(as_of))
        .order_by(CompetitorIntel.reported_at, CompetitorIntel.id)
    )
    return [Intel(*row) for row in rows]


async def failed_obstacles(session: AsyncSession, since: dt.datetime, as_of: dt.datetime) -> list[FailedObstacle]:
    """Per team and obstacle type: customers escalated (复盘) this week after that obstacle was answered.

    The obstacle is the customer's latest one answered before the escalation: its answer did not
    get the deal moving, so its entry in the response library is the one to revisit.
    """
    owner = aliased(Member)
    latest = aliased(Obstacle)
    latest_option = (
        select(latest.option)
        .where(latest.customer_id == Escalation.customer_id, latest.answered_at <= Escalation.raised_at)
        .order_by(latest.answered_at.desc(), latest.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    escalated = (
        select(owner.team_id.label("team_id"), latest_option.label("option"), Escalation.customer_id)
        .select_from(Escalation)
        .join(Customer, Customer.id == Escalation.customer_id)
        .join(owner, owner.id == Customer.owner_id)
        .where(Escalation.raised_at > _instant(since), Escalation.raised_at <= _instant(as_of))
        .subquery()
    )
    rows = await session.execute(
        select(escalated.c.team_id, escalated.c.option, func.count(func.distinct(escalated.c.customer_id)))
        .where(escalated.c.option.is_not(None))
        .group_by(escalated.c.team_id, escalated.c.option)
        .order_by(func.count(func.distinct(escalated.c.customer_id)).desc(), escalated.c.option)
    )
    return [FailedObstacle(team_id, option, int(count)) for team_id, option, count in rows]


async def responses_updated_since(session: AsyncSession, since: dt.datetime) -> bool:
    """Some entry of the obstacle response library changed after ``since``."""
    found = await session.scalar(select(ObstacleResponse.id).where(ObstacleResponse.updated_at > _instant(since)).limit(1))
    return found is not None


async def guidance_for(session: AsyncSession, obstacles: list[str]) -> dict[str, str]:
    if not obstacles:
        return {}
    rows = await session.execute(
        select(ObstacleResponse.obstacle, ObstacleResponse.guidance).where(ObstacleResponse.obstacle.in_(obstacles))
    )
    return {obstacle: guidance for obstacle, guidance in rows}

"""预警 (SPEC §5): set-based alert sweeps over the whole organisation, and the episode life cycle.

An alert is an *episode* of one rule for one subject: raised → notified → cleared (the condition
ended) or ignored (notified but not acted on within ``rules.alert_ignore_hours``).

Every rule is evaluated with a handful of statements over all customers at once — an
``INSERT … SELECT`` that raises the missing episodes and an ``UPDATE … WHERE`` that closes the
ones whose condition ended — never a Python loop over customers.

``Alert.open_key`` is ``"<rule>:<subject>"`` while an episode is open and NULL once it is closed.
Its unique constraint means two sweeps (or two replicas) racing can never open the same episode
twice: the losing insert is dropped by ``ON CONFLICT DO NOTHING``.

Decisions worth knowing:

* **Ignored episodes stay open until their condition ends.** ``status`` becomes ``ignored`` (and
  ``closed_at`` records when) but ``open_key`` is kept, so a customer that stays cold for a month
  is one ignored episode — not a fresh reminder every ``alert_ignore_hours``. When the condition
  finally ends, ``open_key`` is released and the status stays ``ignored``.
* **Snoozed customers (暂缓) are paused, not reset.** While ``snoozed_until`` is after today
  (local), nothing is raised for the customer, its raised episodes are not notified and its
  notified ones are not marked ignored — but an episode still clears if its condition ends (a touch
  during the snooze clears the cold alert). From the resume date on, everything runs again and
  the ignore window counts from the resume date, not from the old notification.
* **Working-day limits are compared as dates.** A customer who entered the quote stage on day D
  is red once more than ``quote_working_days`` working days lie in ``(D, today]``. The sweep turns
  that into one cutoff instant (local midnight of the first still-allowed entry date) computed
  with the ``WorkCalendar``, so SQL only compares ``stage_entered_at < cutoff``. Calendar-day
  limits and hour thresholds compare instants.
* **Deliverables.** Evidence kept as a node's deliverable carries ``attributes["deliverable"]``
  (the deliverable's name) and ``attributes["stage_id"]`` (the node). A node counts as delivered
  when the customer has evidence tagged with that node's id — whenever it arrived, because a
  deliverable whose caption names the next node is stored before the move is committed — or,
  for evidence without a node id, a deliverable named in ``Stage.deliverables`` since the
  customer entered the node.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Select,
    String,
    and_,
    case,
    cast,
    distinct,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import AlertStatus, CustomerStatus, ObstacleStatus, Role
from domain.rules.thresholds import RuleThresholds
from domain.rules.workdays import WorkCalendar
from storage.db import dialect_insert, rowcount
from storage.models import (
    Alert,
    Customer,
    Evidence,
    Member,
    Obstacle,
    Stage,
    SupportRequest,
    Team,
    Timestamp,
    Touch,
)

COLD = "cold"  # 标黄: no touch for rules.cold_hours
QUOTE_OVERDUE = "quote_overdue"  # 标红: too long in the quote stage (working days)
MILESTONE_OVERDUE = "milestone_overdue"  # a node's deliverable missing past its limit
OBSTACLE_SLOW = "obstacle_slow"  # cross-department request unanswered
LOW_ACTIVITY = "low_activity"  # few distinct customers followed this week
RULES = (COLD, QUOTE_OVERDUE, MILESTONE_OVERDUE, OBSTACLE_SLOW, LOW_ACTIVITY)

YELLOW = "yellow"
RED = "red"

_ONE_DAY = dt.timedelta(days=1)
_INSERT_COLUMNS = ("rule", "open_key", "customer_id", "member_id", "severity", "status", "details", "raised_at")
_CHUNK = 500  # ids per IN (…) list: well inside every database's bind-parameter limit


@dataclass
class SweepResult:
    """What one sweep changed, per rule."""

    raised: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)  # condition ended (cleared, or an ignored one released)
    ignored: int = 0

    def summary(self) -> str:
        raised = ", ".join(f"{rule} {n}" for rule, n in self.raised.items() if n) or "none"
        closed = ", ".join(f"{rule} {n}" for rule, n in self.closed.items() if n) or "none"
        return f"raised: {raised}; closed: {closed}; ignored: {self.ignored}"


# -- pure helpers ----------------------------------------------------------------------------


def working_cutoff(calendar: WorkCalendar, today: dt.date, limit: int) -> dt.date:
    """The earliest entry date still within ``limit`` working days as of ``today``.

    A subject that entered on day D is over the limit when ``calendar.workdays_between(D, today)
    > limit``; that holds exactly for ``D < working_cutoff(...)``: the cutoff is the
    (limit + 1)-th working day counting back from today (today included).
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    day, seen = today, 0
    # Ten years of holidays could not hide limit + 1 working days; the bound only guards a
    # calendar misconfigured to have none at all.
    for _ in range(3660 + 7 * limit):
        if calendar.is_workday(day):
            seen += 1
            if seen == limit + 1:
                return day
        day -= _ONE_DAY
    return day


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


def week_start(instant: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Monday 00:00 (local) of the week containing ``instant``."""
    local = instant.astimezone(tz).date()
    return local_midnight(local - dt.timedelta(days=local.weekday()), tz)


def iso_week(instant: dt.datetime, tz: ZoneInfo) -> str:
    year, week, _ = instant.astimezone(tz).date().isocalendar()
    return f"{year}-W{week:02d}"


def open_key(rule: str, subject: object) -> str:
    return f"{rule}:{subject}"


# -- SQL building blocks ---------------------------------------------------------------------


def _instant(value: dt.datetime) -> ColumnElement[dt.datetime]:
    # Typed, so SQLite gets the same naive-UTC text the column stores.
    return literal(value, Timestamp())


def _key(rule: str, *parts: ColumnExpressionArgument[Any]) -> ColumnElement[str]:
    expression: ColumnElement[str] = literal(f"{rule}:", String)
    for i, part in enumerate(parts):
        if i:
            expression = expression + literal(":", String)
        expression = expression + cast(part, String)
    return expression


def _not_snoozed(today: dt.date) -> ColumnElement[bool]:
    return or_(Customer.snoozed_until.is_(None), Customer.snoozed_until <= today)


_LIVE_CUSTOMER = Customer.status != CustomerStatus.CLOSED


@dataclass(frozen=True)
class _CustomerRule:
    """A rule whose subject is the customer row itself (one open episode per key)."""

    rule: str
    severity: str
    condition: ColumnElement[bool]  # on Customer, snooze not considered
    key: ColumnElement[str]


def _cold_rule(now: dt.datetime, rules: RuleThresholds) -> _CustomerRule:
    cutoff = now - dt.timedelta(hours=rules.cold_hours)
    silent = or_(
        Customer.last_touch_at < cutoff,
        and_(Customer.last_touch_at.is_(None), Customer.created_at < cutoff),  # new leads: since creation
    )
    return _CustomerRule(COLD, YELLOW, and_(_LIVE_CUSTOMER, silent), _key(COLD, Customer.id))


async def _quote_rule(
    session: AsyncSession, today: dt.date, tz: ZoneInfo, rules: RuleThresholds, calendar: WorkCalendar
) -> _CustomerRule:
    stage_ids = list(await session.scalars(select(Stage.id).where(Stage.name == rules.quote_stage)))
    condition: ColumnElement[bool] = false()
    if stage_ids:
        cutoff = local_midnight(working_cutoff(calendar, today, rules.quote_working_days), tz)
        condition = and_(_LIVE_CUSTOMER, Customer.stage_id.in_(stage_ids), Customer.stage_entered_at < cutoff)
    return _CustomerRule(QUOTE_OVERDUE, RED, condition, _key(QUOTE_OVERDUE, Customer.id))


def deliverable_of(evidence: type[Evidence] = Evidence) -> ColumnElement[str]:
    deliverable: ColumnElement[str] = evidence.attributes["deliverable"].as_string()
    return deliverable


async def _milestone_rule(
    session: AsyncSession, now: dt.datetime, today: dt.date, tz: ZoneInfo, calendar: WorkCalendar
) -> _CustomerRule:
    stages = [
        stage
        for stage in await session.scalars(select(Stage).where(Stage.limit_days.is_not(None), Stage.limit_days >= 0))
        if stage.deliverables
    ]
    overdue_by_stage = []
    for stage in stages:  # a few nodes per pipeline; each is a clause of the one statement
        assert stage.limit_days is not None
        if stage.limit_working_days:
            cutoff = local_midnight(working_cutoff(calendar, today, stage.limit_days), tz)
        else:
            cutoff = now - dt.timedelta(days=stage.limit_days)
        tagged_stage = Evidence.attributes["stage_id"].as_integer()
        delivered = exists().where(
            Evidence.customer_id == Customer.id,
            deliverable_of().is_not(None),
            or_(
                tagged_stage == stage.id,
                and_(
                    tagged_stage.is_(None),
                    Evidence.created_at >= Customer.stage_entered_at,
                    deliverable_of().in_([str(name) for name in stage.deliverables]),
                ),
            ),
        )
        overdue_by_stage.append(
            and_(Customer.stage_id == stage.id, Customer.stage_entered_at < cutoff, ~delivered)
        )
    condition = and_(_LIVE_CUSTOMER, or_(*overdue_by_stage)) if overdue_by_stage else false()
    # The node is part of the subject: moving on to another overdue node is a new episode.
    return _CustomerRule(MILESTONE_OVERDUE, RED, condition, _key(MILESTONE_OVERDUE, Customer.id, Customer.stage_id))


async def _close_ended(session: AsyncSession, rule: str, still_true: Select[Any], now: dt.datetime) -> int:
    """Release the open episodes of ``rule`` whose key is no longer produced by ``still_true``."""
    result = await session.execute(
        update(Alert)
        .where(Alert.rule == rule, Alert.open_key.is_not(None), Alert.open_key.not_in(still_true))
        .values(
            open_key=None,
            closed_at=func.coalesce(Alert.closed_at, _instant(now)),
            status=case((Alert.status == AlertStatus.IGNORED, AlertStatus.IGNORED.value), else_=AlertStatus.CLEARED.value),
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) or 0


def _new_episodes(
    rule: str, severity: str, key: ColumnElement[str], customer_id: Any, member_id: Any, now: dt.datetime
) -> list[ColumnElement[Any]]:
    return [
        literal(rule, String),
        key,
        customer_id,
        member_id,
        literal(severity, String),
        literal(AlertStatus.RAISED.value, String),
        literal({}, Alert.__table__.c.details.type),
        _instant(now),
    ]


async def _raise_customer_rule(session: AsyncSession, rule: _CustomerRule, now: dt.datetime, today: dt.date) -> int:
    source = select(*_new_episodes(rule.rule, rule.severity, rule.key, Customer.id, Customer.owner_id, now)).where(
        rule.condition,
        _not_snoozed(today),
        # Checked first so the common case (already open) costs an index probe, not a conflict.
        ~exists().where(Alert.open_key == rule.key),
    )
    statement = (
        dialect_insert(session)(Alert).from_select(_INSERT_COLUMNS, source).on_conflict_do_nothing(index_elements=["open_key"])
    )
    result = await session.execute(statement)
    return rowcount(result) or 0


# -- the obstacle rule: subject is the support request -------------------------------------------


def _obstacle_condition(now: dt.datetime, rules: RuleThresholds) -> ColumnElement[bool]:
    return and_(
        SupportRequest.first_reply_at.is_(None),
        SupportRequest.requested_at < now - dt.timedelta(hours=rules.obstacle_slow_hours),
        Obstacle.status != ObstacleStatus.RESOLVED,
        _LIVE_CUSTOMER,
    )


def _support_requests() -> Select[Any]:
    return (
        select()
        .select_from(SupportRequest)
        .join(Obstacle, Obstacle.id == SupportRequest.obstacle_id)
        .join(Customer, Customer.id == SupportRequest.customer_id)
    )


async def _sweep_obstacles(
    session: AsyncSession, now: dt.datetime, today: dt.date, rules: RuleThresholds
) -> tuple[int, int]:
    key = _key(OBSTACLE_SLOW, SupportRequest.id)
    condition = _obstacle_condition(now, rules)
    closed = await _close_ended(session, OBSTACLE_SLOW, _support_requests().add_columns(key).where(condition), now)
    source = (
        _support_requests()
        .add_columns(*_new_episodes(OBSTACLE_SLOW, YELLOW, key, SupportRequest.customer_id, SupportRequest.requester_id, now))
        .where(condition, _not_snoozed(today), ~exists().where(Alert.open_key == key))
    )
    result = await session.execute(
        dialect_insert(session)(Alert).from_select(_INSERT_COLUMNS, source).on_conflict_do_nothing(index_elements=["open_key"])
    )
    return rowcount(result) or 0, closed


# -- low weekly activity: subject is the rep and the ISO week --------------------------------------


def _distinct_customers_touched(member_id: Any, since: dt.datetime, until: dt.datetime) -> Select[Any]:
    return select(func.count(distinct(Touch.customer_id))).where(
        Touch.member_id == member_id,
        Touch.undone_at.is_(None),
        Touch.occurred_at >= since,
        Touch.occurred_at <= until,
    )


async def _sweep_low_activity(session: AsyncSession, now: dt.datetime, tz: ZoneInfo) -> int:
    """Close this week's episodes whose rep caught up, and every episode of a past week."""
    start = week_start(now, tz)
    caught_up = await session.execute(
        update(Alert)
        .where(
            Alert.rule == LOW_ACTIVITY,
            Alert.open_key.is_not(None),
            Alert.status.in_([AlertStatus.RAISED, AlertStatus.NOTIFIED]),
            Alert.details["week"].as_string() == iso_week(now, tz),
            _distinct_customers_touched(Alert.member_id, start, now).scalar_subquery()
            >= Alert.details["threshold"].as_float(),
        )
        .values(open_key=None, closed_at=_instant(now), status=AlertStatus.CLEARED.value)
        .execution_options(synchronize_session=False)
    )
    week_over = await session.execute(
        update(Alert)
        .where(
            Alert.rule == LOW_ACTIVITY,
            Alert.open_key.is_not(None),
            Alert.details["week"].as_string() != iso_week(now, tz),
        )
        .values(
            open_key=None,
            closed_at=func.coalesce(Alert.closed_at, _instant(now)),
            # The week is over without the rep catching up: a suggestion they got was not acted
            # on; one never sent (held overnight, then the week ended) just lapses.
            status=case(
                (Alert.status == AlertStatus.RAISED, AlertStatus.CLEARED.value), else_=AlertStatus.IGNORED.value
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return (rowcount(caught_up) or 0) + (rowcount(week_over) or 0)


@dataclass(frozen=True)
class LowActivity:
    member_id: int
    count: int
    team_mean: float


async def raise_low_activity(
    session: AsyncSession, *, as_of: dt.datetime, now: dt.datetime, tz: ZoneInfo, ratio: float
) -> list[LowActivity]:
    """Raise one episode per rep (per ISO week) whose distinct customers touched this week — Monday
    00:00 local up to ``as_of`` — are fewer than ``ratio`` × their team's mean. Returns the new ones.
    """
    start = week_start(as_of, tz)
    week = iso_week(as_of, tz)
    touched = (
        select(
            Member.id.label("member_id"),
            Member.team_id.label("team_id"),
            func.count(distinct(Touch.customer_id)).label("n"),
        )
        .select_from(Member)
        .outerjoin(
            Touch,
            and_(
                Touch.member_id == Member.id,
                Touch.undone_at.is_(None),
                Touch.occurred_at >= start,
                Touch.occurred_at <= as_of,
            ),
        )
        .where(Member.role == Role.REP, Member.active.is_(True), Member.team_id.is_not(None))
        .group_by(Member.id, Member.team_id)
        .subquery()
    )
    per_rep = select(
        touched.c.member_id,
        touched.c.n,
        func.avg(touched.c.n).over(partition_by=touched.c.team_id).label("mean"),
    ).subquery()
    already = select(Alert.member_id).where(Alert.rule == LOW_ACTIVITY, Alert.details["week"].as_string() == week)
    rows = (
        await session.execute(
            select(per_rep.c.member_id, per_rep.c.n, per_rep.c.mean).where(
                per_rep.c.n < per_rep.c.mean * ratio, per_rep.c.member_id.not_in(already)
            )
        )
    ).all()
    if not rows:
        return []
    values = [
        {
            "rule": LOW_ACTIVITY,
            "open_key": open_key(LOW_ACTIVITY, f"{row.member_id}:{week}"),
            "customer_id": None,
            "member_id": row.member_id,
            "severity": YELLOW,
            "status": AlertStatus.RAISED,
            "details": {
                "week": week,
                "week_start": start.isoformat(),
                "count": int(row.n),
                "team_mean": round(float(row.mean), 2),
                "threshold": float(row.mean) * ratio,
            },
            "raised_at": now,
        }
        for row in rows
    ]
    inserted = await session.execute(
        dialect_insert(session)(Alert)
        .values(values)
        .on_conflict_do_nothing(index_elements=["open_key"])
        .returning(Alert.member_id)
    )
    fresh = set(inserted.scalars())
    return [LowActivity(row.member_id, int(row.n), float(row.mean)) for row in rows if row.member_id in fresh]


# -- ignoring ----------------------------------------------------------------------------------


async def mark_ignored(session: AsyncSession, *, now: dt.datetime, tz: ZoneInfo, hours: int) -> int:
    """Notified episodes not acted on within ``hours`` become ignored (snoozed time not counted)."""
    window_start = now - dt.timedelta(hours=hours)
    # Resumed at local midnight of snoozed_until: that is inside the window from this date on.
    resumed_by = window_start.astimezone(tz).date()
    paused = select(Customer.id).where(Customer.snoozed_until > resumed_by)
    result = await session.execute(
        update(Alert)
        .where(
            Alert.status == AlertStatus.NOTIFIED,
            Alert.open_key.is_not(None),
            Alert.notified_at < window_start,
            or_(Alert.customer_id.is_(None), Alert.customer_id.not_in(paused)),
        )
        .values(status=AlertStatus.IGNORED.value, closed_at=_instant(now))
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) or 0


# -- the sweep ---------------------------------------------------------------------------------


async def sweep(
    session: AsyncSession, *, now: dt.datetime, tz: ZoneInfo, rules: RuleThresholds, calendar: WorkCalendar
) -> SweepResult:
    """Evaluate every rule over the whole organisation as of ``now``.

    Order matters: episodes whose condition ended are closed first, then missing ones are raised,
    then notified ones past their window are marked ignored (a condition that ended wins).
    """
    today = now.astimezone(tz).date()
    result = SweepResult()
    customer_rules = [
        _cold_rule(now, rules),
        await _quote_rule(session, today, tz, rules, calendar),
        await _milestone_rule(session, now, today, tz, calendar),
    ]
    for rule in customer_rules:
        still_true = select(rule.key).where(rule.condition)
        result.closed[rule.rule] = await _close_ended(session, rule.rule, still_true, now)
        result.raised[rule.rule] = await _raise_customer_rule(session, rule, now, today)
    result.raised[OBSTACLE_SLOW], result.closed[OBSTACLE_SLOW] = await _sweep_obstacles(session, now, today, rules)
    result.closed[LOW_ACTIVITY] = await _sweep_low_activity(session, now, tz)
    result.ignored = await mark_ignored(session, now=now, tz=tz, hours=rules.alert_ignore_hours)
    return result


# -- reading episodes for notification ---------------------------------------------------------


@dataclass(frozen=True)
class PendingAlert:
    """A raised episode waiting to be told, with what the message needs."""

    id: int
    rule: str
    open_key: str
    details: dict[str, Any]
    rep_id: int  # the customer's current owner (or the rep the episode is about)
    rep_name: str
    manager_id: int | None
    customer_id: int | None
    customer_name: str
    stage_id: int | None
    stage_name: str
    stage_entered_at: dt.datetime | None
    last_touch_at: dt.datetime | None
    created_at: dt.datetime | None

    @property
    def subject(self) -> str:
        return self.open_key.split(":", 1)[1]


async def pending_notifications(
    session: AsyncSession, *, today: dt.date, rules: Collection[str] = RULES
) -> list[PendingAlert]:
    """Raised, open episodes of ``rules`` — except those of snoozed customers (paused)."""
    rep = Member
    rows = await session.execute(
        select(
            Alert.id,
            Alert.rule,
            Alert.open_key,
            Alert.details,
            rep.id.label("rep_id"),
            rep.name.label("rep_name"),
            Team.manager_id,
            Customer.id.label("customer_id"),
            Customer.name.label("customer_name"),
            Stage.id.label("stage_id"),
            Stage.name.label("stage_name"),
            Customer.stage_entered_at,
            Customer.last_touch_at,
            Customer.created_at,
        )
        .select_from(Alert)
        .outerjoin(Customer, Customer.id == Alert.customer_id)
        .join(rep, rep.id == func.coalesce(Customer.owner_id, Alert.member_id))
        .outerjoin(Team, Team.id == rep.team_id)
        .outerjoin(Stage, Stage.id == Customer.stage_id)
        .where(
            Alert.status == AlertStatus.RAISED,
            Alert.open_key.is_not(None),
            Alert.rule.in_(list(rules)),
            or_(Alert.customer_id.is_(None), _not_snoozed(today)),
        )
        .order_by(Alert.id)
    )
    return [PendingAlert(**row._asdict()) for row in rows]


async def reps_reminded_since(session: AsyncSession, rule: str, since: dt.datetime) -> set[int]:
    """Reps who were already sent a ``rule`` reminder at or after ``since`` (the daily batch)."""
    rows = await session.scalars(
        select(func.coalesce(Customer.owner_id, Alert.member_id))
        .distinct()
        .select_from(Alert)
        .outerjoin(Customer, Customer.id == Alert.customer_id)
        .where(Alert.rule == rule, Alert.notified_at >= since)
    )
    return {member_id for member_id in rows if member_id is not None}


async def mark_notified(session: AsyncSession, ids: Iterable[int], now: dt.datetime) -> set[int]:
    """raised → notified; returns the ids this call moved (a concurrent notifier gets the rest)."""
    moved: set[int] = set()
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), _CHUNK):
        result = await session.execute(
            update(Alert)
            .where(Alert.id.in_(wanted[start : start + _CHUNK]), Alert.status == AlertStatus.RAISED)
            .values(status=AlertStatus.NOTIFIED.value, notified_at=_instant(now))
            .returning(Alert.id)
            .execution_options(synchronize_session=False)
        )
        moved.update(result.scalars())
    return moved


async def stages_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Stage]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {stage.id: stage for stage in await session.scalars(select(Stage).where(Stage.id.in_(wanted)))}


@dataclass(frozen=True)
class SlowRequest:
    id: int
    requested_at: dt.datetime
    requester_name: str
    supporter_name: str


async def support_requests_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, SlowRequest]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    requester, supporter = Member.__table__.alias("requester"), Member.__table__.alias("supporter")
    rows = await session.execute(
        select(SupportRequest.id, SupportRequest.requested_at, requester.c.name, supporter.c.name)
        .join(requester, requester.c.id == SupportRequest.requester_id)
        .outerjoin(supporter, supporter.c.id == SupportRequest.supporter_id)
        .where(SupportRequest.id.in_(wanted))
    )
    return {row[0]: SlowRequest(row[0], row[1], row[2], row[3] or "") for row in rows}


@dataclass(frozen=True)
class Suggestion:
    customer_id: int
    name: str
    stage_name: str
    value: int
    last_touch_at: dt.datetime | None


async def valuable_untouched(
    session: AsyncSession, owner_ids: Sequence[int], *, since: dt.datetime, today: dt.date, per_owner: int = 5
) -> dict[int, list[Suggestion]]:
    """Per rep: their most valuable live customers not touched since ``since`` (snoozed ones left out)."""
    if not owner_ids:
        return {}
    ranked = (
        select(
            Customer.id,
            Customer.owner_id,
            Customer.name,
            Customer.value,
            Customer.last_touch_at,
            Stage.name.label("stage_name"),
            func.row_number()
            .over(partition_by=Customer.owner_id, order_by=(Customer.value.desc(), Customer.id))
            .label("rank"),
        )
        .join(Stage, Stage.id == Customer.stage_id)
        .where(
            Customer.owner_id.in_(list(owner_ids)),
            _LIVE_CUSTOMER,
            _not_snoozed(today),
            or_(Customer.last_touch_at.is_(None), Customer.last_touch_at < since),
        )
        .subquery()
    )
    rows = await session.execute(select(ranked).where(ranked.c.rank <= per_owner).order_by(ranked.c.owner_id, ranked.c.rank))
    result: dict[int, list[Suggestion]] = defaultdict(list)
    for row in rows:
        result[row.owner_id].append(Suggestion(row.id, row.name, row.stage_name, row.value, row.last_touch_at))
    return dict(result)


async def open_episodes(session: AsyncSession, rule: str | None = None) -> list[Alert]:
    """Open episodes (for /今日, reports and tests)."""
    query = select(Alert).where(Alert.open_key.is_not(None))
    if rule is not None:
        query = query.where(Alert.rule == rule)
    return list(await session.scalars(query.order_by(Alert.id)))

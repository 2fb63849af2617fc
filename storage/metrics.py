"""动作健康度 (SPEC §8.2): the process metrics for every rep, team and the organisation at once.

Each figure is a handful of set-based statements over the whole organisation (grouped by the
customer's owner), never a loop over customers; ``domain.metrics`` turns the sums into figures.

Decisions worth knowing:

* **Ownership.** Every figure belongs to the customer's owner at the as-of instant (``customer_owners``,
  written with every change of owner; a customer with no rows there has had one owner) and that
  owner's team at that instant (``member_teams``). A customer moved to another rep takes its touches,
  stage history and requests with it from the move on: before it they count for the old owner; a rep
  moved to another team takes their customers' figures along from the move on. The stage
  distribution is today's stages, per the owner and team at as-of.
* **Undone touches** count when they were undone after ``as_of`` (they existed then).
* **Local days** (action completion, days overdue) are the organisation's time zone ``tz``; the
  windows of the other figures are spans of instants and need no zone.
* **Crossing** uses each customer's own pipeline: its ``crossing_from`` stage's first entry forms
  the cohort; reaching ``crossing_to`` or any later stage of that pipeline within 7×24 h after
  that entry crosses. Customers of a pipeline without crossing stages are in no cohort.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Integer,
    and_,
    case,
    cast,
    column,
    distinct,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    values,
)
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import aliased
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Select, Subquery, operators
from sqlalchemy.sql.elements import UnaryExpression

from domain import metrics as m
from domain.enums import CustomerStatus, Role
from storage.db import dialect_insert
from storage.models import (
    Alert,
    Customer,
    CustomerOwner,
    JobRun,
    Member,
    MemberTeam,
    Pipeline,
    Stage,
    StageHistory,
    SupportRequest,
    Team,
    Timestamp,
    Touch,
)


@dataclass
class _Owned:
    """Per-owner sums, before they are added up per team and for the organisation."""

    depth_channels: int = 0
    depth_customers: int = 0
    below_2: list[tuple[str, str]] = field(default_factory=list)  # (customer, owner) pairs
    cohort: int = 0
    crossed: int = 0
    seconds: int = 0
    resolved: int = 0
    open_requests: list[m.OpenRequest] = field(default_factory=list)

    def add(self, other: _Owned) -> None:
        self.depth_channels += other.depth_channels
        self.depth_customers += other.depth_customers
        self.below_2 += other.below_2
        self.cohort += other.cohort
        self.crossed += other.crossed
        self.seconds += other.seconds
        self.resolved += other.resolved
        self.open_requests += other.open_requests


@dataclass(frozen=True)
class _Person:
    id: int
    code: str
    name: str
    role: Role
    team_id: int | None
    active: bool


# -- dialect helpers ---------------------------------------------------------------------------


def _instant(value: dt.datetime) -> ColumnElement[dt.datetime]:
    return literal(value, Timestamp())


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _plus(session: AsyncSession, instant: ColumnElement[Any], delta: dt.timedelta) -> ColumnElement[Any]:
    """``instant + delta`` in SQL, comparable with stored instants on both databases."""
    seconds = int(delta.total_seconds())
    if _dialect(session) == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff'; %f gives milliseconds, so pad to microseconds.
        return func.strftime("%Y-%m-%d %H:%M:%f", instant, f"+{seconds} seconds").op("||")(literal("000"))
    return instant + literal(delta)


def _seconds_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[int]:
    """Whole seconds from ``start`` to ``end``."""
    if _dialect(session) == "sqlite":
        return cast(func.round((func.julianday(end) - func.julianday(start)) * 86400), Integer)
    return cast(func.round(func.extract("epoch", end - start)), BigInteger)


def _scan_order(session: AsyncSession, column: Any) -> Any:
    """``column`` as SQLite's planner may not use for an index range (``+column``); as is elsewhere.

    With a range on ``occurred_at`` SQLite prefers a skip-scan of ``ix_touches_member_time`` and then
    sorts; a full pass over the covering ``ix_touches_customer_channel`` in group order is twice as fast.
    """
    if _dialect(session) == "sqlite":
        return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)
    return column


def _existed(touch: Any, as_of: dt.datetime) -> ColumnElement[bool]:
    """The touch existed at ``as_of``: logged by then and not undone by then."""
    return and_(touch.occurred_at <= _instant(as_of), or_(touch.undone_at.is_(None), touch.undone_at > _instant(as_of)))


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


# -- the figures -----------------------------------------------------------------------------


async def compute_figures(
    session: AsyncSession,
    *,
    as_of: dt.datetime,
    tz: ZoneInfo,
    team_ids: Collection[int] | None = None,
    details: bool = True,
    compare_with: dt.datetime | None = None,
    parallel: bool = False,
    on_details: Callable[[m.Figures], None] | None = None,
) -> m.Figures:
    """Every metric as of ``as_of`` for the teams ``team_ids`` (all teams when None).

    ``details=False`` computes only the three health metrics. ``compare_with`` adds those three as
    of an earlier instant (``Figures.previous``, the digest's "change since the previous week"),
    sharing the scan of the touches.

    ``parallel=True`` runs the independent statements at once, each group on its own read-only
    connection (the database works on them in parallel: SQLite and asyncpg release the GIL). Use it
    only when this session has written nothing the figures should see: the other connections see
    committed data only. On an in-memory SQLite database the statements run one after another.

    ``on_details`` is called as soon as the stage distribution and the completion trend are known,
    with figures holding only those (the digest draws its charts meanwhile); the health metrics may
    still be being computed then.
    """
    teams = list(await session.scalars(select(Team).order_by(Team.key)))
    if team_ids is not None:
        wanted = set(team_ids)
        teams = [team for team in teams if team.id in wanted]
    people = {
        row.id: _Person(row.id, row.code, row.name, row.role, row.team_id, row.active)
        for row in await session.execute(
            select(Member.id, Member.code, Member.name, Member.role, Member.team_id, Member.active)
        )
    }
    # Every team asked for (the 09:00 digest): no owner filter to add to each statement.
    all_teams = team_ids is None or len(teams) == await session.scalar(select(func.count()).select_from(Team))
    scope = None if all_teams else [team.id for team in teams]
    instants = [as_of] + ([compare_with] if compare_with is not None else [])
    owners = await _owners(session, instants)
    moves = await _team_moves(session, instants)
    people_at = {instant: _with_teams(people, moves[instant]) for instant in instants}
    if scope is not None:
        in_scope: list[int] | None = sorted({
            person.id for instant in instants for person in people_at[instant].values() if person.team_id in scope
        })
    else:
        in_scope = None
    owned_at: list[dict[int, _Owned]] = [defaultdict(_Owned) for _ in instants]
    days = m.trend_days(as_of.astimezone(tz).date())
    extra = _Details(days=days)

    async def depth(s: AsyncSession) -> None:
        await _touch_depth(s, instants, in_scope, owners, owned_at, people, names=details)

    async def crossing(s: AsyncSession) -> None:
        await _crossing(s, instants, in_scope, owners, owned_at)

    async def resolution(s: AsyncSession) -> None:
        for instant, owned in zip(instants, owned_at, strict=True):
            await _resolution(s, instant, in_scope, owners, owned, people)

    pending = {"completion", "stages"}

    def known(part: str) -> None:
        pending.discard(part)
        if not pending and on_details is not None:
            on_details(_assemble(as_of, teams, people_at[as_of], {}, extra, whole_org=team_ids is None))

    async def completion(s: AsyncSession) -> None:
        extra.completion = await _action_completion(s, as_of, tz, days, in_scope, owners, moves[as_of])
        known("completion")

    async def overdue(s: AsyncSession) -> None:
        extra.overdue = await _overdue(s, as_of, tz, in_scope, owners, moves[as_of], people)

    async def stages(s: AsyncSession) -> None:
        extra.stages = await _stage_distribution(s, as_of, in_scope, owners, moves[as_of])
        known("stages")

    # Three lanes of about equal cost; each adds to its own figures (``owned_at`` entries are added
    # to per owner, never replaced), so the order within and across lanes does not matter.
    lanes: list[list[Callable[[AsyncSession], Awaitable[None]]]] = (
        [[depth], [completion, resolution], [stages, crossing, overdue]] if details
        else [[depth], [crossing, resolution]]
    )
    await _run_lanes(session, lanes, parallel)
    previous = None
    if compare_with is not None:
        previous = _assemble(compare_with, teams, people_at[compare_with], owned_at[1], None, whole_org=team_ids is None)
    figures = _assemble(as_of, teams, people_at[as_of], owned_at[0], extra if details else None, whole_org=team_ids is None)
    return replace(figures, previous=previous)


_READERS: dict[URL, AsyncEngine] = {}


def _readers(session: AsyncSession) -> async_sessionmaker[AsyncSession] | None:
    """Sessions on connections of their own to the session's database; None for in-memory SQLite.

    SQLite's engine keeps one pooled connection (held by the caller's transaction) and PostgreSQL's
    pool is the service's: these come from an engine without a pool, one per database, so a
    connection lives only as long as its lane.
    """
    url = session.get_bind().engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    engine = _READERS.get(url)
    if engine is None:
        engine = _READERS[url] = create_async_engine(url, poolclass=NullPool, hide_parameters=True)
    return async_sessionmaker(engine, expire_on_commit=False)


async def _run_lanes(
    session: AsyncSession, lanes: list[list[Callable[[AsyncSession], Awaitable[None]]]], parallel: bool
) -> None:
    readers = _readers(session) if parallel else None
    if readers is None:
        for lane in lanes:
            for step in lane:
                await step(session)
        return

    async def run(lane: list[Callable[[AsyncSession], Awaitable[None]]]) -> None:
        async with readers() as reader:
            for step in lane:
                await step(reader)

    await asyncio.gather(*(run(lane) for lane in lanes))


@dataclass
class _Details:
    days: list[dt.date]
    completion: dict[int | None, dict[dt.date, tuple[int, int]]] = field(default_factory=dict)
    overdue: dict[int | None, list[m.Overdue]] = field(default_factory=dict)
    stages: dict[int | None, list[m.StageCount]] = field(default_factory=dict)


def _assemble(
    as_of: dt.datetime, teams: list[Team], people: dict[int, _Person], owned: dict[int, _Owned],
    extra: _Details | None, *, whole_org: bool,
) -> m.Figures:
    def figures(key: str, name: str, owner_ids: list[int], team_id: int | None, reps: tuple[m.RepFigures, ...]) -> m.TeamFigures:
        total = _Owned()
        for owner_id in owner_ids:
            if owner_id in owned:
                total.add(owned[owner_id])
        completion: tuple[m.DayCompletion, ...] = ()
        team_overdue: list[m.Overdue] = []
        team_stages: list[m.StageCount] = []
        if extra is not None:
            team_days = _sum_days(extra.completion) if key == "*" else extra.completion.get(team_id, {})
            completion = tuple(m.DayCompletion(d, *team_days.get(d, (0, 0))) for d in extra.days)
            if key == "*":
                team_overdue = sorted((o for items in extra.overdue.values() for o in items), key=m.overdue_order)
                team_stages = _merge_stages(extra.stages)
            else:
                team_overdue = extra.overdue.get(team_id, [])
                team_stages = extra.stages.get(team_id, [])
        return m.TeamFigures(
            key=key,
            name=name,
            touch_depth=_depth(total),
            stage_crossing=m.StageCrossing(total.cohort, total.crossed),
            obstacle_resolution=_resolution_of(total),
            action_completion=completion,
            overdue_top5=tuple(team_overdue[: m.TOP_OVERDUE]),
            reps=reps,
            stages=tuple(team_stages),
            customers=sum(s.customers for s in team_stages),
        )

    members_of: dict[int | None, list[_Person]] = defaultdict(list)
    for person in people.values():
        members_of[person.team_id].append(person)
    team_figures = []
    for team in teams:
        members = members_of.get(team.id, [])
        shown = [p for p in members if (p.role is Role.REP and p.active) or p.id in owned]
        reps = tuple(
            m.RepFigures(p.code, p.name, _depth(owned.get(p.id, _Owned())),
                         m.StageCrossing(owned.get(p.id, _Owned()).cohort, owned.get(p.id, _Owned()).crossed),
                         _resolution_of(owned.get(p.id, _Owned())))
            for p in sorted(shown, key=lambda p: p.code)
        )
        team_figures.append(figures(team.key, team.name, [p.id for p in members], team.id, reps))
    org = figures("*", "全公司", list(people), None, ()) if whole_org else m.TeamFigures("*", "全公司")
    return m.Figures(as_of=as_of, teams=tuple(team_figures), org=org)


def _depth(total: _Owned) -> m.TouchDepth:
    names = tuple(name for name, _ in sorted(total.below_2))
    return m.TouchDepth(total.depth_channels, total.depth_customers, names)


def _resolution_of(total: _Owned) -> m.ObstacleResolution:
    waiting = tuple(sorted(total.open_requests, key=lambda r: (r.requested_at, r.customer)))
    return m.ObstacleResolution(total.seconds, total.resolved, waiting)


def _sum_days(completion: dict[int | None, dict[dt.date, tuple[int, int]]]) -> dict[dt.date, tuple[int, int]]:
    out: dict[dt.date, tuple[int, int]] = {}
    for per_day in completion.values():
        for day, (due, done) in per_day.items():
            before = out.get(day, (0, 0))
            out[day] = (before[0] + due, before[1] + done)
    return out


def _merge_stages(stages: dict[int | None, list[m.StageCount]]) -> list[m.StageCount]:
    totals: dict[tuple[str, str], int] = {}
    order: dict[tuple[str, str], tuple[str, int]] = {}
    for items in stages.values():
        for i, item in enumerate(items):
            key = (item.pipeline, item.stage)
            totals[key] = totals.get(key, 0) + item.customers
            order.setdefault(key, (item.pipeline, i))
    return [m.StageCount(p, s, totals[(p, s)]) for p, s in sorted(totals, key=lambda k: order[k])]


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class _Owners:
    """Each customer's owner at each instant: its current owner unless the owner changed after it.

    ``moved[instant]`` lists (customer, owner then) for the customers whose owner changed after the
    instant — none at all in the usual case, when no statement needs the extra join.
    """

    moved: dict[dt.datetime, Subquery | None]

    def at(self, instant: dt.datetime) -> ColumnElement[Any]:
        moved = self.moved.get(instant)
        return Customer.owner_id.expression if moved is None else func.coalesce(moved.c.owner_id, Customer.owner_id)

    def join(self, query: _Query, *instants: dt.datetime) -> _Query:
        """``query`` (which reads ``Customer``) with what the owners at ``instants`` need."""
        for instant in instants:
            moved = self.moved.get(instant)
            if moved is not None:
                query = query.outerjoin(moved, moved.c.customer_id == Customer.id)
        return query

    def scope(self, members: list[int] | None, *instants: dt.datetime) -> ColumnElement[bool]:
        """Customers whose owner at one of ``instants`` is one of ``members`` (all when None)."""
        if members is None:
            return literal(True)
        return or_(*(self.at(instant).in_(members) for instant in instants))


async def _team_moves(session: AsyncSession, instants: list[dt.datetime]) -> dict[dt.datetime, dict[int, int | None]]:
    """Per instant, the team then of each member whose team changed after it (others: the current team)."""
    moved = select(MemberTeam.member_id).where(MemberTeam.since > _instant(min(instants)))
    history: dict[int, list[tuple[dt.datetime, int, int | None]]] = defaultdict(list)
    for member_id, since, row_id, team_id in await session.execute(
        select(MemberTeam.member_id, MemberTeam.since, MemberTeam.id, MemberTeam.team_id)
        .where(MemberTeam.member_id.in_(moved))
        .order_by(MemberTeam.member_id, MemberTeam.since, MemberTeam.id)
    ):
        history[member_id].append((since, row_id, team_id))
    out: dict[dt.datetime, dict[int, int | None]] = {}
    for instant in instants:
        out[instant] = {}
        for member_id, rows in history.items():
            if rows[-1][0] > instant:
                before = [row for row in rows if row[0] <= instant]
                out[instant][member_id] = (before[-1] if before else rows[0])[2]
    return out


def _with_teams(people: dict[int, _Person], moves: dict[int, int | None]) -> dict[int, _Person]:
    if not moves:
        return people
    return {key: replace(person, team_id=moves[key]) if key in moves else person for key, person in people.items()}


@dataclass(frozen=True)
class _TeamsThen:
    """Each member's team at an instant: the current one unless it changed after the instant."""

    moves: dict[int, int | None]

    @functools.cached_property
    def _then(self) -> Any:
        return values(column("member_id", Integer), column("team_id", Integer), name="teams_then").data(
            [(member_id, team_id or 0) for member_id, team_id in sorted(self.moves.items())]  # 0: no team then
        ).cte("teams_then")

    @functools.cached_property
    def team(self) -> ColumnElement[Any]:
        if not self.moves:
            return Member.team_id.expression
        no_team: ColumnElement[int] = literal_column("0", Integer())  # not a bound parameter: GROUP BY repeats the expression as is
        return case((self._then.c.member_id.is_not(None), func.nullif(self._then.c.team_id, no_team)),
                    else_=Member.team_id)

    def join(self, query: _Query) -> _Query:
        """``query`` (which joins ``Member``) with what ``team`` needs."""
        return query if not self.moves else query.outerjoin(self._then, self._then.c.member_id == Member.id)


async def _owners(session: AsyncSession, instants: list[dt.datetime]) -> _Owners:
    changed = await session.scalar(select(exists().where(CustomerOwner.since > _instant(min(instants)))))
    if not changed:
        return _Owners(dict.fromkeys(instants))
    moved: dict[dt.datetime, Subquery | None] = {}
    for i, instant in enumerate(instants):
        row = aliased(CustomerOwner)
        before = row.since <= _instant(instant)
        # The latest row at or before the instant; with none, the first row (the owner from creation).
        rank = func.row_number().over(
            partition_by=row.customer_id,
            order_by=(case((before, 0), else_=1), case((before, row.since), else_=None).desc(), row.since,
                      case((before, -row.id), else_=row.id)),
        )
        later = select(CustomerOwner.customer_id).where(CustomerOwner.since > _instant(instant))
        ranked = select(row.customer_id, row.owner_id, rank.label("rank")).where(row.customer_id.in_(later)).subquery()
        moved[instant] = (
            select(ranked.c.customer_id, ranked.c.owner_id).where(ranked.c.rank == 1).subquery(f"owner_at_{i}")
        )
    return _Owners(moved)


async def _touch_depth(
    session: AsyncSession, instants: list[dt.datetime], scope: list[int] | None, owners: _Owners,
    owned_at: list[dict[int, _Owned]], people: dict[int, _Person], *, names: bool = True,
) -> None:
    """Touch depth as of each of ``instants`` in one scan of the touches (names: the first one's below 2).

    Two steps, both set-based: the window's touches grouped by (customer, channel) — read in
    ``ix_touches_customer_channel`` order, so no sort — with a "used in window i" flag each; then per
    customer, the distinct channels are the count of its depth channels flagged, and "touched" any flag.
    """
    windows = [(*m.touch_depth_window(instant), instant) for instant in instants]
    occurred = _scan_order(session, Touch.occurred_at)
    per_channel = (
        select(Touch.customer_id, Touch.channel, *(
            func.max(case((and_(Touch.occurred_at > _instant(start), Touch.occurred_at <= _instant(end),
                                or_(Touch.undone_at.is_(None), Touch.undone_at > _instant(instant))), 1), else_=0))
            .label(f"used_{i}")
            for i, (start, end, instant) in enumerate(windows)
        ))
        .where(occurred > _instant(min(w[0] for w in windows)), occurred <= _instant(max(w[1] for w in windows)))
        .group_by(Touch.customer_id, Touch.channel)
        .subquery()
    )
    depth_channel = per_channel.c.channel.in_([channel.value for channel in m.DEPTH_CHANNELS])
    per_window = []
    for i in range(len(windows)):
        used = per_channel.c[f"used_{i}"]
        per_window += [func.sum(case((and_(used == 1, depth_channel), 1), else_=0)).label(f"channels_{i}"),
                       func.max(used).label(f"touched_{i}")]
    per_customer = select(per_channel.c.customer_id, *per_window).group_by(per_channel.c.customer_id).subquery()
    # One pass: customers grouped by owner (at each instant) and channel counts; those under 2 named.
    keys: list[Any] = []
    for i, instant in enumerate(instants):
        keys += [owners.at(instant), per_customer.c[f"channels_{i}"], per_customer.c[f"touched_{i}"]]
    if names:
        below = and_(per_customer.c.touched_0 == 1, per_customer.c.channels_0 < 2)
        keys.append(case((below, Customer.name), else_=None))
    query = select(*keys, func.count()).join(per_customer, per_customer.c.customer_id == Customer.id)
    rows = await session.execute(
        owners.join(query, *instants).where(owners.scope(scope, *instants)).group_by(*keys)
    )
    for row in rows:
        count = int(row[-1])
        for i, owned in enumerate(owned_at):
            owner_id, channels, touched = row[3 * i], row[3 * i + 1], row[3 * i + 2]
            if touched:
                owned[owner_id].depth_channels += int(channels) * count
                owned[owner_id].depth_customers += count
        customer = row[3 * len(instants)] if names else None
        if customer is not None:
            owner = people.get(row[0])
            owned_at[0][row[0]].below_2.append((customer, owner.name if owner else ""))


async def _crossing(
    session: AsyncSession, instants: list[dt.datetime], scope: list[int] | None, owners: _Owners,
    owned_at: list[dict[int, _Owned]],
) -> None:
    """Stage crossing as of each of ``instants`` in one statement: first entries are found once, and
    each cohort member's "crossed" is decided once, then counted in every cohort window it falls in."""
    windows = [m.crossing_cohort_window(instant) for instant in instants]
    from_stage = aliased(Stage)
    first_entry = (
        select(StageHistory.customer_id, func.min(StageHistory.entered_at).label("entered"))
        .join(from_stage, from_stage.id == StageHistory.stage_id)
        .join(Customer, Customer.id == StageHistory.customer_id)
        .join(Pipeline, Pipeline.id == Customer.pipeline_id)
        .where(from_stage.pipeline_id == Customer.pipeline_id, from_stage.name == Pipeline.crossing_from,
               Pipeline.crossing_to.is_not(None))
        .group_by(StageHistory.customer_id)
        .subquery()
    )
    later = aliased(StageHistory)
    later_stage = aliased(Stage)
    target = aliased(Stage)
    target_position = (
        select(target.position)
        .join(Pipeline, Pipeline.id == target.pipeline_id)
        .where(target.pipeline_id == Customer.pipeline_id, target.name == Pipeline.crossing_to)
        .correlate(Customer)
        .scalar_subquery()
    )
    crossed = exists(
        select(later.id)
        .join(later_stage, later_stage.id == later.stage_id)
        .where(
            later.customer_id == first_entry.c.customer_id,
            later_stage.pipeline_id == Customer.pipeline_id,
            later_stage.position >= target_position,
            later.entered_at > first_entry.c.entered,
            later.entered_at <= _plus(session, first_entry.c.entered, m.CROSSING_WITHIN),
        )
    )
    cohorts = owners.join(
        select(*(owners.at(instant).label(f"owner_{i}") for i, instant in enumerate(instants)),
               first_entry.c.entered.label("entered"), case((crossed, 1), else_=0).label("crossed"))
        .join(first_entry, first_entry.c.customer_id == Customer.id),
        *instants,
    ).where(first_entry.c.entered > _instant(min(w[0] for w in windows)),
            first_entry.c.entered <= _instant(max(w[1] for w in windows)),
            owners.scope(scope, *instants)).subquery()
    per_window = []
    for start, end in windows:
        inside = and_(cohorts.c.entered > _instant(start), cohorts.c.entered <= _instant(end))
        per_window += [func.sum(case((inside, 1), else_=0)), func.sum(case((inside, cohorts.c.crossed), else_=0))]
    owner_columns = [cohorts.c[f"owner_{i}"] for i in range(len(instants))]
    rows = await session.execute(select(*owner_columns, *per_window).group_by(*owner_columns))
    for row in rows:
        for i, owned in enumerate(owned_at):
            owner_id = row[i]
            cohort, crossed_count = int(row[len(instants) + 2 * i] or 0), int(row[len(instants) + 2 * i + 1] or 0)
            if cohort:
                owned[owner_id].cohort += cohort
                owned[owner_id].crossed += crossed_count


async def _resolution(
    session: AsyncSession, as_of: dt.datetime, scope: list[int] | None, owners: _Owners, owned: dict[int, _Owned],
    people: dict[int, _Person],
) -> None:
    start, end = m.resolution_window(as_of)
    owner = owners.at(as_of)
    rows = await session.execute(
        owners.join(
            select(owner, func.sum(_seconds_between(session, SupportRequest.requested_at,
                                                    SupportRequest.first_reply_at)), func.count())
            .join(Customer, Customer.id == SupportRequest.customer_id), as_of)
        .where(SupportRequest.first_reply_at > _instant(start), SupportRequest.first_reply_at <= _instant(end),
               owners.scope(scope, as_of))
        .group_by(owner)
    )
    for owner_id, seconds, count in rows:
        owned[owner_id].seconds += int(seconds or 0)
        owned[owner_id].resolved += int(count)
    waiting = await session.execute(
        owners.join(
            select(owner, Customer.name, SupportRequest.requested_at)
            .join(Customer, Customer.id == SupportRequest.customer_id), as_of)
        .where(
            or_(SupportRequest.first_reply_at.is_(None), SupportRequest.first_reply_at > _instant(as_of)),
            SupportRequest.requested_at < _instant(as_of - m.OPEN_TOO_LONG),
            owners.scope(scope, as_of),
        )
    )
    for owner_id, name, requested_at in waiting:
        person = people.get(owner_id)
        owned[owner_id].open_requests.append(
            m.OpenRequest(name, person.name if person else "", requested_at, m.hours_between(requested_at, as_of))
        )


async def _action_completion(
    session: AsyncSession, as_of: dt.datetime, tz: ZoneInfo, days: list[dt.date], scope: list[int] | None,
    owners: _Owners, moves: dict[int, int | None],
) -> dict[int | None, dict[dt.date, tuple[int, int]]]:
    """Per team (the customer's owner's at as_of) and local day: next actions due, and those done on time."""
    day_table = values(column("day", Date), column("ends", Timestamp()), name="trend_days").data(
        [(day, local_midnight(day + dt.timedelta(days=1), tz)) for day in days]
    ).cte("trend_days")
    later = aliased(Touch)
    done = exists(
        select(later.id).where(
            later.customer_id == Touch.customer_id,
            or_(later.occurred_at > Touch.occurred_at, and_(later.occurred_at == Touch.occurred_at, later.id > Touch.id)),
            later.occurred_at < day_table.c.ends,
            _existed(later, as_of),
        )
    )
    then = _TeamsThen(moves)
    query = (
        select(then.team, Touch.next_due, func.count(), func.sum(case((done, 1), else_=0)))
        .join(day_table, day_table.c.day == Touch.next_due)
        .join(Customer, Customer.id == Touch.customer_id)
    )
    rows = await session.execute(
        then.join(owners.join(query, as_of).join(Member, Member.id == owners.at(as_of)))
        .where(_existed(Touch, as_of), owners.scope(scope, as_of))
        .group_by(then.team, Touch.next_due)
    )
    out: dict[int | None, dict[dt.date, tuple[int, int]]] = defaultdict(dict)
    for team_id, day, due, done_count in rows:
        out[team_id][day] = (int(due), int(done_count or 0))
    return out


async def _overdue(
    session: AsyncSession, as_of: dt.datetime, tz: ZoneInfo, scope: list[int] | None, owners: _Owners,
    moves: dict[int, int | None], people: dict[int, _Person],
) -> dict[int | None, list[m.Overdue]]:
    """Per team: the customers most overdue (the latest next action past due, no touch since)."""
    today = as_of.astimezone(tz).date()
    # Each customer's latest touch that existed at as_of, found by one index seek per customer (not a
    # scan of every touch); of two logged at the same instant the later-logged one (higher id) set it.
    latest_due = (
        select(Touch.next_due)
        .where(Touch.customer_id == Customer.id, _existed(Touch, as_of))
        .order_by(Touch.occurred_at.desc(), Touch.id.desc())
        .limit(1)
        .correlate(Customer)
        .scalar_subquery()
    )
    owner_then = owners.at(as_of)
    then = _TeamsThen(moves)
    latest = (
        then.join(owners.join(
            select(then.team.label("team_id"), Customer.name.label("customer"), owner_then.label("owner_id"),
                   Customer.id.label("customer_id"), latest_due.label("due"))
            .select_from(Customer), as_of)
            .join(Member, Member.id == owner_then))
        .where(Customer.status != CustomerStatus.CLOSED, owners.scope(scope, as_of))
        .subquery()
    )
    candidates = (
        select(
            latest.c.team_id, latest.c.customer, latest.c.owner_id, latest.c.due,
            func.row_number()
            .over(partition_by=latest.c.team_id, order_by=(latest.c.due, latest.c.customer, latest.c.customer_id))
            .label("rank"),
        )
        .where(latest.c.due < today)
        .subquery()
    )
    rows = await session.execute(
        select(candidates.c.team_id, candidates.c.customer, candidates.c.owner_id, candidates.c.due)
        .where(candidates.c.rank <= m.TOP_OVERDUE)
        .order_by(candidates.c.team_id, candidates.c.rank)
    )
    out: dict[int | None, list[m.Overdue]] = defaultdict(list)
    for team_id, customer, owner_id, due in rows:
        owner = people.get(owner_id)
        out[team_id].append(m.Overdue(customer, owner.name if owner else "", due, (today - due).days))
    return out


async def _stage_distribution(
    session: AsyncSession, as_of: dt.datetime, scope: list[int] | None, owners: _Owners, moves: dict[int, int | None]
) -> dict[int | None, list[m.StageCount]]:
    """Per team (the owner's at as_of): live customers per stage, stages in pipeline order."""
    then = _TeamsThen(moves)
    query = (
        select(then.team, Pipeline.name, Stage.name, func.count())
        .select_from(Customer)
        .join(Stage, Stage.id == Customer.stage_id)
        .join(Pipeline, Pipeline.id == Stage.pipeline_id)
    )
    rows = await session.execute(
        then.join(owners.join(query, as_of).join(Member, Member.id == owners.at(as_of)))
        .where(Customer.status != CustomerStatus.CLOSED, owners.scope(scope, as_of))
        .group_by(then.team, Pipeline.id, Pipeline.name, Stage.position, Stage.name)
        .order_by(then.team, Pipeline.id, Stage.position)
    )
    out: dict[int | None, list[m.StageCount]] = defaultdict(list)
    for team_id, pipeline, stage, count in rows:
        out[team_id].append(m.StageCount(pipeline, stage, int(count)))
    return out


# -- /团队: this week per rep ----------------------------------------------------------------------


@dataclass(frozen=True)
class RepWeek:
    """One rep's week as /团队 lists it."""

    member_id: int
    code: str
    name: str
    customers: int  # distinct customers touched this week
    effective: int  # effective touches this week
    open_alerts: int
    touch_depth: m.TouchDepth


async def team_week(
    session: AsyncSession, *, team_id: int, since: dt.datetime, as_of: dt.datetime, depth: dict[str, m.TouchDepth]
) -> list[RepWeek]:
    """The team's active reps with this week's distinct customers, effective touches and open alerts."""
    touched = (
        select(Touch.member_id, func.count(distinct(Touch.customer_id)).label("customers"),
               func.sum(case((Touch.effective, 1), else_=0)).label("effective"))
        .where(Touch.occurred_at >= _instant(since), _existed(Touch, as_of))
        .group_by(Touch.member_id)
        .subquery()
    )
    alerts = (
        select(Alert.member_id, func.count().label("open"))
        .where(Alert.open_key.is_not(None), Alert.status.in_(("raised", "notified", "ignored")))
        .group_by(Alert.member_id)
        .subquery()
    )
    rows = await session.execute(
        select(Member.id, Member.code, Member.name, func.coalesce(touched.c.customers, 0),
               func.coalesce(touched.c.effective, 0), func.coalesce(alerts.c.open, 0))
        .outerjoin(touched, touched.c.member_id == Member.id)
        .outerjoin(alerts, alerts.c.member_id == Member.id)
        .where(Member.team_id == team_id, Member.role == Role.REP, Member.active.is_(True))
    )
    return [
        RepWeek(row[0], row[1], row[2], int(row[3]), int(row[4]), int(row[5]), depth.get(row[1], m.TouchDepth()))
        for row in rows
    ]


async def teams_with_zones(session: AsyncSession) -> list[tuple[int, str, str, str]]:
    """(id, key, name, time zone) of every team."""
    rows = await session.execute(select(Team.id, Team.key, Team.name, Team.timezone).order_by(Team.key))
    return [(row[0], row[1], row[2], row[3]) for row in rows]


# -- once per team and period ----------------------------------------------------------------------


async def claim_run(
    session: AsyncSession, *, job: str, period: str, as_of: dt.datetime, now: dt.datetime, summary: str = ""
) -> bool:
    """Record ``job`` for ``period`` unless it is recorded already; True when this call recorded it.

    The unique (job, period) key makes a second claim — another replica, a catch-up tick, a replay
    — find the first one (after it commits) and back off, so the message goes out once.
    """
    statement = dialect_insert(session)(JobRun).values(
        job=job, period=period[:32], as_of=as_of, started_at=now, finished_at=now, status="done", summary=summary[:4000]
    )
    result = await session.execute(statement.on_conflict_do_nothing(index_elements=["job", "period"]))
    return bool(getattr(result, "rowcount", 0))


async def claimed(session: AsyncSession, jobs: Collection[str], period: str) -> set[str]:
    """Which of ``jobs`` already have a run recorded for ``period``."""
    if not jobs:
        return set()
    rows = await session.scalars(select(JobRun.job).where(JobRun.job.in_(list(jobs)), JobRun.period == period))
    return set(rows)

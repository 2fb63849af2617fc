"""晨会速览 (SPEC §8.1): the morning digest to each team's group, /看板 on demand, and /团队.

The ``digest`` job ticks every quarter hour (``bot.scheduler.TeamDaily``); each tick sends the
digest to every team whose local ``scheduler.digest_time`` has come today and that has not had
today's yet. "Once per team per day" is a ``JobRun`` row per team and local date
(``digest:team:<id>``), claimed in the same transaction as the queued messages: another replica,
a catch-up tick after downtime or ``pacebot jobs run digest`` all find it and send nothing twice.
The digest's figures are as of the team's local digest time, whichever tick sends it.

A digest is one markdown message (within every platform's size limit) and one PNG chart (stage
distribution and the 14-day completion trend). A team with no customers and no due actions gets
no digest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import Image, Markdown, Reply, ToGroup
from bot.router import Router
from domain import metrics as m
from domain.charts import TrendPoint
from domain.enums import Role
from handlers import texts_digest as texts
from handlers.charts import render_charts
from storage import members as member_store
from storage import metrics as metric_store

log = logging.getLogger(__name__)

router = Router("digest")

# WeCom robot markdown allows 4,096 bytes and DingTalk about 5,000 characters: one message fits both.
MAX_MARKDOWN_BYTES = 4000
MAX_COACHING_NAMES = 8
MAX_OPEN_REQUESTS = 5
WEEK = dt.timedelta(days=7)


def team_zone(name: str, fallback: ZoneInfo) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else fallback
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("team time zone %r is unknown; using the organisation's", name)
        return fallback


def digest_job_name(team_id: int) -> str:
    return f"digest:team:{team_id}"


# -- the job -------------------------------------------------------------------------------------


@router.job("digest")
async def digest_job(ctx: Ctx) -> list[Reply]:
    at = dt.time.fromisoformat(ctx.config.scheduler.digest_time)
    tick = ctx.run.as_of
    due: dict[dt.datetime, list[tuple[int, str]]] = defaultdict(list)  # due instant → (team id, local date)
    for team_id, _key, _name, zone in await metric_store.teams_with_zones(ctx.session):
        tz = team_zone(zone, ctx.tz)
        local_day = tick.astimezone(tz).date()
        due_at = dt.datetime.combine(local_day, at, tzinfo=tz).astimezone(dt.UTC)
        if due_at <= tick:
            due[due_at].append((team_id, local_day.isoformat()))
    replies: list[Reply] = []
    sent = skipped = 0
    for due_at, teams in sorted(due.items()):
        done = set()
        for day in {d for _, d in teams}:
            done |= await metric_store.claimed(ctx.session, [digest_job_name(t) for t, d in teams if d == day], day)
        waiting = [(t, d) for t, d in teams if digest_job_name(t) not in done]
        if not waiting:
            continue
        built = await build_digests(ctx, as_of=due_at, team_ids=[t for t, _ in waiting])
        for team_id, day in waiting:
            team_replies = built.get(team_id, [])
            summary = f"{len(team_replies)} message(s)" if team_replies else "nothing to report"
            if not await metric_store.claim_run(ctx.session, job=digest_job_name(team_id), period=day, as_of=due_at,
                                                now=ctx.now(), summary=summary):
                continue  # another run claimed it meanwhile
            if team_replies:
                replies += team_replies
                sent += 1
            else:
                skipped += 1
    ctx.run.report(f"digests: {sent} sent, {skipped} with nothing to report")
    return replies


async def build_digests(
    ctx: Ctx, *, as_of: dt.datetime, team_ids: Sequence[int], to_group: bool = True
) -> dict[int, list[Reply]]:
    """Each team's digest replies (markdown, then the chart); teams with nothing to report get none."""
    teams = {team.id: team for team in await member_store.all_teams(ctx.session)}
    by_key = {team.key: team.id for team in teams.values()}

    def local_date(team_id: int) -> dt.date:
        return as_of.astimezone(team_zone(teams[team_id].timezone, ctx.tz)).date()

    def reporting(figures: m.Figures) -> list[tuple[int, m.TeamFigures]]:
        return [(by_key[team.key], team) for team in figures.teams if team.has_anything and team.key in by_key]

    # The chart shows the stages and the completion trend only: it is drawn while the health metrics
    # are still being computed (``on_details``), in a worker thread, as the database works on the rest.
    drawing: list[tuple[list[int], asyncio.Future[list[bytes | None]]]] = []

    def draw(early: m.Figures) -> None:
        teams_drawn = reporting(early)
        specs = [(texts.CHART_TITLE.format(team=team.name, date=local_date(team_id).isoformat()),
                  chart_stages(team), chart_trend(team)) for team_id, team in teams_drawn]
        drawing.append(([team_id for team_id, _ in teams_drawn], asyncio.ensure_future(render_charts(specs))))

    try:
        figures = await metric_store.compute_figures(ctx.session, as_of=as_of, tz=ctx.tz, team_ids=team_ids,
                                                     compare_with=as_of - WEEK, parallel=True, on_details=draw)
    except BaseException:
        for _, future in drawing:
            future.cancel()
        raise
    charts: dict[int, bytes | None] = {}
    for drawn_for, future in drawing:
        charts.update(zip(drawn_for, await future, strict=True))
    previous = figures.previous or m.Figures(as_of - WEEK)
    wanted = reporting(figures)
    drawn = [png for team_id, _ in wanted if (png := charts.get(team_id)) is not None]
    stored = iter(await asyncio.to_thread(lambda: [ctx.media.store_generated(png, "png") for png in drawn]))
    out: dict[int, list[Reply]] = {}
    for team_id, team in wanted:
        to = ToGroup(team_id) if to_group else None
        text = digest_markdown(team, previous.team(team.key), local_date(team_id))
        replies: list[Reply] = [Markdown(texts.DIGEST_TITLE.format(team=team.name), text, to=to)]
        if charts.get(team_id) is not None:
            sha = next(stored)
            # No caption: robots would send it as a separate text message; the chart carries its title.
            replies.append(Image(sha, to=to, path=f"generated/{sha}.png"))
        out[team_id] = replies
    return out


# -- what it says --------------------------------------------------------------------------------


def chart_stages(team: m.TeamFigures) -> list[tuple[str, int]]:
    return [(s.stage, s.customers) for s in team.stages]


def chart_trend(team: m.TeamFigures) -> list[TrendPoint]:
    return [TrendPoint(day.day.strftime("%m-%d"), day.rate, day.due) for day in team.action_completion]


def _percent(value: Decimal | None) -> str:
    return texts.NO_FIGURE if value is None else f"{(value * 100).quantize(Decimal('1'))}%"


def _signed(value: Decimal | None, unit: str = "") -> str:
    if value is None:
        return texts.NO_FIGURE
    return f"{'+' if value > 0 else ''}{value}{unit}"


def _names(names: Sequence[str], limit: int, more: str) -> str:
    shown = "、".join(names[:limit])
    return shown + (more.format(count=len(names)) if len(names) > limit else "")


def digest_markdown(team: m.TeamFigures, previous: m.TeamFigures | None, local_date: dt.date) -> str:
    """The digest as markdown, at most ``MAX_MARKDOWN_BYTES`` bytes of UTF-8."""
    prev = previous or m.TeamFigures(team.key, team.name)
    lines = [texts.DIGEST_HEADER.format(team=team.name, date=f"{local_date.month}月{local_date.day}日"), ""]
    lines.append(texts.STAGES_HEADER.format(total=team.customers))
    by_pipeline: dict[str, list[str]] = defaultdict(list)
    for stage in team.stages:
        by_pipeline[stage.pipeline].append(texts.STAGE_ITEM.format(stage=stage.stage, count=stage.customers))
    if not by_pipeline:
        lines.append(texts.NO_CUSTOMERS)
    for pipeline, items in by_pipeline.items():
        prefix = texts.STAGE_PIPELINE.format(pipeline=pipeline) if len(by_pipeline) > 1 else ""
        lines.append(prefix + " · ".join(items))
    lines += ["", texts.OVERDUE_HEADER]
    lines += [texts.OVERDUE_LINE.format(rank=i, customer=o.customer, owner=o.owner, days=o.days)
              for i, o in enumerate(team.overdue_top5, 1)] or [texts.NO_OVERDUE]
    lines += ["", texts.TREND_HEADER]
    lines.append(" · ".join(
        texts.TREND_ITEM.format(date=f"{d.day.month}/{d.day.day}", rate=_percent(d.rate) if d.due else texts.TREND_NONE)
        for d in team.action_completion
    ))
    due = sum(d.due for d in team.action_completion)
    done = sum(d.done_on_time for d in team.action_completion)
    lines.append(texts.TREND_SUMMARY.format(due=due, done=done, rate=_percent(m.DayCompletion(local_date, due, done).rate)))
    lines += ["", texts.HEALTH_HEADER]
    depth, crossing, resolution = team.touch_depth, team.stage_crossing, team.obstacle_resolution
    lines.append(texts.DEPTH_LINE.format(
        value=depth.value if depth.value is not None else texts.NO_FIGURE, customers=depth.customers,
        mark=texts.MARK[depth.health], change=_signed(m.change(depth.value, prev.touch_depth.value)),
    ))
    crossing_change = m.change(crossing.value, prev.stage_crossing.value)
    lines.append(texts.CROSSING_LINE.format(
        value=_percent(crossing.value), crossed=crossing.crossed, cohort=crossing.cohort, mark=texts.MARK[crossing.health],
        change=texts.NO_FIGURE if crossing_change is None else texts.CHANGE_PP.format(
            sign="+" if crossing_change > 0 else "", value=(crossing_change * 100).quantize(Decimal("0.1"))),
    ))
    lines.append(texts.RESOLUTION_LINE.format(
        value=texts.HOURS.format(hours=resolution.value) if resolution.value is not None else texts.NO_FIGURE,
        resolved=resolution.resolved, mark=texts.MARK[resolution.health],
        change=_signed(m.change(resolution.value, prev.obstacle_resolution.value), " 小时"),
    ))
    if depth.below_2:
        lines.append(texts.COACHING.format(names=_names(depth.below_2, MAX_COACHING_NAMES, texts.MORE)))
    if resolution.open_over_48h:
        items = [texts.OPEN_REQUEST_ITEM.format(customer=r.customer, owner=r.owner, hours=r.hours)
                 for r in resolution.open_over_48h]
        lines.append(texts.OPEN_REQUESTS.format(items=_names(items, MAX_OPEN_REQUESTS, texts.MORE_ITEMS)))
    return fit_bytes("\n".join(lines), MAX_MARKDOWN_BYTES)


def fit_bytes(text: str, limit: int) -> str:
    """``text`` cut at a line boundary so that it is at most ``limit`` bytes of UTF-8."""
    if len(text.encode()) <= limit:
        return text
    budget = limit - len(texts.TRUNCATED.encode()) - 1
    kept: list[str] = []
    used = 0
    for line in text.split("\n"):
        size = len(line.encode()) + 1
        if used + size > budget:
            break
        kept.append(line)
        used += size
    return "\n".join([*kept, texts.TRUNCATED])


# -- /看板 and /团队 -------------------------------------------------------------------------------


async def _pick_team(ctx: Ctx, argument: str) -> tuple[int, str]:
    member = ctx.acting
    teams = await member_store.all_teams(ctx.session)
    names = "、".join(team.name for team in teams) or "—"
    if argument:
        team = next((t for t in teams if argument in (t.name, t.key)), None)
        if team is None:
            raise UserError(texts.BOARD_UNKNOWN_TEAM.format(name=argument, teams=names))
        if member.role is not Role.ADMIN and team.id != member.team_id:
            own = next((t.name for t in teams if t.id == member.team_id), "—")
            raise UserError(texts.BOARD_OTHER_TEAM.format(team=own), detail=f"{member.code} asked for team {team.key}")
        return team.id, team.name
    own_team = next((t for t in teams if t.id == member.team_id), None)
    if own_team is not None:
        return own_team.id, own_team.name
    if member.role is Role.ADMIN:
        raise UserError(texts.BOARD_NEED_TEAM.format(example=teams[0].name if teams else "华东一组", teams=names))
    raise UserError(texts.BOARD_NO_TEAM)


def _argument(ctx: Ctx) -> str:
    parts = ctx.event.text.strip().split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


@router.command("/看板", "/board", roles=[Role.MANAGER, Role.ADMIN], summary="现在查看团队晨会速览(管理员: /看板 团队名)")
async def board(ctx: Ctx) -> list[Reply]:
    team_id, team_name = await _pick_team(ctx, _argument(ctx))
    built = await build_digests(ctx, as_of=ctx.now(), team_ids=[team_id], to_group=False)
    return built.get(team_id) or [Markdown(texts.DIGEST_TITLE.format(team=team_name),
                                           texts.BOARD_NOTHING.format(team=team_name))]


@router.command("/团队", "/team", roles=[Role.MANAGER, Role.ADMIN], summary="本团队成员本周的跟进情况")
async def team_view(ctx: Ctx) -> list[Reply]:
    team_id, team_name = await _pick_team(ctx, _argument(ctx))
    now = ctx.now()
    local = now.astimezone(ctx.tz).date()
    monday = local - dt.timedelta(days=local.weekday())
    since = metric_store.local_midnight(monday, ctx.tz)
    figures = await metric_store.compute_figures(ctx.session, as_of=now, tz=ctx.tz, team_ids=[team_id], details=False)
    team = figures.teams[0] if figures.teams else None
    depth = {rep.code: rep.touch_depth for rep in team.reps} if team else {}
    reps = await metric_store.team_week(ctx.session, team_id=team_id, since=since, as_of=now, depth=depth)
    reps.sort(key=lambda r: (r.customers, r.effective, r.touch_depth.value if r.touch_depth.value is not None
                             else Decimal(-1), -r.open_alerts, r.code))
    lines = [texts.TEAM_HEADER.format(team=team_name, since=f"{monday.month}月{monday.day}日")]
    lines += [
        texts.TEAM_LINE.format(rank=i, name=r.name, customers=r.customers, effective=r.effective, alerts=r.open_alerts,
                               depth=r.touch_depth.value if r.touch_depth.value is not None else texts.NO_FIGURE)
        for i, r in enumerate(reps, 1)
    ] or [texts.TEAM_NONE]
    if reps:
        lines.append(texts.TEAM_ORDER_NOTE)
    return [Markdown(texts.TEAM_TITLE.format(team=team_name), fit_bytes("\n".join(lines), MAX_MARKDOWN_BYTES))]

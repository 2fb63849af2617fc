"""预警 (SPEC §5): the alert sweep and weekly activity jobs, what they tell whom, and /规则.

``alert_sweep`` evaluates every rule over the whole organisation (``storage.alerts.sweep``), then
tells each newly raised episode once:

* cold customers (标黄) — one reminder per rep per day listing their customers (batched);
* quoted too long (标红, urgent) — the rep and their manager at once;
* milestone overdue — the node's overdue actions: push the named script pack to the rep (once
  per node stay), notify the manager;
* obstacle slow — the manager, as an item for process review.

``weekly_activity`` raises low weekly activity and pushes 《本周高价值客户补漏建议》 to those reps.

Messages are held outside the working day (``[scheduler] notify_hours``, local): an episode
raised at night stays *raised* and is told by the first sweep of the morning. Counting working
days consults the holiday library; beyond its data the calendar counts Monday–Friday and admins
are warned once per year.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from bot.config import notify_window
from bot.context import Ctx
from bot.errors import UserError
from bot.replies import Markdown, Reply, Text, ToMember
from bot.router import Router
from domain.enums import Role
from domain.rules.workdays import (
    MAX_RANGE_DAYS,
    DateItemError,
    WorkCalendar,
    parse_date_item,
    parse_date_list,
)
from handlers import admin
from handlers import texts_alerts as texts
from handlers.format import format_ago, month_day, weekday_name
from handlers.playbooks import deliver_pack
from storage import alerts as alert_store
from storage import calendar as calendar_store
from storage import libraries
from storage import members as member_store
from storage.alerts import PendingAlert
from storage.models import ScriptPack, Stage

log = logging.getLogger(__name__)

router = Router("alerts")

# People are messaged between these local times; episodes raised outside wait for the morning.
MAX_LINES = 10  # customers listed per message before "……等共 N 位"
SUGGESTION_DAYS = 7  # 补漏建议: customers not touched for this many days
SUGGESTION_COUNT = 5


# -- the jobs ----------------------------------------------------------------------------------


@router.job("alert_sweep")
async def alert_sweep(ctx: Ctx) -> list[Reply]:
    calendar, beyond = await _calendar(ctx)
    result = await alert_store.sweep(ctx.session, now=ctx.now(), tz=ctx.tz, rules=ctx.config.rules, calendar=calendar)
    replies = await _notify(ctx, calendar, alert_store.RULES)
    replies = await _warn_beyond_data(ctx, beyond) + replies
    ctx.run.report(result.summary())
    log.info("alert sweep as of %s: %s", ctx.now().isoformat(), result.summary())
    return replies


@router.job("weekly_activity")
async def weekly_activity(ctx: Ctx) -> list[Reply]:
    as_of = ctx.run.as_of
    raised = await alert_store.raise_low_activity(
        ctx.session, as_of=as_of, now=ctx.now(), tz=ctx.tz, ratio=ctx.config.rules.low_activity_ratio
    )
    calendar, beyond = await _calendar(ctx)
    replies = await _notify(ctx, calendar, (alert_store.LOW_ACTIVITY,))
    ctx.run.report(f"low activity raised: {len(raised)}")
    return await _warn_beyond_data(ctx, beyond) + replies


# -- the working-day calendar --------------------------------------------------------------------


async def _calendar(ctx: Ctx) -> tuple[WorkCalendar, list[dt.date]]:
    beyond: list[dt.date] = []
    calendar = await calendar_store.work_calendar(ctx.session, ctx.config.rules, on_beyond_data=beyond.append)
    return calendar, beyond


async def _warn_beyond_data(ctx: Ctx, days: Iterable[dt.date]) -> list[Reply]:
    """Tell every admin, once per year ever, that the calendar is counting Monday–Friday."""
    replies: list[Reply] = []
    for year in sorted({day.year for day in days}):
        if not await calendar_store.claim_beyond_data_warning(ctx.session, year, ctx.now()):
            continue
        log.warning("holiday library has no data for %s; counting Monday-Friday", year)
        text = texts.BEYOND_DATA_WARNING.format(year=year)
        replies += [Text(text, to=ToMember(admin.id)) for admin in await member_store.admins(ctx.session)]
    return replies


# -- telling people ------------------------------------------------------------------------------


def _within_notify_hours(ctx: Ctx) -> bool:
    start, until = notify_window(ctx.config.scheduler)
    local = ctx.now().astimezone(ctx.tz).time()
    return start <= local < until


async def _notify(ctx: Ctx, calendar: WorkCalendar, rules: Sequence[str]) -> list[Reply]:
    """Tell each raised episode once (raised → notified), batched per person."""
    if not _within_notify_hours(ctx):
        return []
    pending = await alert_store.pending_notifications(ctx.session, today=ctx.today(), rules=rules)
    if not pending:
        return []
    cold = [a for a in pending if a.rule == alert_store.COLD]
    if cold:
        # At most one cold reminder per rep per local day; the rest wait for tomorrow's batch.
        midnight = alert_store.local_midnight(ctx.today(), ctx.tz)
        reminded = await alert_store.reps_reminded_since(ctx.session, alert_store.COLD, midnight)
        pending = [a for a in pending if a.rule != alert_store.COLD or a.rep_id not in reminded]
    # Claim first, then write: a concurrent notifier can never tell the same episode twice.
    moved = await alert_store.mark_notified(ctx.session, (a.id for a in pending), ctx.now())
    by_rule: dict[str, list[PendingAlert]] = defaultdict(list)
    for alert in pending:
        if alert.id in moved:
            by_rule[alert.rule].append(alert)
    replies: list[Reply] = []
    replies += _tell_cold(ctx, by_rule[alert_store.COLD])
    replies += _tell_quote(ctx, calendar, by_rule[alert_store.QUOTE_OVERDUE])
    replies += await _tell_milestones(ctx, calendar, by_rule[alert_store.MILESTONE_OVERDUE])
    replies += await _tell_obstacles(ctx, by_rule[alert_store.OBSTACLE_SLOW])
    replies += await _tell_low_activity(ctx, by_rule[alert_store.LOW_ACTIVITY])
    return replies


def _grouped(alerts: Iterable[PendingAlert], key: Callable[[PendingAlert], int | None]) -> dict[int, list[PendingAlert]]:
    groups: dict[int, list[PendingAlert]] = defaultdict(list)
    for alert in alerts:
        target = key(alert)
        if target is not None:
            groups[target].append(alert)
    return groups


def _lines(items: list[str]) -> list[str]:
    if len(items) <= MAX_LINES:
        return items
    return [*items[:MAX_LINES], texts.MORE_LINES.format(count=len(items))]


def _tell_cold(ctx: Ctx, alerts: list[PendingAlert]) -> list[Reply]:
    replies: list[Reply] = []
    now = ctx.now()
    for rep_id, items in _grouped(alerts, lambda a: a.rep_id).items():
        lines = []
        for alert in items:
            if alert.last_touch_at is not None:
                since = texts.COLD_SINCE_TOUCH.format(ago=format_ago(alert.last_touch_at, now))
            else:
                since = texts.COLD_SINCE_CREATED.format(ago=format_ago(alert.created_at or now, now))
            lines.append(texts.COLD_LINE.format(customer=alert.customer_name, stage=alert.stage_name, since=since))
        body = [
            texts.COLD_TITLE.format(count=len(items), hours=ctx.config.rules.cold_hours),
            *_lines(lines),
            texts.COLD_FOOTER.format(customer=items[0].customer_name),
        ]
        replies.append(Text("\n".join(body), to=ToMember(rep_id)))
    return replies


def _working_days_in_stage(ctx: Ctx, calendar: WorkCalendar, alert: PendingAlert) -> int:
    assert alert.stage_entered_at is not None
    return calendar.workdays_elapsed(alert.stage_entered_at, ctx.now(), ctx.tz)


def _tell_quote(ctx: Ctx, calendar: WorkCalendar, alerts: list[PendingAlert]) -> list[Reply]:
    if not alerts:
        return []
    rules = ctx.config.rules
    replies: list[Reply] = []
    days = {a.id: _working_days_in_stage(ctx, calendar, a) for a in alerts}
    for rep_id, items in _grouped(alerts, lambda a: a.rep_id).items():
        lines = [
            texts.QUOTE_REP_LINE.format(customer=a.customer_name, days=days[a.id], entered=month_day(ctx.local_date(a.stage_entered_at)))
            for a in items
            if a.stage_entered_at is not None
        ]
        title = texts.QUOTE_REP_TITLE.format(stage=rules.quote_stage, limit=rules.quote_working_days)
        # Only say the manager knows when there is one to tell (a rep's alerts share one team).
        footer = texts.QUOTE_REP_FOOTER if items[0].manager_id is not None else texts.QUOTE_REP_FOOTER_NO_MANAGER
        replies.append(Text("\n".join([title, *_lines(lines), footer]), to=ToMember(rep_id)))
    for manager_id, items in _grouped(alerts, lambda a: a.manager_id).items():
        lines = [
            texts.QUOTE_MANAGER_LINE.format(
                rep=a.rep_name, customer=a.customer_name, days=days[a.id], entered=month_day(ctx.local_date(a.stage_entered_at))
            )
            for a in items
            if a.stage_entered_at is not None
        ]
        title = texts.QUOTE_MANAGER_TITLE.format(count=len(items), stage=rules.quote_stage, limit=rules.quote_working_days)
        replies.append(Text("\n".join([title, *_lines(lines)]), to=ToMember(manager_id)))
    return replies


def _limit_and_elapsed(ctx: Ctx, calendar: WorkCalendar, stage: Stage, entered: dt.datetime) -> tuple[str, str]:
    if stage.limit_working_days:
        elapsed = calendar.workdays_elapsed(entered, ctx.now(), ctx.tz)
        return (texts.LIMIT_WORKING_DAYS.format(days=stage.limit_days),
                texts.ELAPSED_WORKING_DAYS.format(days=elapsed))
    day = (ctx.now() - entered).days + 1  # 3 days and 1 minute in: the 4th day
    return texts.LIMIT_DAYS.format(days=stage.limit_days), texts.ELAPSED_DAYS.format(days=day)


async def _tell_milestones(ctx: Ctx, calendar: WorkCalendar, alerts: list[PendingAlert]) -> list[Reply]:
    """Run each overdue node's configured actions: push a script pack, notify the manager."""
    if not alerts:
        return []
    stages = await alert_store.stages_by_id(ctx.session, (a.stage_id for a in alerts if a.stage_id is not None))
    packs: dict[str, ScriptPack | None] = {}  # by title: each looked up once per run
    replies: list[Reply] = []
    rep_lines: dict[int, list[str]] = defaultdict(list)
    manager_lines: dict[int, list[str]] = defaultdict(list)
    for alert in alerts:
        stage = stages.get(alert.stage_id or 0)
        if stage is None or alert.stage_entered_at is None or alert.customer_id is None:
            continue
        limit, elapsed = _limit_and_elapsed(ctx, calendar, stage, alert.stage_entered_at)
        deliverables = "、".join(str(d) for d in stage.deliverables)
        actions = [a for a in stage.overdue_actions if isinstance(a, dict)]
        pushed = ""
        for action in actions:
            title = str(action.get("push") or "").strip("《》 ")
            if not title:
                continue
            if title not in packs:
                packs[title] = await libraries.pack_by_title(ctx.session, title)
            pack = packs[title]
            if pack is None:
                log.warning("overdue action of stage %s names an unknown script pack %r", stage.id, title)
                continue
            entered = ctx.local_date(alert.stage_entered_at).isoformat()
            note = texts.MILESTONE_PACK_NOTE.format(
                customer=alert.customer_name, stage=stage.name, elapsed=elapsed, limit=limit, deliverables=deliverables
            )
            sent = await deliver_pack(
                ctx, pack, member_id=alert.rep_id, cause=f"overdue:{stage.id}:{alert.customer_id}:{entered}",
                customer_id=alert.customer_id, note=note,
            )
            if sent:
                replies += sent
                pushed = texts.MILESTONE_PUSHED.format(title=title)
        if not pushed:
            # No pack went out (none configured, or it is missing): the rep still hears about it.
            rep_lines[alert.rep_id].append(
                texts.MILESTONE_REP_LINE.format(
                    customer=alert.customer_name, stage=stage.name, deliverables=deliverables, elapsed=elapsed, limit=limit
                )
            )
        notify_manager = any(a.get("notify") == "manager" or "escalate" in a for a in actions)
        if notify_manager and alert.manager_id is not None:
            manager_lines[alert.manager_id].append(
                texts.MILESTONE_MANAGER_LINE.format(
                    rep=alert.rep_name, customer=alert.customer_name, stage=stage.name, deliverables=deliverables,
                    elapsed=elapsed, limit=limit, pushed=pushed,
                )
            )
    for rep_id, lines in rep_lines.items():
        replies.append(Text("\n".join([texts.MILESTONE_REP_TITLE, *_lines(lines)]), to=ToMember(rep_id)))
    for manager_id, lines in manager_lines.items():
        title = texts.MILESTONE_MANAGER_TITLE.format(count=len(lines))
        replies.append(Text("\n".join([title, *_lines(lines)]), to=ToMember(manager_id)))
    return replies


async def _tell_obstacles(ctx: Ctx, alerts: list[PendingAlert]) -> list[Reply]:
    if not alerts:
        return []
    requests = await alert_store.support_requests_by_id(
        ctx.session, (int(a.subject) for a in alerts if a.subject.isdigit())
    )
    replies: list[Reply] = []
    for manager_id, items in _grouped(alerts, lambda a: a.manager_id).items():
        lines = []
        for alert in items:
            request = requests.get(int(alert.subject)) if alert.subject.isdigit() else None
            if request is None:
                continue
            lines.append(
                texts.OBSTACLE_MANAGER_LINE.format(
                    rep=request.requester_name, customer=alert.customer_name,
                    waited=int((ctx.now() - request.requested_at).total_seconds() // 3600),
                    supporter=request.supporter_name or texts.OBSTACLE_NO_SUPPORTER,
                )
            )
        if lines:
            title = texts.OBSTACLE_MANAGER_TITLE.format(count=len(lines), hours=ctx.config.rules.obstacle_slow_hours)
            replies.append(Text("\n".join([title, *_lines(lines)]), to=ToMember(manager_id)))
    unmanaged = [a for a in alerts if a.manager_id is None]
    if unmanaged:
        log.warning("obstacle slow: %d request(s) of reps without a manager", len(unmanaged))
    return replies


def _money(value: int) -> str:
    if value <= 0:
        return texts.VALUE_UNKNOWN
    if value >= 10_000:
        return texts.VALUE_WAN.format(value=f"{value / 10_000:g}")
    return texts.VALUE_YUAN.format(value=value)


async def _tell_low_activity(ctx: Ctx, alerts: list[PendingAlert]) -> list[Reply]:
    """《本周高价值客户补漏建议》: the rep's most valuable customers not touched lately."""
    if not alerts:
        return []
    now = ctx.now()
    suggestions = await alert_store.valuable_untouched(
        ctx.session, sorted({a.rep_id for a in alerts}), since=now - dt.timedelta(days=SUGGESTION_DAYS),
        today=ctx.today(), per_owner=SUGGESTION_COUNT,
    )
    ratio = round(ctx.config.rules.low_activity_ratio * 100)
    companion = await libraries.pack_by_title(ctx.session, texts.SUGGESTION_TITLE)
    replies: list[Reply] = []
    for alert in alerts:
        details = alert.details
        start = dt.datetime.fromisoformat(details["week_start"]) if details.get("week_start") else now
        lines = [
            texts.SUGGESTION_HEADING,
            texts.SUGGESTION_INTRO.format(
                week_start=month_day(ctx.local_date(start)), count=details.get("count", 0),
                mean=f"{float(details.get('team_mean', 0)):.1f}", ratio=ratio,
            ),
            "",
        ]
        picks = suggestions.get(alert.rep_id, [])
        if picks:
            lines.append(texts.SUGGESTION_LIST_INTRO.format(days=SUGGESTION_DAYS))
            for n, pick in enumerate(picks, start=1):
                since = (
                    texts.SUGGESTION_SINCE.format(ago=format_ago(pick.last_touch_at, now))
                    if pick.last_touch_at else texts.SUGGESTION_NEVER
                )
                lines.append(
                    texts.SUGGESTION_LINE.format(
                        n=n, customer=pick.name, stage=pick.stage_name, value=_money(pick.value), since=since
                    )
                )
        else:
            lines.append(texts.SUGGESTION_NONE.format(days=SUGGESTION_DAYS))
        lines += ["", texts.SUGGESTION_FOOTER]
        replies.append(Markdown(texts.SUGGESTION_TITLE, "\n".join(lines), to=ToMember(alert.rep_id)))
        # The library's companion pack (how to catch up), once per rep and week.
        if companion is not None:
            replies += await deliver_pack(
                ctx, companion, member_id=alert.rep_id, cause=f"low_activity:{details.get('week', '')}"
            )
    return replies


# -- /规则 ------------------------------------------------------------------------------------------

_HOLIDAY_WORDS = ("假期", "放假", "节假日", "休息")
_WORKDAY_WORDS = ("调休", "补班", "上班")
_REMOVE_WORDS = ("删除", "取消", "移除")
_DATE_LIKE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")


@router.command("/规则", "/rules", roles=[Role.ADMIN], summary=texts.CMD_RULES, usage=texts.CMD_RULES_USAGE)
async def rules_command(ctx: Ctx) -> list[Reply]:
    args = ctx.event.text.strip().split()[1:]
    if not args:
        return [await _show_rules(ctx)]
    action, rest = args[0], args[1:]
    if action in admin.SET_WORDS:  # /规则 设置 名称 值 (handlers/admin.py)
        return await admin.set_rule(ctx, rest)
    if action in _HOLIDAY_WORDS or action in _WORKDAY_WORDS:
        kind = calendar_store.HOLIDAY if action in _HOLIDAY_WORDS else calendar_store.WORKDAY
        days, note = _parse_days(action, rest)
        count = await calendar_store.declare_days(ctx.session, days, kind, note)
        kind_name = texts.KIND_HOLIDAY if kind == calendar_store.HOLIDAY else texts.KIND_WORKDAY
        return [Text(texts.RULES_DECLARED.format(count=count, kind=kind_name, days=_format_days(days),
                                                 note=f"({note})" if note else ""))]
    if action in _REMOVE_WORDS:
        days, _ = _parse_days(action, rest)
        removed = await calendar_store.remove_days(ctx.session, days)
        if not removed:
            return [Text(texts.RULES_NOTHING_REMOVED.format(days=_format_days(days)))]
        return [Text(texts.RULES_REMOVED.format(count=len(removed), days=_format_days(removed)))]
    return [Text(texts.RULES_UNKNOWN_ACTION.format(action=action))]


def _parse_days(action: str, tokens: list[str]) -> tuple[list[dt.date], str]:
    """Leading date tokens (single days or ranges, also comma-separated), then an optional note."""
    if not tokens:
        raise UserError(texts.RULES_MISSING_DATES.format(action=action))
    days: set[dt.date] = set()
    index = 0
    while index < len(tokens) and (index == 0 or _DATE_LIKE.match(tokens[index])):
        for item in re.split(r"[,,、]", tokens[index]):
            if item:
                days.update(_parse_item(item))
        index += 1
    return sorted(days), " ".join(tokens[index:])[:128]


def _parse_item(text: str) -> list[dt.date]:
    try:
        return parse_date_item(text, loose=True)
    except DateItemError as exc:
        if exc.reason == DateItemError.BACKWARDS:
            raise UserError(texts.RULES_BAD_RANGE.format(text=text)) from exc
        if exc.reason == DateItemError.TOO_LONG:
            raise UserError(texts.RULES_RANGE_TOO_LONG.format(text=text, days=exc.days, limit=MAX_RANGE_DAYS)) from exc
        raise UserError(texts.RULES_BAD_DATE.format(text=exc.value)) from exc


def _format_days(days: Sequence[dt.date]) -> str:
    """2027-01-01..2027-01-03、2027-02-07 — consecutive days shown as ranges."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if runs and day - runs[-1][1] == dt.timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return "、".join(a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}" for a, b in runs)


def _weekly_text(spec: str) -> str:
    day, time = spec.split()
    return texts.WEEKLY_SCHEDULE.format(day=texts.WEEKDAY_BY_KEY.get(day, day), time=time)


async def _show_rules(ctx: Ctx) -> Reply:
    rules = ctx.config.rules
    lines = [
        f"### {texts.RULES_TITLE}",
        texts.RULES_BODY.format(
            cold_hours=rules.cold_hours, quote_stage=rules.quote_stage, quote_days=rules.quote_working_days,
            ratio=round(rules.low_activity_ratio * 100), obstacle_hours=rules.obstacle_slow_hours,
            ignore_hours=rules.alert_ignore_hours, sweep_minutes=ctx.config.scheduler.alert_sweep_minutes,
            weekly=_weekly_text(ctx.config.scheduler.weekly_activity),
        ),
        "",
        f"### {texts.RULES_CALENDAR_TITLE}",
    ]
    years = WorkCalendar().data_years
    if years:
        lines.append(texts.RULES_LIBRARY.format(first=years[0], last=years[-1]))
    declared = await calendar_store.declared_days(ctx.session)
    if declared:
        lines.append(texts.RULES_DECLARED_HEADER)
        for row in declared:
            kind = texts.KIND_HOLIDAY if row.kind == calendar_store.HOLIDAY else texts.KIND_WORKDAY
            lines.append(
                texts.RULES_DECLARED_LINE.format(
                    day=row.day.isoformat(), weekday=weekday_name(row.day), kind=kind,
                    note=f"({row.note})" if row.note else "",
                )
            )
    else:
        lines.append(texts.RULES_DECLARED_NONE)
    for kind, values in ((texts.KIND_HOLIDAY, rules.holidays), (texts.KIND_WORKDAY, rules.workdays)):
        if values:
            lines.append(texts.RULES_CONFIG_LINE.format(kind=kind, days=_format_days(sorted(parse_date_list(values)))))
    lines += ["", texts.RULES_USAGE]
    return Markdown(texts.RULES_TITLE, "\n".join(lines))

"""动作校准会 (SPEC §8.3): the Friday calibration report, its admin card and reminder, and /校准.

The ``calibration`` job (``scheduler.calibration_time``, default Friday 15:00) sends each team's
group its report for the past week — ignored alerts, obstacles waiting on other departments, the
stages that overran most, competitor intel, the obstacle types whose answers failed most — and
ends with a card to every admin: [更新应答库] opens the response library. The
``calibration_reminder`` job, 24 h later, reminds the admins if no entry of the library changed
since the report. ``/校准`` sends the report now: a manager their team's, an admin the whole
organisation's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import CardReply, Markdown, Reply, Text, ToGroup, ToMember
from bot.router import Router
from cards.model import Button, ButtonStyle, Card, CardAction, new_task_id
from domain.enums import Role
from domain.metrics import hours_between
from handlers import texts_calibration as texts
from handlers.digest import MAX_MARKDOWN_BYTES, fit_bytes
from storage import calibration as store
from storage import job_runs
from storage import members as member_store

router = Router("calibration")

WEEK = dt.timedelta(days=7)
REMINDER_AFTER = dt.timedelta(hours=24)
MAX_ITEMS = 10  # per section before "……等共 N 条"


@dataclass(frozen=True)
class OpenLibrary(CardAction, prefix="calib_lib"):
    """[更新应答库] on the calibration card: the report's instant (epoch seconds)."""

    as_of: int | None = None


class Week:
    """Everything the report lists for one week, organisation-wide, each item with its team."""

    def __init__(self, since: dt.datetime, as_of: dt.datetime) -> None:
        self.since, self.as_of = since, as_of
        self.ignored: list[store.IgnoredAlert] = []
        self.waiting: list[store.WaitingObstacle] = []
        self.overruns: list[store.Overrun] = []
        self.intel: list[store.Intel] = []
        self.failed: list[store.FailedObstacle] = []

    @classmethod
    async def load(cls, ctx: Ctx, as_of: dt.datetime) -> Week:
        week = cls(as_of - WEEK, as_of)
        week.ignored = await store.ignored_alerts(ctx.session, week.since, as_of)
        week.waiting = await store.waiting_obstacles(ctx.session, as_of)
        week.overruns = await store.overruns(ctx.session, week.since, as_of)
        week.intel = await store.competitor_intel(ctx.session, week.since, as_of)
        week.failed = await store.failed_obstacles(ctx.session, week.since, as_of)
        return week

    def failed_totals(self, team_id: int | None = None, *, everyone: bool = True) -> list[tuple[str, int]]:
        totals: dict[str, int] = {}
        for item in self.failed:
            if everyone or item.team_id == team_id:
                totals[item.obstacle] = totals.get(item.obstacle, 0) + item.count
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))

    def overrun_totals(self, team_id: int | None = None, *, everyone: bool = True) -> list[tuple[str, str, int]]:
        totals: dict[tuple[str, str], int] = {}
        for item in self.overruns:
            if everyone or item.team_id == team_id:
                totals[(item.pipeline, item.stage)] = totals.get((item.pipeline, item.stage), 0) + item.count
        return sorted(((p, s, n) for (p, s), n in totals.items()), key=lambda t: (-t[2], t[0], t[1]))

    def is_empty_for(self, team_id: int) -> bool:
        return not any(
            item.team_id == team_id
            for items in (self.ignored, self.waiting, self.overruns, self.intel, self.failed)
            for item in items
        )

    def markdown(self, ctx: Ctx, name: str, team_id: int | None, *, everyone: bool) -> str:
        def mine(items: Sequence[object]) -> list:  # type: ignore[type-arg]
            return [i for i in items if everyone or getattr(i, "team_id", None) == team_id]

        tz = ctx.tz
        start, end = self.since.astimezone(tz), self.as_of.astimezone(tz)
        lines = [texts.REPORT_HEADER.format(team=name, start=f"{start:%m-%d %H:%M}", end=f"{end:%m-%d %H:%M}"), ""]
        ignored = mine(self.ignored)
        lines.append(texts.IGNORED_HEADER.format(count=len(ignored)))
        lines += _capped([
            texts.IGNORED_LINE.format(member=a.member, customer=a.customer, rule=texts.RULE_NAMES.get(a.rule, a.rule),
                                      hours=hours_between(a.since, self.as_of))
            for a in ignored
        ])
        waiting = mine(self.waiting)
        lines += ["", texts.WAITING_HEADER.format(count=len(waiting))]
        lines += _capped([
            texts.WAITING_LINE.format(
                customer=w.customer, owner=w.owner, obstacle=w.obstacle, hours=hours_between(w.requested_at, self.as_of),
                supporter=texts.WAITING_SUPPORTER.format(name=w.supporter) if w.supporter else "")
            for w in waiting
        ])
        lines += ["", texts.OVERRUN_HEADER]
        lines += _capped([texts.OVERRUN_LINE.format(pipeline=p, stage=s, count=n)
                          for p, s, n in self.overrun_totals(team_id, everyone=everyone)])
        intel = mine(self.intel)
        lines += ["", texts.INTEL_HEADER.format(count=len(intel))]
        lines += _capped([
            texts.INTEL_LINE.format(competitor=i.competitor or texts.INTEL_UNKNOWN, text=i.text or "—", member=i.member,
                                    customer=texts.INTEL_CUSTOMER.format(name=i.customer) if i.customer else "")
            for i in intel
        ])
        lines += ["", texts.FAILED_HEADER]
        lines += _capped([texts.FAILED_LINE.format(obstacle=o, count=n)
                          for o, n in self.failed_totals(team_id, everyone=everyone)])
        return fit_bytes("\n".join(lines), MAX_MARKDOWN_BYTES)


def _capped(lines: list[str]) -> list[str]:
    if not lines:
        return [texts.NONE]
    if len(lines) > MAX_ITEMS:
        return [*lines[:MAX_ITEMS], texts.MORE.format(count=len(lines))]
    return lines


def admin_card(week: Week) -> Card:
    failed = week.failed_totals()
    items = "、".join(f"{o}({n})" for o, n in failed[:5])
    return Card(
        task_id=new_task_id("calib"),
        title=texts.ADMIN_CARD_TITLE,
        body=texts.ADMIN_CARD_BODY.format(items=items) if failed else texts.ADMIN_CARD_NO_FAILURES,
        buttons=(Button(texts.ADMIN_CARD_BUTTON, OpenLibrary(int(week.as_of.timestamp())).pack(), ButtonStyle.PRIMARY),),
    )


# -- the jobs ------------------------------------------------------------------------------------


@router.job("calibration")
async def calibration_job(ctx: Ctx) -> list[Reply]:
    week = await Week.load(ctx, ctx.run.as_of)
    replies: list[Reply] = []
    teams = await member_store.all_teams(ctx.session)
    for team in teams:
        if week.is_empty_for(team.id):
            continue
        replies.append(Markdown(texts.REPORT_TITLE.format(team=team.name),
                                week.markdown(ctx, team.name, team.id, everyone=False), to=ToGroup(team.id)))
    admins = await member_store.admins(ctx.session)
    for admin in admins:
        replies.append(CardReply(admin_card(week), to=ToMember(admin.id)))
    ctx.run.report(f"calibration: {len(replies) - len(admins)} team report(s), {len(admins)} admin card(s)")
    return replies


@router.job("calibration_reminder")
async def calibration_reminder(ctx: Ctx) -> list[Reply]:
    """24 h after the report: remind the admins if the response library was not touched since."""
    as_of = ctx.run.as_of
    report_at = as_of - REMINDER_AFTER
    calibration = await job_runs.run_of(ctx.session, "calibration", _calibration_period(ctx, report_at))
    if calibration is None:
        ctx.run.report("no calibration report to follow up")
        return []
    if await store.responses_updated_since(ctx.session, calibration.as_of):
        ctx.run.report("response library updated since the report")
        return []
    admins = await member_store.admins(ctx.session)
    ctx.run.report(f"reminded {len(admins)} admin(s)")
    return [Text(texts.REMINDER, to=ToMember(admin.id)) for admin in admins]


def _calibration_period(ctx: Ctx, instant: dt.datetime) -> str:
    """The calibration job's period key for a report sent at ``instant`` (its local date)."""
    return instant.astimezone(ctx.tz).date().isoformat()


# -- on demand ---------------------------------------------------------------------------------


@router.command("/校准", "/calibration", roles=[Role.MANAGER, Role.ADMIN], summary="现在查看本周动作校准报告")
async def calibration_now(ctx: Ctx) -> list[Reply]:
    member = ctx.acting
    week = await Week.load(ctx, ctx.now())
    if member.role is Role.ADMIN:
        text = week.markdown(ctx, texts.ORG_NAME, None, everyone=True)
        return [Markdown(texts.REPORT_TITLE.format(team=texts.ORG_NAME), text), CardReply(admin_card(week))]
    team = await member_store.get_team(ctx.session, member.team_id) if member.team_id else None
    if team is None:
        raise UserError(texts.NO_TEAM)
    return [Markdown(texts.REPORT_TITLE.format(team=team.name), week.markdown(ctx, team.name, team.id, everyone=False))]


@router.action(OpenLibrary)
async def open_library(ctx: Ctx, payload: OpenLibrary) -> list[Reply]:
    """[更新应答库]: the types to revisit first, their current answers, and the /应答库 command."""
    as_of = dt.datetime.fromtimestamp(payload.as_of, dt.UTC) if payload.as_of is not None else ctx.now()
    week = await Week.load(ctx, as_of)
    failed = week.failed_totals()[:5]
    guidance = await store.guidance_for(ctx.session, [o for o, _ in failed])
    items = "\n".join(
        texts.OPEN_LIBRARY_ITEM.format(obstacle=o, count=n, guidance=guidance.get(o) or texts.OPEN_LIBRARY_NO_GUIDANCE)
        for o, n in failed
    ) or texts.OPEN_LIBRARY_NOTHING
    return [ctx.close_card(texts.ADMIN_CARD_CLOSED), Text(texts.OPEN_LIBRARY.format(items=items))]

"""/今日: the rep's to-do list — due next actions, touches waiting for evidence, cold customers."""

from __future__ import annotations

import datetime as dt

from bot.context import Ctx
from bot.replies import Markdown, Reply
from bot.router import Router
from handlers import texts
from handlers.format import format_ago, format_due
from storage import pipelines as pipeline_store
from storage import touches as touch_store

router = Router("today")


@router.command("/今日", "/today", summary=texts.CMD_TODAY)
async def today(ctx: Ctx) -> list[Reply]:
    member = ctx.acting
    today_date = ctx.today()
    now = ctx.now()
    lines = [texts.TODAY_DUE_HEADER]
    due = await touch_store.due_next_actions(ctx.session, member.id, today_date)
    for touch, customer in due:
        overdue_days = (today_date - touch.next_due).days
        lines.append(
            texts.TODAY_DUE_LINE.format(
                customer=customer.name,
                action=touch.next_action,
                due=format_due(touch.next_due, today_date),
                overdue=texts.TODAY_OVERDUE.format(days=overdue_days) if overdue_days > 0 else "",
            )
        )
    if not due:
        lines.append(texts.TODAY_NONE_DUE)
    pending = await touch_store.pending_evidence(ctx.session, member.id)
    if pending:
        lines += ["", texts.TODAY_PENDING_HEADER]
        lines += [
            texts.TODAY_PENDING_LINE.format(
                customer=customer.name, summary=touch.summary[:30], when=format_ago(touch.occurred_at, now)
            )
            for touch, customer in pending[:10]
        ]
    hours = ctx.config.rules.cold_hours
    cold = await touch_store.cold_customers(ctx.session, member.id, now - dt.timedelta(hours=hours))
    if cold:
        stage_names = await pipeline_store.stage_names(ctx.session)
        lines += ["", texts.TODAY_COLD_HEADER.format(hours=hours)]
        lines += [
            texts.TODAY_COLD_LINE.format(
                customer=c.name,
                stage=stage_names.get(c.stage_id, ""),
                since=format_ago(c.last_touch_at, now) if c.last_touch_at else texts.TODAY_NEVER,
            )
            for c in cold
        ]
    title = texts.TODAY_TITLE.format(date=format_due(today_date, today_date))
    return [Markdown(title, f"### {title}\n" + "\n".join(lines))]

"""``pacebot demo``: seed the demo organisation, and make the first start useful at any hour.

Reminders reach people only within ``scheduler.notify_hours``. A newcomer who starts the demo in
the evening would otherwise see empty group chats until the morning, so each team's group gets a
short note saying what was seeded and when reminders will go out.
"""

from __future__ import annotations

import datetime as dt

from bot.config import notify_window
from bot.replies import Text, ToGroup
from bot.runtime import Runtime
from storage import members as member_store
from storage.demo import seed_demo

NOTE = (
    "👋 演示组织已就绪。现在是 {now},不在提醒时段({hours})内:预警和提醒会在 {next} 发出。"
    "现在就可以在左侧选择销售(例如 rep.east1)发跟进记录试试。"
)


async def run_demo(runtime: Runtime, *, seed: int, if_empty: bool) -> str:
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        summary = await seed_demo(session, now=now, seed=seed, if_empty=if_empty, media=runtime.media)
        if summary.startswith("demo organisation seeded"):
            note = _outside_hours_note(runtime, now)
            if note:
                teams = await member_store.all_teams(session)
                await runtime.inbox.replies.enqueue(
                    session, [Text(note, to=ToGroup(team.id)) for team in teams],
                    event=None, sender=None, inbox_id=None, now=now,
                )
    return summary


def _outside_hours_note(runtime: Runtime, now: dt.datetime) -> str | None:
    start, until = notify_window(runtime.config.scheduler)
    local = now.astimezone(runtime.config.tz)
    if start <= local.time() < until:
        return None
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    when = f"{'今天' if day == local.date() else '明天'} {start.strftime('%H:%M')}"
    return NOTE.format(now=local.strftime("%H:%M"), hours=runtime.config.scheduler.notify_hours, next=when)

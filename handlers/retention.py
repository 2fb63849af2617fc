"""Retention (数据保留): the daily ``purge`` job removes finished rows and unreferenced media files.

Ages come from ``[retention]``; the run is evaluated as of its scheduled instant, so a replayed run
(``pacebot jobs run purge --now …``) removes exactly what it would have then.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from bot.context import Ctx
from bot.replies import Reply
from bot.router import Router
from storage import retention as retention_store

router = Router("retention")


@router.job("purge")
async def purge(ctx: Ctx) -> list[Reply]:
    config = ctx.config.retention
    if not config.enabled:
        ctx.run.report("retention is disabled ([retention] enabled = false)")
        return []
    as_of = ctx.run.as_of
    cutoffs = retention_store.Cutoffs(
        inbox=as_of - dt.timedelta(days=config.inbox_days),
        outbox=as_of - dt.timedelta(days=config.outbox_days),
        dialogue=as_of - dt.timedelta(days=config.dialogue_days),
        card=as_of - dt.timedelta(days=config.card_days),
    )
    purged = await retention_store.purge_finished(ctx.session, cutoffs)
    keep = await retention_store.referenced_media(ctx.session)
    older_than = (as_of - dt.timedelta(hours=config.media_grace_hours)).timestamp()
    files = await asyncio.to_thread(ctx.media.remove_unreferenced, keep, older_than=older_than)
    ctx.run.report(f"purged {purged.describe()}, media files {files}")
    return []

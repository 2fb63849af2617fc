"""Counting DingTalk's metered API calls per month, and warning admins once at 80% of the quota.

The count lives in the database (``storage.api_usage``), so replicas and restarts share it. The
warning is a plain text queued in the outbox to every active admin with a DingTalk account, and a
log line; it is sent once per month, by whichever replica crosses the line.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.observability import METRICS
from bot.platforms.dingtalk import texts
from storage import api_usage
from storage import members as member_store
from storage import outbox as outbox_store
from storage.db import transaction

log = logging.getLogger(__name__)

PLATFORM = "dingtalk"
WARN_RATIO = 0.8


class ApiUsage:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, *, quota: int, tz: ZoneInfo) -> None:
        self.sessions = sessions
        self.clock = clock
        self.quota = quota
        self.tz = tz

    def month(self) -> str:
        return self.clock.now().astimezone(self.tz).strftime("%Y-%m")

    async def count(self, api: str) -> None:
        METRICS.api_calls.labels(platform=PLATFORM).inc()
        warn_at = max(1, int(self.quota * WARN_RATIO))
        async with transaction(self.sessions) as session:
            usage = await api_usage.add_api_calls(session, PLATFORM, self.month(), 1, warn_at=warn_at)
            if usage.crossed_warning:
                await self._warn(session, usage.calls)

    async def calls_this_month(self) -> int:
        async with self.sessions() as session:
            return await api_usage.api_calls(session, PLATFORM, self.month())

    async def _warn(self, session: AsyncSession, calls: int) -> None:
        percent = round(100 * calls / self.quota)
        log.warning("DingTalk metered API calls this month: %s of %s (%s%%); admins are told", calls, self.quota, percent)
        text = texts.QUOTA_WARNING.format(calls=calls, quota=self.quota, percent=percent)
        for admin in await member_store.admins(session):
            if admin.dingtalk_staff_id:
                outbox_store.enqueue(session, platform=PLATFORM, target_kind="member", target_id=admin.id,
                                     target=admin.dingtalk_staff_id, kind="text", payload={"text": text},
                                     now=self.clock.now())

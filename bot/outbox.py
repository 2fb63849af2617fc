"""The outbox worker: delivers queued replies through their platform, within its limits.

Each item is claimed with a lease, checked against the target's rate limits (counted from what
was actually sent, so replicas share one budget), delivered outside any transaction, then marked
sent. Retryable failures back off exponentially; permanent ones, or too many attempts, go to the
dead-letter list that admins can see.
"""

from __future__ import annotations

import datetime as dt
import logging
import random

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import OutboxConfig
from bot.platforms.base import DeliveryError, Outgoing, Platform
from bot.workers import KeyedPoller
from storage import cards as card_store
from storage import outbox as outbox_store
from storage.db import transaction

log = logging.getLogger(__name__)

SEND_LEASE = dt.timedelta(seconds=120)


class OutboxWorker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        platforms: dict[str, Platform],
        clock: Clock,
        config: OutboxConfig,
    ) -> None:
        self.sessions = sessions
        self.platforms = platforms
        self.clock = clock
        self.config = config
        self.poller = KeyedPoller(
            "outbox", self._fetch_due, self.deliver, concurrency=config.workers, poll_seconds=config.poll_seconds
        )

    def wake(self) -> None:
        self.poller.wake()

    async def _fetch_due(self) -> list[tuple[int, str]]:
        async with self.sessions() as session:
            return await outbox_store.due_items(session, list(self.platforms), self.clock.now(), limit=200)

    async def deliver(self, item_id: int) -> None:
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            item = await outbox_store.claim(session, item_id, now, SEND_LEASE)
            if item is None:
                return
            platform = self.platforms[item.platform]
            wait = await self._rate_limited(session, platform, item.platform, item.target_kind, item.target, now)
            if wait is not None:
                await outbox_store.defer(session, item_id, now + wait, "rate limit: waiting for the target's budget")
                return
            card_state = None
            if item.kind == "card_update":
                card = await card_store.get_card(session, item.payload["card"]["task_id"])
                card_state = (card.platform_state.get(item.platform) if card else None) or {}
            outgoing = Outgoing(
                id=item.id,
                kind=item.kind,
                target_kind=item.target_kind,
                target=item.target,
                payload=item.payload,
                attempts=item.attempts,
                card_state=card_state,
            )
        try:
            receipt = await platform.deliver(outgoing)
        except DeliveryError as exc:
            await self._failed(outgoing, str(exc), exc.retryable, exc.retry_after)
            return
        except Exception as exc:  # network errors, timeouts, bugs: try again later
            log.exception("outbox item %s: unexpected delivery error", item_id)
            await self._failed(outgoing, f"{type(exc).__name__}: {exc}", True, None)
            return
        async with transaction(self.sessions) as session:
            await outbox_store.mark_sent(session, item_id, self.clock.now(), receipt)

    async def _rate_limited(
        self, session: AsyncSession, platform: Platform, name: str, target_kind: str, target: str, now: dt.datetime
    ) -> dt.timedelta | None:
        for limit in platform.rate_limits(target_kind):
            window = dt.timedelta(seconds=limit.per_seconds)
            sent = await outbox_store.sent_count_since(session, name, target, now - window)
            if sent >= limit.count:
                # Try again after a slice of the window rather than all of it.
                return window / max(1, limit.count) + dt.timedelta(seconds=1)
        return None

    async def _failed(self, item: Outgoing, error: str, retryable: bool, retry_after: float | None) -> None:
        give_up = not retryable or item.attempts >= self.config.max_attempts
        async with transaction(self.sessions) as session:
            if give_up:
                log.error("outbox item %s dead-lettered after %s attempts: %s", item.id, item.attempts, error)
                await outbox_store.mark_dead(session, item.id, item.attempts, error)
                return
            delay = retry_after if retry_after is not None else self._backoff(item.attempts)
            log.warning("outbox item %s attempt %s failed (%s); retry in %.1fs", item.id, item.attempts, error, delay)
            retry_at = self.clock.now() + dt.timedelta(seconds=delay)
            await outbox_store.mark_retry(session, item.id, item.attempts, retry_at, error)

    def _backoff(self, attempts: int) -> float:
        base = self.config.backoff_base_seconds * 2.0 ** max(0, attempts - 1)
        return min(self.config.backoff_max_seconds, base) * random.uniform(0.8, 1.2)

"""The outbox worker: delivers queued replies through their platform, within its limits.

Each item is claimed with a lease, checked against the target's rate limits (counted from what
was actually sent, so replicas share one budget), delivered outside any transaction, then marked
sent. Retryable failures back off exponentially for ``[outbox] retry_period_hours`` after the
message was queued; permanent ones, or a fault outlasting the period, go to the dead-letter list.
A sweep (after a dead letter here, after the inbox gave up on an event, and once a minute for
other replicas' failures) tells every admin, in one message each, what newly failed; /死信 lists
them and sends them again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.addressing import ReplyRouter
from bot.clock import Clock
from bot.config import OutboxConfig
from bot.platforms.base import DeliveryError, Outgoing, Platform
from bot.replies import Text, ToMember
from bot.workers import BatchPoller
from handlers import deadletters as dead_letter_texts
from storage import cards as card_store
from storage import deadletters as dead_store
from storage import members as member_store
from storage import outbox as outbox_store
from storage.db import transaction

log = logging.getLogger(__name__)

# How often (real seconds, not the business clock) a worker looks for failures recorded elsewhere
# (another replica, the inbox, before a restart).
REPORT_EVERY_SECONDS = 60.0
# Kinds of outbox target (``Outgoing.target_kind``), each with its platform's rate limits.
TARGET_KINDS = ("member", "group")


class OutboxWorker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        platforms: dict[str, Platform],
        clock: Clock,
        config: OutboxConfig,
        replies: ReplyRouter | None = None,
        tz: dt.tzinfo | None = None,
    ) -> None:
        self.sessions = sessions
        self.platforms = platforms
        self.clock = clock
        self.config = config
        # Without a reply router (unit tests of sending alone) nobody is told about dead letters.
        self.replies = replies
        self.tz = tz
        self._report_due = True
        self._next_report: float | None = None
        self._report_lock = asyncio.Lock()
        self.poller = BatchPoller("outbox", self.deliver_due, loops=config.workers, poll_seconds=config.poll_seconds,
                                  batch_size=config.batch_size, gather_seconds=config.gather_ms / 1000)

    def wake(self) -> None:
        self.poller.wake()

    def report_soon(self) -> None:
        """Something failed for good (e.g. the inbox gave up on an event): sweep at the next batch."""
        self._report_due = True
        self.poller.wake()

    async def report_failures(self) -> int:
        """Tell every admin, in one message each, about dead letters not reported yet; how many.

        Each failure is marked reported in the transaction that queues the notices, so it is
        reported once (across replicas too); a notice that itself dies is listed but not reported.
        """
        if self.replies is None:
            return 0
        async with self._report_lock:
            async with transaction(self.sessions) as session:
                letters = [
                    letter for letter in await dead_store.take_unreported(session)
                    if not dead_letter_texts.is_notice(letter)
                ]
                if not letters:
                    return 0
                admins = await member_store.admins(session)
                total = len(await dead_store.dead_letters(session))
                text = dead_letter_texts.notice_text(letters, self.tz, total)
                await self.replies.enqueue(
                    session, [Text(text, to=ToMember(admin.id)) for admin in admins],
                    event=None, sender=None, inbox_id=None, now=self.clock.now(),
                )
            log.warning("reported %s new dead letter(s) to %s admin(s)", len(letters), len(admins))
        self.poller.wake()
        return len(letters)

    async def _sweep_if_due(self) -> None:
        now = asyncio.get_running_loop().time()
        if self.replies is None or not (self._report_due or self._next_report is None or now >= self._next_report):
            return
        self._report_due = False
        self._next_report = now + REPORT_EVERY_SECONDS
        try:
            await self.report_failures()
        except Exception:
            self._report_due = True
            log.exception("dead letters could not be reported; trying again with the next batch")

    async def metrics(self) -> dict[str, float]:
        """Gauges for monitoring: unsent messages and the oldest one's age."""
        async with self.sessions() as session:
            unsent, oldest = await outbox_store.backlog(session)
        age = max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest else 0.0
        return {"outbox_unsent": unsent, "outbox_oldest_age_seconds": age}

    async def deliver_due(self) -> int:
        """Claim one batch (the oldest due message of each of up to ``batch_size`` recipients), send
        them concurrently, and record the outcomes in one transaction; how many were claimed.

        Sends run outside any transaction, on each platform's one client session. A crash after a
        send and before its outcome is recorded resends it after the lease (as with one message
        at a time); nothing is ever lost.
        """
        now = self.clock.now()
        await self._sweep_if_due()
        async with transaction(self.sessions) as session:
            lease = dt.timedelta(seconds=self.config.lease_seconds)
            self.poller.claiming()
            windows = self._rate_windows()
            items = await outbox_store.claim_heads(session, list(self.platforms), now, lease, self.config.batch_size,
                                                   count_since=[now - window for window in windows])
            if self._report_due and self.replies is not None:
                self.poller.wake()  # a failure reported meanwhile: the next batch sweeps
            if not items:
                return 0
            deferred = await self._over_rate_limit(session, items, now, windows)
            await outbox_store.defer_many(session, list(deferred.items()), "rate limit: waiting for the target's budget")
            sending = [item for item in items if item.id not in deferred]
            updates = [item.payload["card"]["task_id"] for item in sending if item.kind == "card_update"]
            card_states = await outbox_store.card_states(session, updates)
        outgoing = [
            Outgoing(
                id=item.id,
                kind=item.kind,
                target_kind=item.target_kind,
                target=item.target,
                payload=item.payload,
                attempts=item.attempts,
                card_state=(
                    card_states.get(item.payload["card"]["task_id"], {}).get(item.platform) or {}
                    if item.kind == "card_update" else None
                ),
            )
            for item in sending
        ]
        platforms = {item.id: item.platform for item in sending}
        queued_at = {item.id: item.created_at for item in sending}
        outcomes = await asyncio.gather(*(self._send(self.platforms[platforms[o.id]], o) for o in outgoing))
        async with transaction(self.sessions) as session:
            sent = [(o.id, receipt) for o, (ok, receipt, _) in zip(outgoing, outcomes, strict=True) if ok]
            if len(outgoing) == 1 and len(sent) == 1:
                # The usual batch at low rates: the sent mark and the successor check in one statement.
                waiting = await outbox_store.mark_sent_one(session, *sent[0], self.clock.now())
            else:
                await outbox_store.mark_sent_many(session, sent, self.clock.now())
                done = [o for o, (ok, _, _) in zip(outgoing, outcomes, strict=True) if ok]
                for o, (ok, _, failure) in zip(outgoing, outcomes, strict=True):
                    if not ok and failure is not None:
                        if await self._record_failure(session, o, *failure, queued_at=queued_at[o.id]):
                            done.append(o)
                # Those recipients' next messages are due now: the loop goes on only then.
                waiting = await outbox_store.any_unsent(
                    session, sorted({(platforms[o.id], o.target) for o in done})
                )
        if waiting:
            self.poller.wake()
        return len(items)

    async def _send(
        self, platform: Platform, item: Outgoing
    ) -> tuple[bool, str | None, tuple[str, bool, float | None] | None]:
        """(sent, receipt, failure as (error, retryable, retry after))."""
        try:
            return True, await platform.deliver(item), None
        except DeliveryError as exc:
            return False, None, (str(exc), exc.retryable, exc.retry_after)
        except Exception as exc:  # network errors, timeouts, bugs: try again later
            log.exception("outbox item %s: unexpected delivery error", item.id)
            return False, None, (f"{type(exc).__name__}: {exc}", True, None)

    def _rate_windows(self) -> list[dt.timedelta]:
        """Every rate-limit window of every platform, which the claim counts for each item."""
        seconds = {
            limit.per_seconds
            for platform in self.platforms.values() for kind in TARGET_KINDS for limit in platform.rate_limits(kind)
        }
        return [dt.timedelta(seconds=n) for n in sorted(seconds)]

    async def _over_rate_limit(
        self, session: AsyncSession, items: list[outbox_store.ClaimedSend], now: dt.datetime,
        counted: list[dt.timedelta] | None = None,
    ) -> dict[int, dt.datetime]:
        """Claimed items whose target's budget is spent, with when to try again.

        Counted from what was actually sent (stored ``sent_at``), so every replica sees one budget:
        by the claim itself for the ``counted`` windows (``ClaimedSend.sent_since``), otherwise one
        query per platform and kind of target for the whole batch, every window at once.
        """
        deferred: dict[int, dt.datetime] = {}
        groups: dict[tuple[str, str], list[outbox_store.ClaimedSend]] = {}
        for item in items:
            groups.setdefault((item.platform, item.target_kind), []).append(item)
        for (name, target_kind), group in groups.items():
            limits = self.platforms[name].rate_limits(target_kind)
            if not limits:
                continue
            windows = [dt.timedelta(seconds=limit.per_seconds) for limit in limits]
            counts: dict[str, list[int]]
            if counted and all(window in counted for window in windows):
                positions = [counted.index(window) for window in windows]
                counts = {item.target: [item.sent_since[n] for n in positions] for item in group}
            else:
                # Every window counted in one statement.
                counts = await outbox_store.sent_counts_within(
                    session, name, sorted({item.target for item in group}), [now - window for window in windows]
                )
            for item in group:
                sent = counts.get(item.target) or [0] * len(limits)
                for limit, window, n in zip(limits, windows, sent, strict=True):
                    if n >= limit.count:
                        # Try again after a slice of the window rather than all of it.
                        deferred[item.id] = now + window / max(1, limit.count) + dt.timedelta(seconds=1)
                        break
        return deferred

    async def deliver(self, item_id: int) -> None:
        now = self.clock.now()
        async with transaction(self.sessions) as session:
            item = await outbox_store.claim(session, item_id, now, dt.timedelta(seconds=self.config.lease_seconds))
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
            queued_at = item.created_at
        try:
            receipt = await platform.deliver(outgoing)
        except DeliveryError as exc:
            await self._failed(outgoing, str(exc), exc.retryable, exc.retry_after, queued_at)
            return
        except Exception as exc:  # network errors, timeouts, bugs: try again later
            log.exception("outbox item %s: unexpected delivery error", item_id)
            await self._failed(outgoing, f"{type(exc).__name__}: {exc}", True, None, queued_at)
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

    async def _failed(
        self, item: Outgoing, error: str, retryable: bool, retry_after: float | None, queued_at: dt.datetime | None
    ) -> None:
        async with transaction(self.sessions) as session:
            await self._record_failure(session, item, error, retryable, retry_after, queued_at=queued_at)

    async def _record_failure(
        self, session: AsyncSession, item: Outgoing, error: str, retryable: bool, retry_after: float | None,
        *, queued_at: dt.datetime | None,
    ) -> bool:
        """Record a failed send: True when the item was given up (a dead letter), False when retried."""
        now = self.clock.now()
        period = dt.timedelta(hours=self.config.retry_period_hours)
        expired = queued_at is not None and now - queued_at >= period
        give_up = not retryable or expired or item.attempts >= self.config.max_attempts
        if give_up:
            log.error("outbox item %s dead-lettered after %s attempts: %s", item.id, item.attempts, error)
            await outbox_store.mark_dead(session, item.id, item.attempts, error, now)
            self._report_due = True
            return True
        # Exponential back-off, never sooner than the platform asked (45009 asks for a minute each time).
        delay = min(max(retry_after or 0.0, self._backoff(item.attempts)), self.config.backoff_max_seconds)
        log.warning("outbox item %s attempt %s failed (%s); retry in %.1fs", item.id, item.attempts, error, delay)
        retry_at = now + dt.timedelta(seconds=delay)
        if queued_at is not None:
            # The last try falls at the end of the period, not well past it.
            retry_at = max(now, min(retry_at, queued_at + period))
        await outbox_store.mark_retry(session, item.id, item.attempts, retry_at, error)
        return False

    def _backoff(self, attempts: int) -> float:
        base = self.config.backoff_base_seconds * 2.0 ** max(0, attempts - 1)
        return min(self.config.backoff_max_seconds, base) * random.uniform(0.8, 1.2)

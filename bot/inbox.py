"""The durable inbox: accept (store, de-duplicate, acknowledge), then process exactly once.

``accept`` commits the event before the adapter acknowledges the platform. Processing happens
in a worker: it takes a lease on the item, fetches any attachment from the platform, then runs
the handler, writes its replies to the outbox and marks the item done — all in one transaction,
so a crash at any point either leaves the item pending (and it is processed after restart) or
leaves it done with its replies queued.

An attachment the platform cannot hand over yet (an outage: ``media/get`` failing, timeouts) is
retried with back-off for ``[inbox] retry_period_minutes`` after the event arrived, without using up
``max_attempts``. An event given up on is a dead letter: the admins are told (by the outbox
worker's sweep) and the sender hears that they were, or, with no admin, only that it failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.addressing import QueuedReplies, ReplyRouter
from bot.clock import Clock
from bot.config import Config
from bot.context import Ctx
from bot.dispatcher import Dispatcher
from bot.errors import UserError
from bot.events import Event, EventKind
from bot.observability import METRICS, log_fields
from bot.platforms.base import MediaUnavailable, Platform
from bot.replies import Text
from bot.workers import BatchPoller
from storage import inbox as inbox_store
from storage import members as member_store
from storage.db import is_sqlite, string_length, transaction
from storage.media import MediaRejected, MediaStore
from storage.models import InboxItem

log = logging.getLogger(__name__)

ACCEPT_BATCH = 500
# Handling time after which a batch's transaction is committed and the batch goes on in the next.
COMMIT_BUDGET_SECONDS = 0.05
YIELD_EVERY_SECONDS = 0.01
_MEDIA_KIND_HINTS = {EventKind.IMAGE: "photo", EventKind.VOICE: "voice", EventKind.VIDEO: "video", EventKind.FILE: "file"}
_PLATFORM_CHARS = string_length(InboxItem.__table__.c.platform)
_MSG_ID_CHARS = string_length(InboxItem.__table__.c.platform_msg_id)


@dataclass(frozen=True)
class Accepted:
    inbox_id: int
    is_new: bool


def conversation_key(event: Event) -> str:
    return f"{event.platform}:{event.conversation or event.sender or event.job}"[:200]


class Inbox:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        dispatcher: Dispatcher,
        replies: ReplyRouter,
        platforms: dict[str, Platform],
        clock: Clock,
        config: Config,
        media: MediaStore,
        on_replies_queued: Callable[[], None] = lambda: None,
        on_failed: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.replies = replies
        self.platforms = platforms
        self.clock = clock
        self.config = config
        self.media = media
        self.on_replies_queued = on_replies_queued
        # Called after an item was given up for good (the admins are to be told).
        self.on_failed = on_failed
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._accepting: list[tuple[Event, asyncio.Future[Accepted]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # Heads claimed by the transaction that finished the batch before them (their lease and
        # attempt committed with it), for the next ``process_due``: no claim transaction of their own.
        self._claimed_next: list[inbox_store.Claimed] = []
        # SQLite has one writer and the engine one connection: more than one batch loop would only
        # queue for it, ahead of the acknowledgements and the outbox.
        sqlite = is_sqlite(config.storage.url)
        loops = 1 if sqlite else config.inbox.workers
        # Only SQLite's one connection needs sharing mid-batch; on PostgreSQL a batch is one commit.
        self._commit_budget = COMMIT_BUDGET_SECONDS if sqlite else float("inf")
        self.poller = BatchPoller("inbox", self.process_due, loops=loops, poll_seconds=config.inbox.poll_seconds,
                                  batch_size=config.inbox.batch_size, gather_seconds=config.inbox.gather_ms / 1000)

    async def accept(self, event: Event) -> Accepted:
        """Store the event durably (once per platform message id). Call before acknowledging.

        Concurrent accepts are committed together (group commit): each caller still returns only
        after the transaction holding its event has committed, but a burst of callbacks costs one
        transaction instead of one each.
        """
        if not 0 < len(event.platform) <= _PLATFORM_CHARS or not 0 < len(event.platform_msg_id) <= _MSG_ID_CHARS:
            # Refused here, for this caller alone, rather than failing the batch it would join.
            raise ValueError(
                f"event ids must be 1-{_PLATFORM_CHARS} (platform) and 1-{_MSG_ID_CHARS} (message id) characters"
            )
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._accepting.append((event, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_accepts(), name="inbox-accept")
        return await asyncio.shield(future)

    async def _flush_accepts(self) -> None:
        while self._accepting:
            batch, self._accepting = self._accepting[:ACCEPT_BATCH], self._accepting[ACCEPT_BATCH:]
            if len(batch) == 1:
                await self._commit(batch, split_on_bad_data=False)
            elif not await self._commit(batch, split_on_bad_data=True):
                # One bad event must not fail the callbacks that happened to arrive with it.
                for item in batch:
                    await self._commit([item], split_on_bad_data=False)

    async def _commit(
        self, batch: list[tuple[Event, asyncio.Future[Accepted]]], *, split_on_bad_data: bool
    ) -> bool:
        """Store a batch in one transaction and answer its callers.

        False, with the callers still waiting, when the batch was refused for its data and
        ``split_on_bad_data`` asks for the events to be stored one by one instead; any other
        failure stored nothing of the batch, and every caller gets the error.
        """
        try:
            async with transaction(self.sessions) as session:
                incoming = [
                    inbox_store.Incoming(event.platform, event.platform_msg_id, conversation_key(event), event.to_json())
                    for event, _ in batch
                ]
                results = await inbox_store.store_incoming_many(session, incoming, now=self.clock.now())
        except Exception as exc:
            if split_on_bad_data and _refused_for_its_data(exc):
                log.warning("storing %s incoming events together failed (%s); storing them one by one",
                            len(batch), type(exc).__name__)
                return False
            log.exception("storing %s incoming event(s) failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return True
        for (_, future), (inbox_id, is_new) in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(Accepted(inbox_id, is_new))
        if any(is_new for _, is_new in results):
            self.poller.wake()
        return True

    async def wait_processed(self, inbox_id: int, timeout: float = 30.0) -> None:
        """Wait until the worker has finished with an item (used by the console API and tests)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(inbox_id, []).append(future)
        try:
            async with self.sessions() as session:
                item = await inbox_store.load(session, inbox_id)
                if item is not None and item.status != "pending":
                    self._resolve(inbox_id)
            self.poller.wake()
            await asyncio.wait_for(future, timeout)
        finally:
            # A waiter that gave up (timeout, cancelled) must not stay behind: the item may be
            # finished by another replica, and then nothing here would ever pop it.
            waiting = self._waiters.get(inbox_id)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiters[inbox_id]

    async def backlog(self) -> inbox_store.Backlog:
        """积压: events waiting to be processed (all replicas), and the oldest one's arrival."""
        async with self.sessions() as session:
            return await inbox_store.backlog(session)

    async def metrics(self) -> dict[str, float]:
        """Gauges for monitoring (``/healthz`` shows them): backlog size and the oldest item's age."""
        backlog = await self.backlog()
        return {"inbox_pending": backlog.pending, "inbox_oldest_age_seconds": backlog.oldest_age_seconds(self.clock.now())}

    async def busy_for(self) -> int | None:
        """Seconds a caller should wait before trying again while the backlog is older than
        ``[inbox] busy_after_seconds``; None when it is not."""
        age = (await self.backlog()).oldest_age_seconds(self.clock.now())
        limit = self.config.inbox.busy_after_seconds
        if age <= limit:
            return None
        return int(min(60.0, max(1.0, age - limit)))

    def _resolve(self, inbox_id: int) -> None:
        for future in self._waiters.pop(inbox_id, []):
            if not future.done():
                future.set_result(None)

    async def process_due(self) -> int:
        """Claim one batch of conversation heads and process it; how many items were claimed.

        The worker loops call this; tests call it to process deterministically.
        """
        items, self._claimed_next = self._claimed_next, []
        if not items:
            lease = dt.timedelta(seconds=self.config.inbox.lease_seconds)
            async with transaction(self.sessions) as session:
                items = await inbox_store.claim_heads(session, self.clock.now(), lease, self.config.inbox.batch_size)
        if items:
            await self._process_claimed(items, claim_next=True)
        return len(items)

    async def process(self, inbox_id: int) -> None:
        """Claim and process one given item (nothing happens when it is not claimable)."""
        lease = dt.timedelta(seconds=self.config.inbox.lease_seconds)
        async with transaction(self.sessions) as session:
            item = await inbox_store.claim_one(session, inbox_id, self.clock.now(), lease)
        if item is not None:
            await self._process_claimed([item])

    async def _process_claimed(self, items: list[inbox_store.Claimed], *, claim_next: bool = False) -> None:
        """Process claimed items in one transaction: one commit for the whole batch.

        Each item's changes, its replies and its "done" mark are committed together or not at
        all, exactly as with one transaction per item. The batch is optimistic: when one item
        fails, the whole transaction is rolled back, that item's failure is recorded, and the
        batch runs again without it (handlers only change the database, so running one again
        after a rollback is safe). A crash before the commit leaves every item of the batch
        pending, to be retried after its lease.

        With ``claim_next``, the transaction that finishes the batch also claims the next heads
        (``self._claimed_next``, for the next ``process_due``): their lease and attempt are
        committed before any of them is handled, exactly as by a claim transaction of their own, so
        an item that brings the process down still uses up its attempts.
        """
        pending: list[tuple[inbox_store.Claimed, Event]] = []
        failures: list[tuple[inbox_store.Claimed, Event | None, Exception]] = []
        for item in items:
            event: Event | None = None
            try:
                event = Event.from_json(item.payload)
                if item.attempts > self.config.inbox.max_attempts:
                    # Every attempt allowed was claimed and none finished (the process died, or the
                    # handler outran its lease): an event that brings the worker down must not do so
                    # forever.
                    raise _Unfinished(f"{item.attempts - 1} attempts never finished")
                event = await self._stage_media(event)
            except Exception as exc:
                log.exception("inbox item %s (%s) failed on attempt %s", item.id, item.platform, item.attempts)
                failures.append((item, event, exc))
                continue
            pending.append((item, event))
        # Handlers run without a savepoint each: an item whose handler refused it (``UserError``)
        # rolls the batch back, and in the batch's next run it only gets its refusal, and the
        # others their savepoints (at most one run more per batch for refusals).
        refused: dict[int, UserError] = {}
        finished: set[int] = set()
        queued = False
        gave_up = False
        more = False  # the next item of a finished conversation is waiting
        while pending or failures:
            try:
                handled, final, told, waiting = await self._commit_batch(pending, failures, refused,
                                                                         claim_next=claim_next)
            except _ItemRefused as refusal:
                refused[refusal.item_id] = refusal.error
                continue
            except _ItemFailed as failed:
                log.error("inbox item %s (%s) failed on attempt %s", failed.item.id, failed.item.platform,
                          failed.item.attempts, exc_info=failed.cause)
                failures.append((failed.item, failed.event, failed.cause))
                pending = [(i, e) for i, e in pending if i.id != failed.item.id]
                continue
            except _AlreadyProcessed as done_elsewhere:
                # Finished meanwhile by another worker whose lease it was: its changes count, ours not.
                finished |= done_elsewhere.ids
                pending = [(i, e) for i, e in pending if i.id not in done_elsewhere.ids]
                continue
            except Exception:
                # The batch could not be committed at all (the database went away, a conflict):
                # each remaining item gets its own transaction instead.
                log.exception("inbox batch of %s item(s) could not be committed; processing them one by one",
                              len(pending) + len(failures))
                remaining = [*pending, *((item, event) for item, event, _ in failures)]
                errors = {item.id: error for item, _, error in failures}
                for item, maybe_event in remaining:
                    done, replied = await self._process_alone(item, maybe_event, errors.get(item.id))
                    queued |= replied
                    if done:
                        finished.add(item.id)
                        self._observe_latency([item])
                gave_up = True  # perhaps: the sweep finds out
                more = True
                break
            more |= waiting
            self._observe_latency([item for item in items if item.id in handled | final])
            finished |= handled | final
            gave_up |= bool(final)
            queued |= bool(handled) or told
            pending = [(i, e) for i, e in pending if i.id not in handled]
            failures = []
        if more:
            self.poller.wake()
        if queued:
            self.on_replies_queued()
        if gave_up:
            self.on_failed()
        for inbox_id in finished:
            self._resolve(inbox_id)

    def _observe_latency(self, items: list[inbox_store.Claimed]) -> None:
        """Arrival → processing commit, for items just finished (handled, or failed for good)."""
        now = self.clock.now()
        for item in items:
            if item.received_at is not None:
                METRICS.processing_latency.labels(platform=item.platform).observe(
                    max(0.0, (now - item.received_at).total_seconds())
                )

    async def _commit_batch(
        self,
        pending: list[tuple[inbox_store.Claimed, Event]],
        failures: list[tuple[inbox_store.Claimed, Event | None, Exception]],
        refused: dict[int, UserError] | None = None,
        *,
        claim_next: bool = False,
    ) -> tuple[set[int], set[int], bool, bool]:
        """Handle the first items of ``pending`` and record ``failures`` in one transaction:
        (ids handled, ids failed for good, sender told, another item of those conversations waits).

        On SQLite a transaction holds the one connection, which the callbacks' acknowledgements and
        the outbox also need: it is committed after ``COMMIT_BUDGET_SECONDS`` of handling (at least
        one item), and the rest of the batch goes on in the next one. With ``claim_next``, the
        transaction that finishes the last item claims the next heads (``_claimed_next``) instead
        of only looking whether there are any.

        Until an item of the batch was refused (``refused`` is empty), handlers run without
        savepoints: a refusal raises ``_ItemRefused`` and rolls everything back. Afterwards the
        refused items get their refusal alone and the others their savepoints.
        """
        final: set[int] = set()
        told = False
        loop = asyncio.get_running_loop()
        # Without savepoints, the batch's replies are written together just before the items are
        # finished (a failure rolls the whole transaction back, and the collected rows with it);
        # with them, each item's replies are written inside its own savepoint.
        queued = None if refused else QueuedReplies()
        async with transaction(self.sessions) as session:
            started = turned = loop.time()
            ids: list[int] = []
            for item, event in pending:
                if ids and loop.time() - started > self._commit_budget:
                    break
                try:
                    await self._handle_in(session, item.id, event, finish=False, savepoint=bool(refused),
                                          refused=(refused or {}).get(item.id), queue=queued)
                except _Refused as refusal:
                    raise _ItemRefused(item.id, refusal.error) from refusal.error
                except Exception as exc:
                    raise _ItemFailed(item, event, exc) from exc
                ids.append(item.id)
                if loop.time() - turned > YIELD_EVERY_SECONDS:
                    # A turn of the event loop: on SQLite a handler's statements run on the loop's
                    # thread, and without it a batch kept every other task (replies being sent,
                    # callbacks being read) waiting for all of its budget at each of their steps.
                    await asyncio.sleep(0)
                    turned = loop.time()
            if queued is not None:
                await queued.write(session, self.clock.now())
            missing = set(ids) - await inbox_store.finish_many(session, ids, self.clock.now())
            if missing:
                raise _AlreadyProcessed(missing)
            for failed_item, failed_event, error in failures:
                gave_up, notified = await self._record_failure_in(session, failed_item, failed_event, error)
                told |= notified
                if gave_up:
                    final.add(failed_item.id)
            claimed: list[inbox_store.Claimed] = []
            if claim_next and len(ids) == len(pending):
                # The batch ends here: the next heads (these conversations' next items among them)
                # are claimed in this transaction, and the loop goes on with them.
                lease = dt.timedelta(seconds=self.config.inbox.lease_seconds)
                claimed = await inbox_store.claim_heads(session, self.clock.now(), lease, self.config.inbox.batch_size)
                waiting = bool(claimed)
            else:
                # Their conversations' next items are claimable now: the batch loop goes on only then.
                done = set(ids) | final
                keys = {item.conversation_key for item, _ in pending if item.id in done}
                keys |= {item.conversation_key for item, _, _ in failures if item.id in done}
                waiting = await inbox_store.any_pending(session, sorted(keys))
        # Only once committed: a rolled-back claim leaves them to the next claim.
        self._claimed_next.extend(claimed)
        return set(ids), final, told, waiting

    async def _process_alone(
        self, item: inbox_store.Claimed, event: Event | None, failed: Exception | None = None
    ) -> tuple[bool, bool]:
        """One claimed item in its own transaction: (finished for good, replies queued).

        With ``failed``, the item already failed before its handler (e.g. its attachment could not
        be fetched): only that failure is recorded.
        """
        if failed is not None:
            try:
                async with transaction(self.sessions) as session:
                    return await self._record_failure_in(session, item, event, failed)
            except Exception:
                log.exception("inbox item %s: the failure could not be recorded; retried after its lease", item.id)
                return False, False
        try:
            if event is None:
                event = Event.from_json(item.payload)
            async with transaction(self.sessions) as session:
                await self._handle_in(session, item.id, event)
            return True, True
        except _AlreadyProcessed:
            return True, False
        except Exception as exc:
            log.exception("inbox item %s (%s) failed on attempt %s", item.id, item.platform, item.attempts)
            try:
                async with transaction(self.sessions) as session:
                    return await self._record_failure_in(session, item, event, exc)
            except Exception:
                log.exception("inbox item %s: the failure could not be recorded; retried after its lease", item.id)
                return False, False

    async def drain(self) -> None:
        """Finish pending accepts and bookkeeping before the database goes away.

        Heads claimed for a next batch that will not run (the loops have stopped) are given back:
        claimable at once again, their attempt not counted.
        """
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        held, self._claimed_next = self._claimed_next, []
        if held:
            try:
                async with transaction(self.sessions) as session:
                    await inbox_store.release_many(session, [(item.id, item.attempts) for item in held])
            except Exception:
                log.exception("%s claimed inbox item(s) could not be given back; retried after their lease", len(held))
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _stage_media(self, event: Event) -> Event:
        """Fetch a platform attachment into the media store and verify it, before any transaction."""
        event = await self._fetch_media(event)
        ref = event.media
        if ref is not None and ref.staged_sha256 and event.kind in _MEDIA_KIND_HINTS:
            try:
                data = await asyncio.to_thread(self.media.read_staged, ref.staged_sha256)
                # Verifying decodes the file; done here, the handler's own call finds the outcome.
                await asyncio.to_thread(
                    self.media.store, data, kind_hint=_MEDIA_KIND_HINTS[event.kind], filename=ref.filename, mime=ref.mime
                )
            except MediaRejected:
                pass  # the handler gets the same refusal and answers the sender
        return event

    async def _fetch_media(self, event: Event) -> Event:
        ref = event.media
        if ref is None or ref.staged_sha256 or not ref.platform_media_id:
            return event
        platform = self.platforms[event.platform]
        try:
            data = await platform.fetch_media(ref)
        except MediaUnavailable as exc:
            # Expired or oversized on the platform's side: the handler answers with a clear reply.
            log.info("attachment unavailable from %s: %s", event.platform, exc)
            return dataclasses.replace(event, media=dataclasses.replace(ref, staged_sha256="", unavailable=True))
        except Exception as exc:
            if getattr(exc, "retryable", False) is True or isinstance(exc, TimeoutError | ConnectionError):
                raise _PlatformOutage(f"{type(exc).__name__}: {exc}") from exc
            raise
        try:
            sha = await asyncio.to_thread(self.media.stage, data)
        except MediaRejected as exc:
            log.info("attachment rejected at staging: %s", exc.detail)
            return dataclasses.replace(event, media=dataclasses.replace(ref, staged_sha256="", size=len(data)))
        return dataclasses.replace(event, media=dataclasses.replace(ref, staged_sha256=sha, size=len(data)))

    async def _handle_in(
        self, session: AsyncSession, inbox_id: int, event: Event, *, finish: bool = True, savepoint: bool = True,
        refused: UserError | None = None, queue: QueuedReplies | None = None,
    ) -> None:
        """Handle one event in ``session``'s transaction and queue its replies (``queue``: collect
        them there, for the caller to write with the rest of its batch).

        ``savepoint=False``: a refusal raises ``_Refused`` (the caller rolls back); ``refused``:
        the handler refused this event in a run rolled back since, and only its refusal is queued.
        """
        member, dialogue_stored = await member_store.sender_and_dialogue(
            session, event.platform, event.sender, event.conversation
        )
        ctx = Ctx(
            session=session,
            clock=self.clock,
            config=self.config,
            event=event,
            member=member,
            media=self.media,
            inbox_id=inbox_id,
            dialogue_stored=dialogue_stored,
            no_savepoint=not savepoint,
        )
        # Every line logged while the event is handled names it (JSON logs carry these as fields).
        with log_fields(event_id=inbox_id, member=member.code if member else None, platform=event.platform):
            if refused is not None:
                replies = self.dispatcher.refusal(ctx, refused)
            else:
                try:
                    replies = await self.dispatcher.dispatch(ctx)
                except UserError as exc:
                    if savepoint:
                        raise  # not a refusal: dispatch answers those itself
                    raise _Refused(exc) from exc
        await self.replies.enqueue(
            session, replies, event=event, sender=member, inbox_id=inbox_id, now=self.clock.now(), into=queue
        )
        if finish and not await inbox_store.finish_item(session, inbox_id, self.clock.now()):
            raise _AlreadyProcessed({inbox_id})

    async def _record_failure_in(
        self, session: AsyncSession, item: inbox_store.Claimed, event: Event | None, exc: Exception
    ) -> tuple[bool, bool]:
        """Record a failed attempt: (the item is finished for good, the sender was told)."""
        now = self.clock.now()
        if isinstance(exc, _PlatformOutage):
            # Waiting for the platform: the period since the event arrived decides, not the attempts.
            waited = (now - item.received_at).total_seconds() if item.received_at else 0.0
            give_up = waited >= self.config.inbox.retry_period_minutes * 60
            delay = self._outage_delay(waited)
            error = str(exc)
        else:
            give_up = item.attempts >= self.config.inbox.max_attempts
            delay = self._retry_delay(item.attempts)
            error = f"{type(exc).__name__}: {exc}"
        retry_at = now + dt.timedelta(seconds=delay)
        recorded = await inbox_store.record_failure(
            session, item.id, item.attempts, error, give_up=give_up, retry_at=retry_at,
            uncounted=isinstance(exc, _PlatformOutage), now=now,
        )
        if recorded and not give_up:
            log.warning("inbox item %s: %s; retried in %.0fs", item.id, error, delay)
        told = recorded and give_up and await self._tell_sender(session, item.id, event)
        return recorded and give_up, told

    async def _tell_sender(self, session: AsyncSession, inbox_id: int, event: Event | None) -> bool:
        """Queue "could not process your message" to the sender, if known; never blocks the record."""
        if event is None or not event.sender:
            return False
        member = await member_store.member_by_platform_id(session, event.platform, event.sender)
        if member is None:
            return False
        # "已通知管理员" only when there is an admin for the dead-letter sweep to tell.
        admins = await member_store.admins(session)
        notice = texts.PROCESSING_FAILED if admins else texts.PROCESSING_FAILED_NO_ADMIN
        try:
            async with session.begin_nested():
                await self.replies.enqueue(
                    session, [Text(notice)], event=event, sender=member,
                    inbox_id=inbox_id, now=self.clock.now(),
                )
        except Exception:
            log.exception("inbox item %s: the failure notice could not be queued", inbox_id)
            return False
        return True

    def _retry_delay(self, attempts: int) -> float:
        return min(300.0, 5.0 * 2.0**attempts)

    def _outage_delay(self, waited_seconds: float) -> float:
        """Exponential back-off by time waited: tries at about 5, 10, 20, 40 … s, then every 5 min."""
        return min(300.0, max(5.0, waited_seconds))


def _refused_for_its_data(exc: Exception) -> bool:
    """The database refused what was written (a value too long, a constraint), as opposed to being
    unreachable or busy: only then can storing the events one by one help."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        # asyncpg's errors reach SQLAlchemy as plain DBAPIErrors; their SQLSTATE still tells:
        # class 22 is "data exception", 23 "integrity constraint violation".
        return str(getattr(exc.orig, "sqlstate", None) or "")[:2] in ("22", "23")
    return isinstance(exc, StatementError)  # a value that could not even be bound


class _AlreadyProcessed(Exception):
    """Another worker finished these items first; this transaction was rolled back."""

    def __init__(self, ids: set[int]) -> None:
        super().__init__(f"already processed: {sorted(ids)}")
        self.ids = ids


class _ItemFailed(Exception):
    """One item of a batch failed (the cause is chained); the batch was rolled back."""

    def __init__(self, item: inbox_store.Claimed, event: Event, cause: Exception) -> None:
        super().__init__(f"inbox item {item.id} failed")
        self.item = item
        self.event = event
        self.cause = cause


class _Refused(Exception):
    """A handler run without a savepoint refused its event (``UserError``): roll back."""

    def __init__(self, error: UserError) -> None:
        super().__init__(str(error))
        self.error = error


class _ItemRefused(Exception):
    """One item's handler refused it in a batch run without savepoints; the batch was rolled back."""

    def __init__(self, item_id: int, error: UserError) -> None:
        super().__init__(f"inbox item {item_id} refused")
        self.item_id = item_id
        self.error = error


class _PlatformOutage(Exception):
    """The platform could not hand over an attachment now (unreachable, busy, 5xx): try again later."""


class _Unfinished(Exception):
    """The item's earlier attempts were all claimed and never finished."""

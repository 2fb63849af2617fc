"""The outbox worker: retries with back-off, dead letters, per-target rate limits, no double sends."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.config import OutboxConfig
from bot.events import MediaRef
from bot.outbox import OutboxWorker
from bot.platforms.base import DeliveryError, Outgoing, RateLimit
from domain.enums import OutboxStatus
from storage import outbox as outbox_store
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import OutboxItem
from tests.conftest import START


class ScriptedPlatform:
    """A platform whose deliveries follow a script of outcomes."""

    name = "fake"

    def __init__(self, outcomes: list[Exception | None], limits: tuple[RateLimit, ...] = ()) -> None:
        self.outcomes = outcomes
        self.limits = limits
        self.delivered: list[Outgoing] = []
        self.attempts = 0

    def member_address(self, member):
        return "u"

    def group_address(self, team):
        return None

    def rate_limits(self, target_kind):
        return self.limits

    async def deliver(self, item: Outgoing) -> str | None:
        self.attempts += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.delivered.append(item)
        return f"receipt-{item.id}"

    async def fetch_media(self, ref: MediaRef) -> bytes:
        raise NotImplementedError

    async def start(self):
        return None

    async def close(self):
        return None


@pytest.fixture
async def setup(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/o.db")
    await upgrade(engine)
    sessions = session_factory(engine)
    clock = FrozenClock(START)
    yield sessions, clock
    await engine.dispose()


async def enqueue(sessions, clock, n: int = 1, target: str = "u") -> list[int]:
    async with transaction(sessions) as session:
        items = [
            outbox_store.enqueue(
                session, platform="fake", target_kind="member", target_id=1, target=target, kind="text",
                payload={"text": f"m{i}"}, now=clock.now(),
            )
            for i in range(n)
        ]
        await session.flush()
        return [i.id for i in items]


async def status(sessions, item_id: int) -> OutboxItem:
    async with sessions() as session:
        return await session.scalar(select(OutboxItem).where(OutboxItem.id == item_id))


async def test_a_retryable_failure_backs_off_then_succeeds_once(setup):
    sessions, clock = setup
    platform = ScriptedPlatform([DeliveryError("45009 api freq out of limit", retryable=True)])
    worker = OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=clock, config=OutboxConfig())
    [item_id] = await enqueue(sessions, clock)

    await worker.deliver(item_id)
    item = await status(sessions, item_id)
    assert item.status is OutboxStatus.PENDING and item.attempts == 1 and "45009" in item.last_error
    assert item.next_attempt_at > clock.now()
    await worker.deliver(item_id)  # not due yet: nothing happens
    assert platform.attempts == 1

    clock.advance(dt.timedelta(seconds=10))
    await worker.deliver(item_id)
    item = await status(sessions, item_id)
    assert item.status is OutboxStatus.SENT and item.platform_receipt == f"receipt-{item_id}"
    await worker.deliver(item_id)  # already sent: never sent twice
    assert len(platform.delivered) == 1


async def test_a_permanent_failure_goes_to_the_dead_letter_list(setup):
    sessions, clock = setup
    platform = ScriptedPlatform([DeliveryError("81013 user not found", retryable=False)])
    worker = OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=clock, config=OutboxConfig())
    [item_id] = await enqueue(sessions, clock)
    await worker.deliver(item_id)
    assert (await status(sessions, item_id)).status is OutboxStatus.DEAD
    async with sessions() as session:
        assert [i.id for i in await outbox_store.dead_letters(session)] == [item_id]


async def test_too_many_retryable_failures_also_dead_letter(setup):
    sessions, clock = setup
    platform = ScriptedPlatform([TimeoutError()] * 5)
    worker = OutboxWorker(
        sessions=sessions, platforms={"fake": platform}, clock=clock, config=OutboxConfig(max_attempts=3)
    )
    [item_id] = await enqueue(sessions, clock)
    for _ in range(3):
        await worker.deliver(item_id)
        clock.advance(dt.timedelta(hours=1))
    item = await status(sessions, item_id)
    assert item.status is OutboxStatus.DEAD and item.attempts == 3 and "TimeoutError" in item.last_error


async def test_a_full_rate_limit_defers_without_counting_an_attempt(setup):
    sessions, clock = setup
    platform = ScriptedPlatform([], limits=(RateLimit(2, 60),))
    worker = OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=clock, config=OutboxConfig())
    ids = await enqueue(sessions, clock, n=3)
    for item_id in ids:
        await worker.deliver(item_id)
    third = await status(sessions, ids[2])
    assert len(platform.delivered) == 2
    assert third.status is OutboxStatus.PENDING and third.attempts == 0 and "rate limit" in third.last_error
    clock.advance(dt.timedelta(seconds=61))
    await worker.deliver(ids[2])
    assert (await status(sessions, ids[2])).status is OutboxStatus.SENT


async def test_a_send_interrupted_by_a_crash_is_retried_after_its_lease(setup):
    sessions, clock = setup
    platform = ScriptedPlatform([])
    worker = OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=clock, config=OutboxConfig())
    [item_id] = await enqueue(sessions, clock)
    async with transaction(sessions) as session:  # a worker claimed it, then died
        assert await outbox_store.claim(session, item_id, clock.now(), dt.timedelta(seconds=120))
    await worker.deliver(item_id)
    assert platform.attempts == 0
    clock.advance(dt.timedelta(seconds=121))
    await worker.deliver(item_id)
    assert (await status(sessions, item_id)).status is OutboxStatus.SENT


async def test_a_late_failure_after_the_lease_ran_out_does_not_requeue_a_resent_item(setup):
    sessions, clock = setup
    started, gate = asyncio.Event(), asyncio.Event()

    class SlowFirstTry(ScriptedPlatform):
        async def deliver(self, item: Outgoing) -> str | None:
            if item.attempts == 1:  # hangs past its lease, then times out
                started.set()
                await gate.wait()
                raise DeliveryError("timed out", retryable=True)
            return await super().deliver(item)

    platform = SlowFirstTry([])
    first, second = (
        OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=clock, config=OutboxConfig())
        for _ in range(2)
    )
    [item_id] = await enqueue(sessions, clock)
    slow = asyncio.create_task(first.deliver(item_id))
    await started.wait()
    clock.advance(dt.timedelta(seconds=121))
    await second.deliver(item_id)  # the lease ran out: another worker sends it
    gate.set()
    await slow
    item = await status(sessions, item_id)
    assert item.status is OutboxStatus.SENT and len(platform.delivered) == 1
    async with sessions() as session:
        assert await outbox_store.due_items(session, ["fake"], clock.now() + dt.timedelta(hours=1), 10) == []

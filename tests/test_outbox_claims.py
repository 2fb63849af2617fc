"""What the outbox's claim and sent mark read in the same statement: each target's own sent count
(for its rate limits) and whether the target has a next message (to go on without a poll)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.config import OutboxConfig
from bot.outbox import OutboxWorker
from bot.platforms.base import Outgoing, RateLimit
from domain.enums import OutboxStatus
from storage import outbox as outbox_store
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import OutboxItem
from tests import pg
from tests.conftest import START


class Recording:
    def __init__(self, limits: tuple[RateLimit, ...] = ()) -> None:
        self.limits = limits
        self.delivered: list[Outgoing] = []
        self.sent = asyncio.Event()

    def rate_limits(self, target_kind):
        return self.limits

    async def deliver(self, item: Outgoing) -> str | None:
        self.delivered.append(item)
        self.sent.set()
        return f"receipt-{item.id}"

    async def start(self):
        return None

    async def close(self):
        return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pg.requires_postgres)])
async def sessions(request, tmp_path):
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/o.db")
        await upgrade(engine)
        yield session_factory(engine)
        await engine.dispose()
        return
    async with pg.scratch_database() as url:
        engine = create_engine(url)
        await upgrade(engine)
        yield session_factory(engine)
        await engine.dispose()


async def enqueue(sessions, targets: list[str]) -> None:
    async with transaction(sessions) as session:
        await outbox_store.enqueue_many(session, [
            {"platform": "fake", "target_kind": "member", "target_id": 1, "target": target, "kind": "text",
             "payload": {"text": f"m{i}"}, "source_event_id": None}
            for i, target in enumerate(targets)
        ], now=START)


async def test_a_targets_budget_counts_only_what_went_to_that_target(sessions):
    platform = Recording(limits=(RateLimit(2, 60), RateLimit(100, 3600)))
    worker = OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=FrozenClock(START),
                          config=OutboxConfig())
    await enqueue(sessions, ["a", "a", "a"])
    while await worker.deliver_due():
        pass
    await enqueue(sessions, ["b"])
    assert await worker.deliver_due() == 1  # b's first (a's third waits for its budget)
    assert [item.target for item in platform.delivered] == ["a", "a", "b"]
    async with sessions() as session:
        rows = {row.id: row for row in (await session.scalars(select(OutboxItem)))}
    assert [row.status for row in sorted(rows.values(), key=lambda row: row.id)] == [
        OutboxStatus.SENT, OutboxStatus.SENT, OutboxStatus.PENDING, OutboxStatus.SENT,
    ]


async def test_a_running_worker_goes_on_to_a_targets_next_message_without_waiting_for_a_poll(sessions):
    platform = Recording()
    worker = OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=FrozenClock(START),
                          config=OutboxConfig(poll_seconds=3600, batch_size=1, workers=1))
    await enqueue(sessions, ["a", "a", "a"])
    worker.poller.start()
    try:
        # The first claim runs at start; each later one only when something wakes the loop.
        async def three_sent() -> None:
            while len(platform.delivered) < 3:
                platform.sent.clear()
                await platform.sent.wait()

        await asyncio.wait_for(three_sent(), 30)
    finally:
        await worker.poller.stop()
    assert [item.payload["text"] for item in platform.delivered] == ["m0", "m1", "m2"]


async def test_a_claim_takes_no_more_heads_than_the_batch_size(sessions):
    platform = Recording()
    worker = OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=FrozenClock(START),
                          config=OutboxConfig(batch_size=2))
    await enqueue(sessions, ["a", "a", "b", "c", "d"])
    assert await worker.deliver_due() == 2
    assert [item.target for item in platform.delivered] == ["a", "b"]

"""The worker loops' wake-ups: one wake, one claim, however many loops are idle."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from bot.workers import BatchPoller
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade


async def test_one_wake_starts_one_claim_when_several_loops_wait():
    claims: list[int] = []
    first_round = asyncio.Event()

    async def run_batch() -> int:
        claims.append(1)
        if len(claims) == 3:  # each loop's first, unprompted claim
            first_round.set()
        return 0

    poller = BatchPoller("test", run_batch, loops=3, poll_seconds=3600, batch_size=10)
    poller.start()
    try:
        await asyncio.wait_for(first_round.wait(), 10)
        while len(claims) < 3:
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(claims) == 3  # every loop claimed once, then waits
        poller.wake()
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(claims) == 4  # one loop took the wake; the others wait on
        poller.wake()
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(claims) == 5
    finally:
        await poller.stop()


async def test_a_wake_given_before_a_claim_reads_the_queue_is_spent_by_it():
    claims = 0
    poller: BatchPoller

    async def run_batch() -> int:
        nonlocal claims
        claims += 1
        poller.wake()  # work committed before the claim looks: that claim sees it
        poller.claiming()
        return 0

    poller = BatchPoller("test", run_batch, loops=1, poll_seconds=3600, batch_size=10)
    poller.start()
    try:
        for _ in range(50):
            await asyncio.sleep(0)
        assert claims == 1
    finally:
        await poller.stop()


async def test_a_busy_loop_lets_a_waiting_transaction_have_sqlites_one_connection_between_batches(tmp_path):
    # The inbox's batch loop on SQLite's single pooled connection: while it has full batches, the
    # outbox (here: one more transaction) waits for that connection. It must get it after the batch
    # it waited behind, not after the loop runs out of work.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    await upgrade(engine)
    sessions = session_factory(engine)
    batches: list[str] = []
    waiting = asyncio.Event()

    async def run_batch() -> int:
        async with transaction(sessions) as session:
            await session.execute(text("SELECT 1"))
            batches.append("batch")
            waiting.set()
            await asyncio.sleep(0.01)  # the handlers' work, the connection held
        return 10  # always a full batch

    poller = BatchPoller("busy", run_batch, loops=1, poll_seconds=3600, batch_size=10)
    poller.start()
    try:
        await asyncio.wait_for(waiting.wait(), 10)
        async with transaction(sessions) as session:  # queues behind the running batch
            await session.execute(text("SELECT 1"))
            waited_behind = len(batches)
    finally:
        await poller.stop()
        await engine.dispose()
    assert waited_behind <= 2, f"the waiting transaction got the connection only after {waited_behind} batches"


async def test_a_woken_loop_gathers_work_that_arrives_within_its_window_into_one_batch():
    queue: list[int] = []
    batches: list[list[int]] = []
    claimed = asyncio.Event()

    async def run_batch() -> int:
        batch, queue[:] = list(queue), []
        if batch:
            batches.append(batch)
            claimed.set()
        return len(batch)

    poller = BatchPoller("gathering", run_batch, loops=1, poll_seconds=3600, batch_size=100, gather_seconds=0.5)
    poller.start()
    try:
        for _ in range(20):  # the loop's first claim finds nothing; it waits for a wake
            await asyncio.sleep(0)
        queue.append(1)
        poller.wake()
        for _ in range(20):  # the loop runs: woken, it waits for the window instead of claiming
            await asyncio.sleep(0)
        assert batches == []
        queue.extend([2, 3])  # more work within the window
        poller.wake()
        await asyncio.wait_for(claimed.wait(), 10)
        assert batches == [[1, 2, 3]]
    finally:
        await poller.stop()

"""Batch processing stays fair and ordered: one rep's flood, several replicas, concurrent sends."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from sqlalchemy import select

from bot.app import create_app
from bot.clock import FrozenClock
from bot.config import OutboxConfig
from bot.events import Event, EventKind, MediaRef
from bot.outbox import OutboxWorker
from bot.platforms.base import Outgoing, RateLimit
from domain.enums import InboxStatus, OutboxStatus
from storage import inbox as inbox_store
from storage import outbox as outbox_store
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import InboxItem, OutboxItem
from tests.conftest import START, Console, make_config


def text_event(member: str, msg_id: str, text: str = "你好") -> Event:
    return Event(platform="console", platform_msg_id=msg_id, kind=EventKind.TEXT, sender=member,
                 conversation=member, text=text)


@pytest.fixture
async def runtime(aiohttp_client, tmp_path, clock):
    config = make_config(tmp_path, inbox={"batch_size": 4})
    return Console(await aiohttp_client(create_app(config, clock=clock, workers=False))).runtime


async def status_of(runtime, inbox_ids: list[int]) -> dict[int, InboxStatus]:
    async with runtime.sessions() as session:
        return await inbox_store.statuses(session, inbox_ids)


async def test_a_flood_from_one_rep_does_not_delay_another_reps_message(runtime):
    flood = [(await runtime.inbox.accept(text_event("rep.li", f"flood-{i}"))).inbox_id for i in range(40)]
    other = (await runtime.inbox.accept(text_event("rep.zhao", "other-1"))).inbox_id

    processed = 0
    while (await status_of(runtime, [other]))[other] is InboxStatus.PENDING:
        claimed = await runtime.inbox.process_due()
        assert claimed, "the other rep's message was never claimed"
        processed += claimed
    # Each batch takes one message per conversation: the other rep's message went with the
    # flood's first one, not after all forty.
    assert processed <= 2
    assert list((await status_of(runtime, flood)).values()).count(InboxStatus.PENDING) == 39


async def test_a_flooding_reps_messages_are_handled_in_the_order_they_arrived(runtime):
    ids = [(await runtime.inbox.accept(text_event("rep.li", f"m-{i}"))).inbox_id for i in range(10)]
    while await runtime.inbox.process_due():
        pass
    async with runtime.sessions() as session:
        rows = (await session.execute(
            select(InboxItem.id, InboxItem.processed_at, InboxItem.status).where(InboxItem.id.in_(ids))
        )).all()
        replies = list(await session.scalars(
            select(OutboxItem.source_event_id).where(OutboxItem.source_event_id.in_(ids)).order_by(OutboxItem.id)
        ))
    assert {row.status for row in rows} == {InboxStatus.DONE}
    # Replies are queued in the transaction that handled their message: their order is the handling order.
    assert list(dict.fromkeys(replies)) == ids


async def test_a_second_replica_cannot_claim_a_conversations_next_message_while_its_head_is_leased(runtime):
    first = (await runtime.inbox.accept(text_event("rep.li", "a-1"))).inbox_id
    await runtime.inbox.accept(text_event("rep.li", "a-2"))
    other = (await runtime.inbox.accept(text_event("rep.zhao", "b-1"))).inbox_id
    lease = dt.timedelta(seconds=120)
    now = runtime.clock.now()
    async with transaction(runtime.sessions) as session:  # replica one takes the heads
        taken = await inbox_store.claim_heads(session, now, lease, limit=10)
    async with transaction(runtime.sessions) as session:  # replica two finds nothing to take
        assert await inbox_store.claim_heads(session, now, lease, limit=10) == []
    assert [item.id for item in taken] == [first, other]
    # Once the lease has run out (replica one died), the same head is claimed again: not skipped.
    async with transaction(runtime.sessions) as session:
        again = await inbox_store.claim_heads(session, now + lease + dt.timedelta(seconds=1), lease, limit=10)
    assert [item.id for item in again] == [first, other] and again[0].attempts == 2


async def test_an_item_that_fails_in_a_batch_does_not_undo_the_others(runtime, monkeypatch):
    ids = [(await runtime.inbox.accept(text_event(member, f"f-{member}"))).inbox_id
           for member in ("rep.li", "rep.zhao", "rep.sun")]
    real = runtime.dispatcher.dispatch

    async def fails_for_zhao(ctx):
        if ctx.event.sender == "rep.zhao":
            raise RuntimeError("handler bug")
        return await real(ctx)

    monkeypatch.setattr(runtime.dispatcher, "dispatch", fails_for_zhao)
    assert await runtime.inbox.process_due() == 3
    async with runtime.sessions() as session:
        items = {item.id: item for item in await session.scalars(select(InboxItem).where(InboxItem.id.in_(ids)))}
        replied = set(await session.scalars(select(OutboxItem.source_event_id)))
    assert items[ids[0]].status is InboxStatus.DONE and items[ids[2]].status is InboxStatus.DONE
    assert items[ids[1]].status is InboxStatus.PENDING and "handler bug" in items[ids[1]].error
    assert replied == {ids[0], ids[2]}


async def test_the_backlog_counts_waiting_events_and_the_oldest_ones_arrival(runtime):
    empty = await runtime.inbox.backlog()
    assert empty.pending == 0 and empty.oldest_age_seconds(runtime.clock.now()) == 0.0
    await runtime.inbox.accept(text_event("rep.li", "w-1"))
    runtime.clock.offset += dt.timedelta(seconds=90)
    await runtime.inbox.accept(text_event("rep.zhao", "w-2"))
    backlog = await runtime.inbox.backlog()
    assert backlog.pending == 2 and backlog.oldest_age_seconds(runtime.clock.now()) == 90.0


# ------------------------------------------------------------------------------ outbox


class GatedPlatform:
    """Deliveries wait until every expected target has a send in flight at the same time."""

    name = "fake"

    def __init__(self, concurrent: int, limits: tuple[RateLimit, ...] = ()) -> None:
        self.concurrent = concurrent
        self.limits = limits
        self.in_flight: set[str] = set()
        self.all_in_flight = asyncio.Event()
        self.delivered: list[Outgoing] = []

    def member_address(self, member):
        return "u"

    def group_address(self, team):
        return None

    def rate_limits(self, target_kind):
        return self.limits

    async def deliver(self, item: Outgoing) -> str | None:
        self.in_flight.add(item.target)
        if len(self.in_flight) >= self.concurrent:
            self.all_in_flight.set()
        await self.all_in_flight.wait()
        self.delivered.append(item)
        return f"receipt-{item.id}"

    async def fetch_media(self, ref: MediaRef) -> bytes:
        raise NotImplementedError

    async def start(self):
        return None

    async def close(self):
        return None


@pytest.fixture
async def sessions(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/o.db")
    await upgrade(engine)
    yield session_factory(engine)
    await engine.dispose()


async def enqueue(sessions, targets: list[str]) -> list[int]:
    async with transaction(sessions) as session:
        items = [
            outbox_store.enqueue(session, platform="fake", target_kind="member", target_id=1, target=target,
                                 kind="text", payload={"text": f"m{i}"}, now=START)
            for i, target in enumerate(targets)
        ]
        await session.flush()
        return [item.id for item in items]


async def test_messages_to_different_targets_are_sent_concurrently(sessions):
    platform = GatedPlatform(concurrent=3)
    worker = OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=FrozenClock(START),
                          config=OutboxConfig())
    await enqueue(sessions, ["a", "b", "c"])
    # Sequential sends would wait for each other for ever; the guard only turns that into a failure.
    assert await asyncio.wait_for(worker.deliver_due(), timeout=30) == 3
    assert sorted(item.target for item in platform.delivered) == ["a", "b", "c"]


async def test_one_target_gets_its_messages_one_at_a_time_and_in_order(sessions):
    platform = GatedPlatform(concurrent=1)
    worker = OutboxWorker(sessions=sessions, platforms={"fake": platform}, clock=FrozenClock(START),
                          config=OutboxConfig())
    ids = await enqueue(sessions, ["a", "a", "a", "b"])
    assert await worker.deliver_due() == 2  # the head for "a" and the one for "b"
    while await worker.deliver_due():
        pass
    assert [item.id for item in platform.delivered if item.target == "a"] == ids[:3]


async def test_a_targets_rate_limit_is_shared_by_replicas(sessions):
    limits = (RateLimit(2, 60),)
    platforms = [GatedPlatform(concurrent=1, limits=limits) for _ in range(2)]
    clock = FrozenClock(START)
    replicas = [OutboxWorker(sessions=sessions, platforms={"fake": p}, clock=clock, config=OutboxConfig())
                for p in platforms]
    ids = await enqueue(sessions, ["a"] * 5)
    for _ in range(3):
        for replica in replicas:
            await replica.deliver_due()
    assert sum(len(p.delivered) for p in platforms) == 2
    async with sessions() as session:
        third = await session.get(OutboxItem, ids[2])
    assert third.status is OutboxStatus.PENDING and third.attempts == 0 and "rate limit" in third.last_error


# ------------------------------------------------------------------------------ backlog at the edge


@pytest.fixture
async def console(aiohttp_client, tmp_path, clock):
    config = make_config(tmp_path, inbox={"busy_after_seconds": 60})
    return Console(await aiohttp_client(create_app(config, clock=clock, workers=False)))


async def test_the_console_answers_503_with_retry_after_behind_an_old_backlog_and_stores_nothing(console):
    runtime = console.runtime
    await runtime.inbox.accept(text_event("rep.li", "stuck-1"))
    runtime.clock.offset += dt.timedelta(seconds=75)
    response = await console.client.post("/console/api/messages", json={"member": "rep.zhao", "text": "你好"})
    assert response.status == 503
    assert response.headers["Retry-After"] == "15"
    assert "busy" in (await response.json())["error"]
    assert (await runtime.inbox.backlog()).pending == 1  # the refused message was not stored


async def test_healthz_shows_the_backlog_and_its_oldest_items_age(console):
    await console.runtime.inbox.accept(text_event("rep.li", "h-1"))
    console.runtime.clock.offset += dt.timedelta(seconds=30)
    response = await console.client.get("/healthz")
    queues = (await response.json())["queues"]
    assert queues["inbox_pending"] == 1 and queues["inbox_oldest_age_seconds"] == 30.0
    assert queues["outbox_unsent"] == 0


# ------------------------------------------------------------------------------ replicas on both stores


@pytest.fixture(params=["sqlite", "postgresql"])
async def replica_sessions(request, tmp_path):
    """Two engines on one database, as two replicas have."""
    from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database

    async def engines(url: str):
        first, second = create_engine(url), create_engine(url)
        await upgrade(first)
        return first, second

    if request.param == "sqlite":
        first, second = await engines(f"sqlite+aiosqlite:///{tmp_path}/replicas.db")
        yield session_factory(first), session_factory(second)
        await first.dispose()
        await second.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    async with scratch_database() as url:
        first, second = await engines(url)
        yield session_factory(first), session_factory(second)
        await first.dispose()
        await second.dispose()


async def test_a_claim_takes_no_more_heads_than_its_limit(replica_sessions):
    one, _ = replica_sessions
    now = START.astimezone(dt.UTC)
    async with transaction(one) as session:
        await inbox_store.store_incoming_many(session, [
            inbox_store.Incoming("console", f"m-{i}", f"console:rep{i}", {"kind": "text"}) for i in range(12)
        ], now=now)
    lease = dt.timedelta(seconds=120)
    for expected in ([1, 2], [3, 4], [5, 6]):
        async with transaction(one) as session:
            claimed = await inbox_store.claim_heads(session, now, lease, limit=2)
        assert [item.conversation_key for item in claimed] == [f"console:rep{n - 1}" for n in expected]


async def test_replicas_claiming_at_once_never_share_an_item_nor_a_conversation(replica_sessions):
    one, two = replica_sessions
    now = START.astimezone(dt.UTC)
    async with transaction(one) as session:
        await inbox_store.store_incoming_many(session, [
            inbox_store.Incoming("console", f"m-{i}", f"console:rep{i % 7}", {"kind": "text"}) for i in range(60)
        ], now=now)
    lease = dt.timedelta(seconds=120)

    async def claim(sessions):
        taken = []
        for _ in range(5):
            async with transaction(sessions) as session:
                taken += await inbox_store.claim_heads(session, now, lease, limit=3)
        return taken

    first, second = await asyncio.gather(claim(one), claim(two))
    claimed = first + second
    assert len({item.id for item in claimed}) == len(claimed) == 7  # one head per conversation, once
    assert len({item.conversation_key for item in claimed}) == 7


async def test_a_batch_lets_other_tasks_run_between_its_items(runtime, monkeypatch):
    # On SQLite a handler's statements run on the event loop's thread: a batch that never gave the
    # loop a turn held replies being sent and callbacks being read for its whole commit budget at
    # each of their steps. Here each item's handling takes 15 ms of CPU (longer than the inbox's
    # turn interval); another task must get a turn between one item and the next, not only between
    # commits.
    original = runtime.inbox.dispatcher.dispatch
    turns = 0
    gaps: list[tuple[int, int]] = []  # the other task's turns when an item ended and the next began
    ended: int | None = None

    async def slow_dispatch(ctx):
        nonlocal ended
        if ended is not None:
            gaps.append((ended, turns))
        until = time.perf_counter() + 0.015
        while time.perf_counter() < until:
            pass
        replies = await original(ctx)
        ended = turns
        return replies

    monkeypatch.setattr(runtime.inbox.dispatcher, "dispatch", slow_dispatch)
    for n in range(3):
        await runtime.inbox.accept(text_event("rep.li" if n == 0 else f"rep.{n}", f"slow-{n}"))
    running = True

    async def other_task() -> None:
        nonlocal turns
        while running:
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_task())
    try:
        assert await runtime.inbox.process_due() == 3  # one batch, within one commit budget
    finally:
        running = False
        await ticker
    assert len(gaps) == 2
    assert all(began > ended for ended, began in gaps), gaps

"""Never lose: an event accepted into the inbox is processed even if the process stops first."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import texts
from bot.app import create_app
from bot.events import Event, EventKind
from domain.enums import InboxStatus
from storage import inbox as inbox_store
from storage.db import transaction
from storage.models import InboxItem, OutboxItem, Touch
from tests.conftest import Console, texts_of
from tests.seed import add_customer


async def test_an_accepted_event_not_yet_processed_is_processed_after_restart(aiohttp_client, config, clock):
    # First life: workers off, so the event is stored and acknowledged but never handled.
    first = Console(await aiohttp_client(create_app(config, clock=clock, workers=False)))
    await add_customer(first.runtime, "rep.li", "华东建材")
    event = Event(
        platform="console",
        platform_msg_id="m-1",
        kind=EventKind.TEXT,
        sender="rep.li",
        conversation="rep.li",
        text="华东建材 电话20分钟 聊了报价细节,明天发报价单",
    )
    accepted = await first.runtime.inbox.accept(event)
    assert accepted.is_new
    await first.client.close()
    async with first.runtime.sessions() as session:
        [item] = list(await session.scalars(select(InboxItem)))
        assert item.status is InboxStatus.PENDING
        assert list(await session.scalars(select(Touch))) == []

    # Second life: the worker finds it and processes it once.
    second = Console(await aiohttp_client(create_app(config, clock=clock)))
    await second.runtime.inbox.wait_processed(accepted.inbox_id)
    async with second.runtime.sessions() as session:
        [item] = list(await session.scalars(select(InboxItem)))
        assert item.status is InboxStatus.DONE
        [touch] = list(await session.scalars(select(Touch)))
        assert touch.source_event_id == item.id
        replies = list(await session.scalars(select(OutboxItem)))
    assert [r.kind for r in replies] == ["card"]

    # A platform redelivery after the restart is recognised as a duplicate.
    again = await second.runtime.inbox.accept(event)
    assert not again.is_new and again.inbox_id == accepted.inbox_id


async def test_a_handler_crash_rolls_back_and_the_event_is_retried(aiohttp_client, config, clock, monkeypatch):
    console = Console(await aiohttp_client(create_app(config, clock=clock)))
    await add_customer(console.runtime, "rep.li", "华东建材")
    import handlers.touches as touches_module

    real = touches_module.touch_store.record_touch
    calls = {"n": 0}

    async def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated crash after partial work")
        return await real(*args, **kwargs)

    monkeypatch.setattr(touches_module.touch_store, "record_touch", flaky)
    monkeypatch.setattr("bot.inbox.Inbox._retry_delay", lambda self, attempts: 0.0)
    reply = await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    assert calls["n"] == 2
    assert [c for c in texts_of(reply) if c.startswith("【已记录跟进")]
    async with console.runtime.sessions() as session:
        assert len(list(await session.scalars(select(Touch)))) == 1
        [item] = list(await session.scalars(select(InboxItem)))
    assert item.attempts == 2 and item.status is InboxStatus.DONE


async def test_an_event_that_keeps_failing_is_marked_failed_and_the_sender_told(aiohttp_client, config, clock, monkeypatch):
    console = Console(await aiohttp_client(create_app(config, clock=clock)))
    await add_customer(console.runtime, "rep.li", "华东建材")
    import handlers.touches as touches_module

    async def broken(*args, **kwargs):
        raise RuntimeError("always broken")

    monkeypatch.setattr(touches_module.touch_store, "record_touch", broken)
    monkeypatch.setattr("bot.inbox.Inbox._retry_delay", lambda self, attempts: 0.0)
    reply = await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    assert texts_of(reply) == ["抱歉,处理您刚才的消息时出错,已通知管理员。请稍后重试。"]
    async with console.runtime.sessions() as session:
        [item] = list(await session.scalars(select(InboxItem)))
        assert list(await session.scalars(select(Touch))) == []
    assert item.status is InboxStatus.FAILED and "always broken" in item.error


async def _app_without_workers(aiohttp_client, config, clock) -> Console:
    return Console(await aiohttp_client(create_app(config, clock=clock, workers=False)))


async def test_an_unreadable_stored_event_is_marked_failed_after_its_attempts(aiohttp_client, config, clock):
    runtime = (await _app_without_workers(aiohttp_client, config, clock)).runtime
    async with transaction(runtime.sessions) as session:
        inbox_id, _ = await inbox_store.store_incoming(
            session, platform="console", platform_msg_id="bad", conversation_key="console:x",
            payload={"kind": "no-such-kind"}, now=clock.now(),
        )
    for _ in range(config.inbox.max_attempts + 1):
        await runtime.inbox.process(inbox_id)
        clock.offset += dt.timedelta(minutes=10)
    async with runtime.sessions() as session:
        item = await inbox_store.load(session, inbox_id)
    assert item.status is InboxStatus.FAILED and item.attempts == config.inbox.max_attempts
    assert "no-such-kind" in item.error


async def test_an_event_whose_attempts_never_finish_is_given_up_and_the_sender_told(aiohttp_client, config, clock):
    runtime = (await _app_without_workers(aiohttp_client, config, clock)).runtime
    event = Event(platform="console", platform_msg_id="m-crash", kind=EventKind.TEXT, sender="rep.li",
                  conversation="rep.li", text="华东建材 电话20分钟")
    accepted = await runtime.inbox.accept(event)
    lease = dt.timedelta(seconds=config.inbox.lease_seconds)
    for _ in range(config.inbox.max_attempts):  # each attempt claimed, then the process died
        async with transaction(runtime.sessions) as session:
            assert await inbox_store.claim(session, accepted.inbox_id, clock.now(), lease)
        clock.offset += lease + dt.timedelta(seconds=1)
    await runtime.inbox.process(accepted.inbox_id)
    async with runtime.sessions() as session:
        item = await inbox_store.load(session, accepted.inbox_id)
        replies = list(await session.scalars(select(OutboxItem)))
        touches = list(await session.scalars(select(Touch)))
    assert item.status is InboxStatus.FAILED and "never finished" in item.error
    assert touches == []
    assert [(r.target, r.payload["text"]) for r in replies] == [("rep.li", texts.PROCESSING_FAILED)]


async def test_a_failure_is_recorded_even_when_the_sender_cannot_be_told(aiohttp_client, config, clock, monkeypatch):
    runtime = (await _app_without_workers(aiohttp_client, config, clock)).runtime

    async def no_route(*args, **kwargs):
        raise ValueError("member has no address")

    monkeypatch.setattr(runtime.inbox.replies, "enqueue", no_route)
    event = Event(platform="console", platform_msg_id="m-1", kind=EventKind.TEXT, sender="rep.li",
                  conversation="rep.li", text="你好")
    accepted = await runtime.inbox.accept(event)
    for _ in range(config.inbox.max_attempts):
        await runtime.inbox.process(accepted.inbox_id)
        clock.offset += dt.timedelta(minutes=10)
    async with runtime.sessions() as session:
        item = await inbox_store.load(session, accepted.inbox_id)
    assert item.status is InboxStatus.FAILED and "no address" in item.error


async def test_one_bad_event_does_not_fail_the_callbacks_accepted_with_it(aiohttp_client, config, clock, monkeypatch):
    runtime = (await _app_without_workers(aiohttp_client, config, clock)).runtime
    real = inbox_store.store_incoming_many

    async def refuses_bad(session, items, *, now):
        if any(item.platform_msg_id == "bad" for item in items):
            raise IntegrityError("INSERT INTO inbox", {}, Exception("constraint failed"))
        return await real(session, items, now=now)

    monkeypatch.setattr(inbox_store, "store_incoming_many", refuses_bad)

    def event(msg_id: str) -> Event:
        return Event(platform="console", platform_msg_id=msg_id, kind=EventKind.TEXT, sender="rep.li",
                     conversation="rep.li", text="你好")

    results = await asyncio.gather(
        runtime.inbox.accept(event("good-1")), runtime.inbox.accept(event("bad")),
        runtime.inbox.accept(event("good-2")), return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert results[0].is_new and results[2].is_new
    # An id longer than its column is refused for its caller before it joins a batch.
    with pytest.raises(ValueError):
        await runtime.inbox.accept(event("x" * 129))
    async with runtime.sessions() as session:
        assert sorted(i.platform_msg_id for i in await session.scalars(select(InboxItem))) == ["good-1", "good-2"]


async def test_a_waiter_that_times_out_is_forgotten(aiohttp_client, config, clock):
    runtime = (await _app_without_workers(aiohttp_client, config, clock)).runtime
    event = Event(platform="console", platform_msg_id="m-1", kind=EventKind.TEXT, sender="rep.li",
                  conversation="rep.li", text="你好")
    accepted = await runtime.inbox.accept(event)
    with pytest.raises(TimeoutError):
        await runtime.inbox.wait_processed(accepted.inbox_id, timeout=0.05)
    assert runtime.inbox._waiters == {}

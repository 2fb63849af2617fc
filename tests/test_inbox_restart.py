"""Never lose: an event accepted into the inbox is processed even if the process stops first."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import create_app
from bot.events import Event, EventKind
from storage.models import InboxItem, InboxStatus, OutboxItem, Touch
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

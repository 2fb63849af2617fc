"""The transaction that finishes a batch claims the next heads: committed before they are handled."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import create_app
from bot.errors import UserError
from bot.events import Event, EventKind
from domain.enums import InboxStatus
from storage.db import transaction
from storage.models import InboxItem, OutboxItem, Setting
from tests.conftest import Console, make_config


def text_event(member: str, msg_id: str, text: str = "你好") -> Event:
    return Event(platform="console", platform_msg_id=msg_id, kind=EventKind.TEXT, sender=member,
                 conversation=member, text=text)


async def rows(runtime, ids):
    async with runtime.sessions() as session:
        return {item.id: item for item in await session.scalars(select(InboxItem).where(InboxItem.id.in_(ids)))}


async def test_a_conversations_next_item_is_claimed_and_committed_with_the_batch_that_finished_its_head(
    aiohttp_client, tmp_path, clock
):
    runtime = Console(await aiohttp_client(create_app(make_config(tmp_path), clock=clock, workers=False))).runtime
    first = (await runtime.inbox.accept(text_event("rep.li", "n-1"))).inbox_id
    second = (await runtime.inbox.accept(text_event("rep.li", "n-2"))).inbox_id

    assert await runtime.inbox.process_due() == 1
    items = await rows(runtime, [first, second])
    assert items[first].status is InboxStatus.DONE
    # Already leased, its attempt counted, before its handler ran: a process that dies handling it
    # leaves that attempt on record, as a claim transaction of its own would.
    assert items[second].status is InboxStatus.PENDING
    assert items[second].attempts == 1 and items[second].lease_until is not None

    assert await runtime.inbox.process_due() == 1
    assert (await rows(runtime, [second]))[second].status is InboxStatus.DONE
    assert await runtime.inbox.process_due() == 0


async def test_heads_claimed_for_a_batch_that_never_runs_are_given_back_on_drain(aiohttp_client, tmp_path, clock):
    runtime = Console(await aiohttp_client(create_app(make_config(tmp_path), clock=clock, workers=False))).runtime
    await runtime.inbox.accept(text_event("rep.li", "d-1"))
    second = (await runtime.inbox.accept(text_event("rep.li", "d-2"))).inbox_id
    await runtime.inbox.process_due()

    await runtime.inbox.drain()

    item = (await rows(runtime, [second]))[second]
    assert item.status is InboxStatus.PENDING and item.attempts == 0 and item.lease_until is None
    assert await runtime.inbox.process_due() == 1
    assert (await rows(runtime, [second]))[second].status is InboxStatus.DONE


async def test_a_refusal_in_a_batch_undoes_only_that_items_changes_and_is_its_reply(aiohttp_client, tmp_path, clock,
                                                                                     monkeypatch):
    runtime = Console(await aiohttp_client(
        create_app(make_config(tmp_path, inbox={"batch_size": 4}), clock=clock, workers=False)
    )).runtime
    ids = [(await runtime.inbox.accept(text_event(member, f"r-{member}"))).inbox_id
           for member in ("rep.li", "rep.zhao", "rep.sun")]
    real = runtime.dispatcher._route
    runs: list[str] = []

    async def refuses_zhao(ctx):
        runs.append(ctx.event.sender)
        ctx.session.add(Setting(key=f"mark:{ctx.event.sender}", value={}))
        await ctx.session.flush()
        if ctx.event.sender == "rep.zhao":
            raise UserError("不行", detail="refused in the test")
        return await real(ctx)

    monkeypatch.setattr(runtime.dispatcher, "_route", refuses_zhao)
    assert await runtime.inbox.process_due() == 3

    items = await rows(runtime, ids)
    assert {item.status for item in items.values()} == {InboxStatus.DONE}
    async with runtime.sessions() as session:
        marks = set(await session.scalars(select(Setting.key).where(Setting.key.like("mark:%"))))
        replies = {row.source_event_id: row.payload for row in await session.execute(
            select(OutboxItem.source_event_id, OutboxItem.payload).where(OutboxItem.source_event_id.in_(ids)))}
    assert marks == {"mark:rep.li", "mark:rep.sun"}  # the refused handler's write is undone, the others' kept
    assert "不行" in str(replies[ids[1]]) and set(replies) == set(ids)
    # The batch ran again after the refusal, without running the refused handler again.
    assert runs == ["rep.li", "rep.zhao", "rep.li", "rep.sun"]

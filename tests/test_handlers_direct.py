"""Handlers called directly with a ``Ctx``: the returned replies and the stored state.

The app (from the ``console`` fixture) only provides a migrated database with the small org; each
test builds the context itself — a session, a frozen clock, the acting member, the event — and
calls the handler (or the dispatcher, where the dispatcher's own checks are the behaviour).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from bot import texts as bot_texts
from bot.clock import FrozenClock
from bot.context import Ctx
from bot.errors import UserError
from bot.events import Event, EventKind
from bot.replies import CardReply, CardUpdate, Markdown, Text
from handlers import alerts, touches
from handlers import help as help_module
from handlers import texts as touch_texts
from handlers.touches import TouchState, UndoTouch
from storage import calendar as calendar_store
from storage import dialogues
from storage import members as member_store
from storage.models import Member, Touch
from tests.conftest import START, unique_id
from tests.seed import add_customer


def make_ctx(runtime: Any, session: Any, member: Member, text: str = "", *, kind: EventKind = EventKind.TEXT) -> Ctx:
    """A context as the dispatcher hands it on: hooks and commands set, no dialogue, no card."""
    event = Event(
        platform="console", platform_msg_id=unique_id(), kind=kind, sender=member.code,
        conversation=member.code, occurred_at=START, text=text,
    )
    return Ctx(
        session=session, clock=FrozenClock(START), config=runtime.config, event=event, member=member,
        media=runtime.media, hooks=runtime.dispatcher.hooks, commands=tuple(runtime.dispatcher.command_routes),
    )


async def member(session: Any, code: str) -> Member:
    found = await member_store.member_by_code(session, code)
    assert found is not None, code
    return found


async def stored_touches(session: Any) -> list[Touch]:
    return list(await session.scalars(select(Touch).order_by(Touch.id)))


# --- /帮助 per role ---------------------------------------------------------------------------------


async def test_help_lists_for_a_rep_the_rep_commands_and_no_admin_command(console):
    async with console.runtime.sessions() as session:
        [reply] = await help_module.show_help(make_ctx(console.runtime, session, await member(session, "rep.li"), "/帮助"))
    assert isinstance(reply, Markdown)
    for command in ("/今日", "/客户 名称", "/阶段 客户 [目标阶段]", "/申请", "/竞品", "/话术", "/反馈", "/帮助"):
        assert command in reply.text
    assert "/规则" not in reply.text and "**管理员**" not in reply.text and "**主管**" not in reply.text


async def test_help_shows_an_admin_the_admin_command_and_what_admins_see(console):
    async with console.runtime.sessions() as session:
        [reply] = await help_module.show_help(make_ctx(console.runtime, session, await member(session, "admin.he")))
    assert isinstance(reply, Markdown)
    assert "/规则 [假期|调休|删除 日期 备注] — 查看阈值与工作日日历" in reply.text
    assert "**管理员**" in reply.text and "/今日" in reply.text


async def test_help_gives_a_manager_the_manager_notes_but_not_the_admin_command(console):
    async with console.runtime.sessions() as session:
        [reply] = await help_module.show_help(make_ctx(console.runtime, session, await member(session, "mgr.wang")))
    assert isinstance(reply, Markdown)
    assert "**主管**" in reply.text and "/规则" not in reply.text


async def test_help_lists_every_command_an_admin_may_use_and_nothing_else(console):
    routes = console.runtime.dispatcher.command_routes
    async with console.runtime.sessions() as session:
        [reply] = await help_module.show_help(make_ctx(console.runtime, session, await member(session, "admin.he")))
    assert isinstance(reply, Markdown)
    listed = [line.split()[1] for line in reply.text.splitlines() if line.startswith("- /") and " — " in line]
    assert listed == [route.names[0] for route in routes]


# --- a command with a role refusal -------------------------------------------------------------------


async def test_a_rep_is_refused_the_admin_rules_command_and_no_day_is_declared(console):
    runtime = console.runtime
    async with runtime.sessions() as session, session.begin():
        ctx = make_ctx(runtime, session, await member(session, "rep.li"), "/规则 假期 2027-01-01 元旦")
        replies = await runtime.dispatcher.dispatch(ctx)
        assert replies == [Text(bot_texts.COMMAND_NOT_PERMITTED.format(name="/规则"))]
        assert await calendar_store.declared_days(session) == []


async def test_an_admin_declares_a_holiday_range_through_the_rules_handler(console):
    runtime = console.runtime
    async with runtime.sessions() as session, session.begin():
        ctx = make_ctx(runtime, session, await member(session, "admin.he"), "/规则 假期 2027/1/1～2027/1/3 元旦")
        [reply] = await alerts.rules_command(ctx)
        assert isinstance(reply, Text) and "已设定 3 天" in reply.text
        assert [row.day for row in await calendar_store.declared_days(session)] == [
            dt.date(2027, 1, 1), dt.date(2027, 1, 2), dt.date(2027, 1, 3)
        ]


async def test_a_backwards_range_is_refused_by_the_rules_handler_and_nothing_is_stored(console):
    runtime = console.runtime
    async with runtime.sessions() as session, session.begin():
        ctx = make_ctx(runtime, session, await member(session, "admin.he"), "/规则 假期 2027-01-03..2027-01-01")
        with pytest.raises(UserError, match="结束日期早于开始日期"):
            await alerts.rules_command(ctx)
        assert await calendar_store.declared_days(session) == []


# --- a card action with a typed payload ------------------------------------------------------------


async def test_undo_receives_its_typed_payload_and_closes_the_clicked_card(console):
    runtime = console.runtime
    await add_customer(runtime, "rep.li", "华东建材")
    async with runtime.sessions() as session, session.begin():
        rep = await member(session, "rep.li")
        logged = await touches.log_touch(make_ctx(runtime, session, rep, "华东建材 电话20分钟 聊了报价,明天发报价单"))
        [touch] = await stored_touches(session)
        card = next(r.card for r in logged if isinstance(r, CardReply))
        [button] = card.buttons
        payload = UndoTouch.unpack(button.action)
        assert payload == UndoTouch(touch_id=touch.id)

        ctx = make_ctx(runtime, session, rep, kind=EventKind.ACTION)
        ctx.card = card  # what the dispatcher resolved from the click
        replies = await touches.undo(ctx, payload)
        assert replies[0] == CardUpdate(card.closed(touch_texts.UNDONE_NOTE))
        assert Text(touch_texts.UNDONE.format(customer="华东建材")) in replies
        await session.refresh(touch)
        assert touch.undone_at is not None


async def test_undo_of_another_reps_touch_is_refused_and_the_touch_stays(console):
    runtime = console.runtime
    await add_customer(runtime, "rep.li", "华东建材")
    async with runtime.sessions() as session, session.begin():
        logged = await touches.log_touch(
            make_ctx(runtime, session, await member(session, "rep.li"), "华东建材 电话20分钟 聊了报价,明天发报价单")
        )
        [touch] = await stored_touches(session)
        card = next(r.card for r in logged if isinstance(r, CardReply))
        ctx = make_ctx(runtime, session, await member(session, "rep.zhao"), kind=EventKind.ACTION)
        ctx.card = card
        with pytest.raises(UserError) as refused:
            await touches.undo(ctx, UndoTouch.unpack(card.buttons[0].action))
        assert refused.value.message == touch_texts.UNDO_NOT_YOURS
        await session.refresh(touch)
        assert touch.undone_at is None


# --- a dialogue step ----------------------------------------------------------------------------------


async def answer_after_a_question(runtime: Any, session: Any, rep: Member, answer_text: str) -> Ctx:
    """Log a touch without a next action (the bot asks for it); the context of the rep's answer."""
    first = make_ctx(runtime, session, rep, "华东建材 电话10分钟 聊了交期")
    [question] = await touches.log_touch(first)
    assert question == Text(touch_texts.ASK_NEXT + touch_texts.DIALOGUE_HINT)
    assert first.dialogue is not None and first.dialogue.state == TouchState.NEXT
    answer = make_ctx(runtime, session, rep, answer_text)
    answer.dialogue = first.dialogue  # what the dispatcher loads for the next message
    return answer


async def test_a_missing_next_action_is_asked_and_the_answer_completes_the_touch(console):
    runtime = console.runtime
    await add_customer(runtime, "rep.li", "华东建材")
    async with runtime.sessions() as session, session.begin():
        rep = await member(session, "rep.li")
        answer = await answer_after_a_question(runtime, session, rep, "明天发报价单")
        assert await stored_touches(session) == []
        replies = await touches.answer_missing_field(answer)
        assert any(isinstance(r, CardReply) and r.card.title == "已记录跟进 · 华东建材" for r in replies)
        [touch] = await stored_touches(session)
        assert (touch.next_action, touch.next_due) == ("发报价单", dt.date(2026, 11, 26))
        assert answer.dialogue is None
        key = dialogues.DialogueKey("console", rep.code, rep.id)
        assert await dialogues.load_dialogue(session, key) is None


async def test_a_cancel_word_in_the_dialogue_ends_it_and_stores_no_touch(console):
    runtime = console.runtime
    await add_customer(runtime, "rep.li", "华东建材")
    async with runtime.sessions() as session, session.begin():
        answer = await answer_after_a_question(runtime, session, await member(session, "rep.li"), "不记了")
        assert await touches.answer_missing_field(answer) == [Text(touch_texts.CANCELLED)]
        assert answer.dialogue is None and await stored_touches(session) == []

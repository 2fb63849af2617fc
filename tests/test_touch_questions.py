"""Follow-up questions of a touch message through the console: asked only when needed, quoting the
rep, with likely answers as buttons; low-confidence readings confirmed on the saved card."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import Config
from handlers import texts_touch
from storage.models import Customer, Dialogue, Touch
from tests.conftest import cards_of, make_config, texts_of
from tests.seed import add_customer

# START is Wednesday 2026-11-25. An admin declared Monday 2026-11-30 a day off.


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, rules={"holidays": ["2026-11-30"]})


async def touches(console) -> list[Touch]:
    async with console.runtime.sessions() as session:
        return list(await session.scalars(select(Touch).order_by(Touch.id)))


async def dialogues(console) -> list[Dialogue]:
    async with console.runtime.sessions() as session:
        return list(await session.scalars(select(Dialogue)))


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("你好", texts_touch.CHIT_CHAT_GREETING),
        ("在吗", texts_touch.CHIT_CHAT_GREETING),
        ("hello", texts_touch.CHIT_CHAT_GREETING),
        ("谢谢", texts_touch.CHIT_CHAT_ACK),
        ("好的", texts_touch.CHIT_CHAT_ACK),
    ],
)
async def test_chit_chat_is_answered_briefly_and_never_offered_as_a_customer(console, text, answer):
    reply = await console.send("rep.li", text)
    assert texts_of(reply) == [answer]
    assert cards_of(reply) == []
    assert await dialogues(console) == []
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Customer).where(Customer.name == text))) == []


async def test_a_vague_week_is_asked_with_its_days_as_buttons_and_the_click_saves(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "华东建材 电话10分钟 聊了交期 下周再联系")

    [card] = cards_of(reply)
    assert "「华东建材 电话10分钟 聊了交期 下周再联系」" in card["body"] and "“下周”" in card["body"]
    labels = [b["label"] for b in card["buttons"]]
    assert labels == ["下周一(11月30日)", "下周三(12月2日)", "下周五(12月4日)", "不确定"]
    assert await touches(console) == []

    reply = await console.click("rep.li", card, "下周三(12月2日)")
    assert cards_of(reply)[-1]["title"] == "已记录跟进 · 华东建材"
    [touch] = await touches(console)
    assert touch.next_due == dt.date(2026, 12, 2) and "联系" in touch.next_action
    assert await dialogues(console) == []


async def test_not_sure_keeps_the_week_as_a_range_due_by_its_last_day(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 电话10分钟 聊了交期 下周再联系"))
    await console.click("rep.li", card, "不确定")
    [touch] = await touches(console)
    assert touch.next_due == dt.date(2026, 12, 4)
    assert "11月30日–12月4日" in touch.next_action


async def test_a_vague_week_can_be_answered_by_typing_a_day(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话10分钟 聊了交期 下周找时间上门")
    reply = await console.send("rep.li", "下周四")
    assert cards_of(reply)[-1]["title"] == "已记录跟进 · 华东建材"
    [touch] = await touches(console)
    assert touch.next_due == dt.date(2026, 12, 3) and "上门" in touch.next_action


async def test_an_action_without_a_date_offers_likely_days(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "华东建材 电话10分钟 聊了交期 准备发报价单")
    assert texts_of(reply)[0].startswith("「发报价单」打算什么时候做?")
    card = cards_of(reply)[0]
    assert [b["label"] for b in card["buttons"]] == ["明天(11月26日)", "后天(11月27日)", "下周一(11月30日)"]
    await console.click("rep.li", card, "后天(11月27日)")
    [touch] = await touches(console)
    assert touch.next_due == dt.date(2026, 11, 27) and touch.next_action == "发报价单"


async def test_an_older_question_card_does_not_act_on_a_newer_draft(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    [old] = cards_of(await console.send("rep.li", "华东建材 电话10分钟 下周再联系"))
    await console.send("rep.li", "华东建材 电话5分钟 下周找时间上门")
    reply = await console.click("rep.li", old, "下周三(12月2日)")
    assert texts_of(reply)[-1] == "这个选择已经失效(可能已超时),请重新发送跟进内容。"
    assert await touches(console) == []


async def test_a_misspelt_customer_is_saved_and_confirmed_on_the_card(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "华东建才 电话20分钟 聊了报价,明天发报价单")
    [card] = cards_of(reply)
    fields = {f["label"]: f["value"] for f in card["fields"]}
    assert fields["请确认"] == "是指「华东建材」吗?"
    assert [b["label"] for b in card["buttons"]] == ["对的", "不对,撤销"]
    [touch] = await touches(console)

    reply = await console.click("rep.li", card, "对的")
    [updated] = [i["payload"]["card"] for i in reply["replies"] if i["kind"] == "card_update"]
    assert [b["label"] for b in updated["buttons"]] == ["撤销"]
    assert "请确认" not in {f["label"] for f in updated["fields"]}
    [touch] = await touches(console)
    assert touch.undone_at is None


async def test_no_on_the_confirmation_withdraws_the_touch(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建才 电话20分钟 聊了报价,明天发报价单"))
    reply = await console.click("rep.li", card, "不对,撤销")
    assert "已撤销「华东建材」的这条跟进记录。" in texts_of(reply)
    [touch] = await touches(console)
    assert touch.undone_at is not None


async def test_a_weekday_that_is_today_is_saved_for_today_and_confirmed(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 电话10分钟 聊了交期 周三下午拜访"))
    fields = {f["label"]: f["value"] for f in card["fields"]}
    assert fields["请确认"] == "下次动作是今天 11月25日 周三吗?"
    [touch] = await touches(console)
    assert touch.next_due == dt.date(2026, 11, 25) and touch.next_action == "下午 拜访"


async def test_a_clear_message_asks_nothing_and_confirms_nothing(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 wx 20min 聊了报价 傍晚再call"))
    assert [b["label"] for b in card["buttons"]] == ["撤销"]
    [touch] = await touches(console)
    assert touch.next_due == dt.date(2026, 11, 25) and touch.channel.value == "微信"
    assert touch.next_action.startswith("傍晚")


async def test_working_days_count_on_the_team_calendar(console):
    # Wednesday + 3 working days is Monday 11-30, declared a day off: Tuesday 12-01.
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话10分钟 聊了交期 3个工作日后发合同")
    [touch] = await touches(console)
    assert touch.next_due == dt.date(2026, 12, 1)


async def test_traditional_characters_are_read(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "華東建材 電話二十分鐘 聊了報價 下週三再拜訪")
    [touch] = await touches(console)
    assert touch.channel.value == "电话" and touch.duration_minutes == 20
    assert touch.next_due == dt.date(2026, 12, 2)


async def test_a_date_without_an_action_offers_the_usual_next_steps(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "华东建材 电话10分钟 聊了交期,明天")
    card = cards_of(reply)[-1]
    assert [b["label"] for b in card["buttons"]] == ["电话跟进", "上门拜访", "发资料"]
    await console.click("rep.li", card, "上门拜访")
    [touch] = await touches(console)
    assert touch.next_action == "上门拜访" and touch.next_due == dt.date(2026, 11, 26)


async def test_chit_chat_during_a_question_keeps_the_question_open(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话10分钟 聊了交期")  # asks for the next action
    assert texts_of(await console.send("rep.li", "好的")) == [texts_touch.CHIT_CHAT_ACK]
    [dialogue] = await dialogues(console)
    assert dialogue.state == "touch.next"
    await console.send("rep.li", "明天发报价单")
    [touch] = await touches(console)
    assert touch.next_action == "发报价单" and touch.summary == "电话10分钟 聊了交期"


async def test_chit_chat_while_a_customer_card_is_open_keeps_the_draft(console):
    await add_customer(console.runtime, "rep.li", "华东建材", contacts=("张总",))
    await add_customer(console.runtime, "rep.li", "金陵置业", contacts=("张总",))
    [card] = cards_of(await console.send("rep.li", "张总 电话15分钟 聊了交期,明天回电"))
    assert texts_of(await console.send("rep.li", "谢谢")) == [texts_touch.CHIT_CHAT_ACK]
    reply = await console.click("rep.li", card, "金陵置业")
    assert cards_of(reply)[-1]["title"] == "已记录跟进 · 金陵置业"

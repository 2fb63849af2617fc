"""Transcripts through the console API: what a rep types, what the bot answers, what is stored."""

from __future__ import annotations

import datetime as dt
import io

from PIL import Image
from sqlalchemy import select

from domain.enums import EvidenceStatus
from storage.models import Customer, Dialogue, Evidence, Touch
from tests.conftest import START, cards_of, texts_of
from tests.seed import add_customer


def jpeg_bytes(size: tuple[int, int] = (640, 480)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


async def touches(console) -> list[Touch]:
    async with console.runtime.sessions() as session:
        return list(await session.scalars(select(Touch).order_by(Touch.id)))


async def test_a_complete_message_is_saved_at_once_with_an_undo_button(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材", contacts=("张总",))
    reply = await console.send("rep.li", "华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访")

    [card] = cards_of(reply)
    assert card["title"] == "已记录跟进 · 华东建材"
    assert [b["label"] for b in card["buttons"]] == ["撤销"]
    fields = {f["label"]: f["value"] for f in card["fields"]}
    assert fields["渠道"] == "电话 · 20分钟"
    assert "上门拜访" in fields["下次动作"] and "12月2日" in fields["下次动作"]
    [touch] = await touches(console)
    assert touch.customer_id == customer.id
    assert touch.channel.value == "电话" and touch.duration_minutes == 20
    assert touch.next_due == dt.date(2026, 12, 2)
    assert "报价细节" in touch.summary
    assert touch.evidence_status is EvidenceStatus.PENDING and not touch.effective


async def test_a_photo_within_the_window_becomes_evidence_and_makes_the_touch_effective(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    clock.offset += dt.timedelta(minutes=5)
    reply = await console.upload("rep.li", jpeg_bytes(), "visit.jpg")

    assert any("已将照片作为凭证关联到「华东建材」" in t and "有效触达" in t for t in texts_of(reply))
    [touch] = await touches(console)
    assert touch.effective and touch.evidence_status is EvidenceStatus.PROVIDED
    async with console.runtime.sessions() as session:
        [evidence] = list(await session.scalars(select(Evidence)))
    assert evidence.touch_id == touch.id and evidence.kind.value == "photo"
    assert evidence.attributes["width"] == 640
    assert (console.runtime.media.path_of(evidence.thumb_path)).is_file()


async def test_a_short_call_with_evidence_is_recorded_but_not_effective(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话1分钟 没聊几句,明天再打")
    reply = await console.upload("rep.li", jpeg_bytes(), "call.jpg")
    assert any("未计为有效触达:电话需≥2分钟" in t for t in texts_of(reply))
    [touch] = await touches(console)
    assert not touch.effective and touch.evidence_status is EvidenceStatus.PROVIDED


async def test_a_photo_after_the_window_asks_which_customer(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.li", "金陵置业")
    await console.send("rep.li", "华东建材 上门拜访40分钟 看了工地,下周一送样品")
    clock.offset += dt.timedelta(minutes=11)
    reply = await console.upload("rep.li", jpeg_bytes(), "site.jpg")
    [card] = cards_of(reply)
    assert card["title"] == "这份凭证属于哪个客户?"
    assert [b["label"] for b in card["buttons"]] == ["华东建材", "取消"]
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Evidence))) == []

    reply = await console.click("rep.li", card, "华东建材")
    assert any("关联到「华东建材」" in t for t in texts_of(reply))
    [touch] = await touches(console)
    assert touch.effective


async def test_missing_next_action_is_asked_for_and_the_answer_completes_the_touch(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "华东建材 微信发了定制方案")
    assert texts_of(reply) == ["下次动作是什么?什么时候?(例如:周五前发报价单)(回复“取消”可放弃本次记录)"]
    assert await touches(console) == []
    async with console.runtime.sessions() as session:
        [dialogue] = list(await session.scalars(select(Dialogue)))
    assert dialogue.state == "touch.next"

    reply = await console.send("rep.li", "周五前电话确认反馈")
    assert cards_of(reply)[0]["title"] == "已记录跟进 · 华东建材"
    [touch] = await touches(console)
    assert touch.next_due == dt.date(2026, 11, 27)
    assert "确认反馈" in touch.next_action
    assert touch.channel.value == "微信" and touch.proposal
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Dialogue))) == []


async def test_a_next_action_without_a_date_asks_when(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话10分钟 聊了交期")
    reply = await console.send("rep.li", "发报价单")
    assert texts_of(reply)[0].startswith("「发报价单」打算什么时候做?")
    reply = await console.send("rep.li", "后天")
    assert cards_of(reply)
    [touch] = await touches(console)
    assert touch.next_action == "发报价单" and touch.next_due == dt.date(2026, 11, 27)


async def test_cancel_ends_the_dialogue_and_saves_nothing(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话10分钟 聊了交期")
    reply = await console.send("rep.li", "取消")
    assert texts_of(reply) == ["已取消,本次跟进未记录。"]
    assert await touches(console) == []


async def test_an_idle_dialogue_expires_and_the_next_message_starts_fresh(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.li", "金陵置业")
    await console.send("rep.li", "华东建材 电话10分钟 聊了交期")
    clock.offset += dt.timedelta(minutes=31)
    reply = await console.send("rep.li", "金陵置业 电话5分钟 确认地址,明天寄样品")
    assert cards_of(reply)[0]["title"] == "已记录跟进 · 金陵置业"
    [touch] = await touches(console)
    async with console.runtime.sessions() as session:
        customer = await session.get(Customer, touch.customer_id)
    assert customer.name == "金陵置业"


async def test_undo_withdraws_the_touch_and_restores_the_last_touch_time(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    before = customer.last_touch_at
    clock.offset += dt.timedelta(hours=2)
    reply = await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    card = cards_of(reply)[0]

    reply = await console.click("rep.li", card, "撤销")
    assert "已撤销「华东建材」的这条跟进记录。" in texts_of(reply)
    [update] = [i for i in reply["replies"] if i["kind"] == "card_update"]
    assert update["payload"]["card"]["closed_note"] == "已撤销"
    [touch] = await touches(console)
    assert touch.undone_at is not None
    async with console.runtime.sessions() as session:
        refreshed = await session.get(Customer, customer.id)
    assert refreshed.last_touch_at is None or refreshed.last_touch_at <= before

    again = await console.click("rep.li", card, "撤销")
    assert texts_of(again) == ["这张卡片已经处理过了,无需重复操作。"]


async def test_ambiguous_customer_gets_a_card_with_candidates(console):
    await add_customer(console.runtime, "rep.li", "华东建材", contacts=("张总",))
    await add_customer(console.runtime, "rep.li", "金陵置业", contacts=("张总",))
    reply = await console.send("rep.li", "张总 电话15分钟 聊了交期,明天回电")
    [card] = cards_of(reply)
    assert card["title"] == "是哪个客户?"
    assert sorted(b["label"] for b in card["buttons"]) == sorted(["取消", "金陵置业", "华东建材"])
    assert await touches(console) == []

    reply = await console.click("rep.li", card, "金陵置业")
    titles = [c["title"] for c in cards_of(reply)]
    assert titles == ["已记录跟进 · 金陵置业"]


async def test_unknown_customer_offers_a_new_lead(console):
    reply = await console.send("rep.li", "滨江幕墙 面谈30分钟 初次介绍产品,下周二发资料")
    [card] = cards_of(reply)
    assert card["body"] == "您名下没有「滨江幕墙」。要新建为线索并记录这次跟进吗?"
    reply = await console.click("rep.li", card, "新建线索「滨江幕墙」")
    assert any("已新建线索「滨江幕墙」(阶段:新线索)" in t for t in texts_of(reply))
    [touch] = await touches(console)
    assert touch.channel.value == "面访" and touch.duration_minutes == 30


async def test_today_lists_due_actions_pending_evidence_and_cold_customers(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.li", "金陵置业")
    await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    clock.offset += dt.timedelta(days=4)
    reply = await console.send("rep.li", "/今日")
    [item] = reply["replies"]
    text = item["payload"]["text"]
    assert item["kind"] == "markdown"
    assert "华东建材:发报价单" in text and "已逾期3天" in text
    assert "**待补凭证**" in text
    assert "**超过72小时未跟进**" in text and "金陵置业" in text


async def test_customer_command_shows_stage_and_recent_touches_within_scope(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    reply = await console.send("rep.li", "/客户 华东建材")
    text = reply["replies"][0]["payload"]["text"]
    assert "阶段:新线索" in text and "聊了报价细节" in text
    # Another team's rep cannot see it; the team's manager can.
    assert texts_of(await console.send("rep.sun", "/客户 华东建材")) == ["在您可查看的客户中没有找到「华东建材」。"]
    assert "华东建材" in texts_of(await console.send("mgr.wang", "/客户 华东建材"))[0]


async def test_help_is_there_for_everyone(console):
    reply = await console.send("rep.li", "/帮助")
    assert "/今日" in reply["replies"][0]["payload"]["text"]


async def test_dialogue_state_survives_a_restart(aiohttp_client, config, clock):
    from bot.app import create_app
    from tests.conftest import Console

    first = Console(await aiohttp_client(create_app(config, clock=clock)))
    await add_customer(first.runtime, "rep.li", "华东建材")
    await first.send("rep.li", "华东建材 电话10分钟 聊了交期")
    await first.client.close()

    second = Console(await aiohttp_client(create_app(config, clock=clock)))
    reply = await second.send("rep.li", "明天发报价单")
    assert cards_of(reply)[0]["title"] == "已记录跟进 · 华东建材"


def test_start_is_a_wednesday():
    assert START.weekday() == 2


async def test_a_touch_without_evidence_after_the_deadline_stays_non_effective(console, clock):
    import uuid

    from bot.events import Event, EventKind

    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    clock.offset += dt.timedelta(hours=25)
    accepted = await console.runtime.inbox.accept(
        Event(platform="schedule", platform_msg_id=uuid.uuid4().hex, kind=EventKind.SCHEDULE, job="evidence_deadline")
    )
    await console.runtime.inbox.wait_processed(accepted.inbox_id)
    [touch] = await touches(console)
    assert touch.evidence_status is EvidenceStatus.MISSING and not touch.effective
    assert "**待补凭证**" not in texts_of(await console.send("rep.li", "/今日"))[0]

    # A photo now is kept, but the touch does not become effective.
    [card] = cards_of(await console.upload("rep.li", jpeg_bytes(), "late.jpg"))
    reply = await console.click("rep.li", card, "华东建材")
    assert any("已超过补凭证期限" in t for t in texts_of(reply))
    async with console.runtime.sessions() as session:
        assert (await session.get(Touch, touch.id)).effective is False
        assert len(list(await session.scalars(select(Evidence)))) == 1


async def test_an_older_new_lead_card_cannot_create_the_lead_of_a_newer_message(console):
    first = cards_of(await console.send("rep.li", "滨江幕墙 面谈30分钟 初次介绍产品,下周二发资料"))[0]
    second = cards_of(await console.send("rep.li", "钱塘建工 电话10分钟 约了见面,明天拜访"))[0]

    reply = await console.click("rep.li", first, "新建线索「滨江幕墙」")
    assert texts_of(reply)[-1] == "这个选择已经失效(可能已超时),请重新发送跟进内容。"
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Customer))) == []
    assert await touches(console) == []

    # The newer card still works and logs its own message.
    reply = await console.click("rep.li", second, "新建线索「钱塘建工」")
    assert any("已新建线索「钱塘建工」" in t for t in texts_of(reply))
    [touch] = await touches(console)
    assert touch.channel.value == "电话" and touch.duration_minutes == 10


async def test_cancelling_an_older_customer_card_leaves_the_newer_one_working(console):
    await add_customer(console.runtime, "rep.li", "华东建材", contacts=("张总",))
    await add_customer(console.runtime, "rep.li", "金陵置业", contacts=("张总",))
    first = cards_of(await console.send("rep.li", "张总 电话15分钟 聊了交期,明天回电"))[0]
    second = cards_of(await console.send("rep.li", "张总 上门拜访40分钟 看了样品,周五报价"))[0]

    await console.click("rep.li", first, "取消")
    reply = await console.click("rep.li", second, "金陵置业")
    assert [c["title"] for c in cards_of(reply)] == ["已记录跟进 · 金陵置业"]
    [touch] = await touches(console)
    assert touch.channel.value == "面访" and touch.duration_minutes == 40


async def test_an_older_which_customer_card_cannot_file_a_newer_photo(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 上门拜访40分钟 看了工地,下周一送样品")
    clock.offset += dt.timedelta(minutes=11)
    first = cards_of(await console.upload("rep.li", jpeg_bytes((640, 480)), "first.jpg"))[0]
    second = cards_of(await console.upload("rep.li", jpeg_bytes((320, 240)), "second.jpg"))[0]

    reply = await console.click("rep.li", first, "华东建材")
    assert texts_of(reply) == ["这个选择已经失效(可能已超时),请重新发送跟进内容。"]
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Evidence))) == []

    await console.click("rep.li", second, "华东建材")
    async with console.runtime.sessions() as session:
        [evidence] = list(await session.scalars(select(Evidence)))
    assert evidence.attributes["width"] == 320


async def test_a_half_logged_touch_of_a_customer_transferred_meanwhile_ends_its_dialogue(console):
    from storage import members as member_store

    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.li", "金陵置业")
    await console.send("rep.li", "华东建材 电话10分钟 聊了交期")  # asks for the next action
    async with console.runtime.sessions() as session, session.begin():
        row = await session.get(Customer, customer.id)
        row.owner_id = (await member_store.member_by_code(session, "rep.zhao")).id

    reply = await console.send("rep.li", "明天发报价单")
    assert texts_of(reply) == ["这个选择已经失效(可能已超时),请重新发送跟进内容。"]
    # The rep is not stuck in the dead dialogue: the next message is logged as usual.
    reply = await console.send("rep.li", "金陵置业 电话5分钟 确认地址,明天寄样品")
    assert cards_of(reply)[0]["title"] == "已记录跟进 · 金陵置业"
    assert [t.summary for t in await touches(console)] == ["电话5分钟 确认地址"]


async def test_an_evidence_window_longer_than_a_day_is_named_in_whole_minutes(aiohttp_client, tmp_path, clock):
    from bot.app import create_app
    from tests.conftest import Console, make_config

    config = make_config(tmp_path, touch={"evidence_window_minutes": 1500, "evidence_deadline_hours": 48})
    console = Console(await aiohttp_client(create_app(config, clock=clock)))
    reply = await console.upload("rep.li", jpeg_bytes(), "site.jpg")
    assert texts_of(reply) == [
        "收到照片,但最近没有跟进记录可以关联。请先发送跟进内容(客户+今日动作+下次动作),再在1500分钟内补发凭证。"
    ]


async def test_cancelling_the_which_customer_card_says_the_file_was_not_kept(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 上门拜访40分钟 看了工地,下周一送样品")
    clock.offset += dt.timedelta(minutes=11)
    card = cards_of(await console.upload("rep.li", jpeg_bytes(), "site.jpg"))[0]
    reply = await console.click("rep.li", card, "取消")
    # The touch itself stays logged: only the attachment is dropped.
    assert texts_of(reply)[-1] == "已取消,这份凭证未保存。"
    assert len(await touches(console)) == 1
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Evidence))) == []


async def test_a_numbered_reply_answers_the_latest_card_like_its_text_version_says(console):
    await add_customer(console.runtime, "rep.li", "华东建材", contacts=("张总",))
    await add_customer(console.runtime, "rep.li", "金陵置业", contacts=("张总",))
    reply = await console.send("rep.li", "张总 电话15分钟 聊了交期,明天回电")
    [card] = cards_of(reply)
    assert "请回复序号选择" in reply["replies"][0]["fallback"]
    second = card["buttons"][1]["label"]

    reply = await console.send("rep.li", "2")
    assert [c["title"] for c in cards_of(reply)] == [f"已记录跟进 · {second}"]
    # A lone "1" does not undo through the single-button confirmation card.
    reply = await console.send("rep.li", "1")
    assert not any(i["kind"] == "card_update" for i in reply["replies"])
    [touch] = await touches(console)
    assert touch.undone_at is None


async def test_a_photo_is_decoded_once_before_the_handlers_transaction(console, monkeypatch):
    from storage.media import MediaStore

    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    decoded = []
    real = MediaStore._store_photo

    def counting(self, *args, **kwargs):
        decoded.append(args[1])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MediaStore, "_store_photo", counting)
    reply = await console.upload("rep.li", jpeg_bytes((1200, 900)), "site.jpg")
    assert any("有效触达" in t for t in texts_of(reply))
    assert len(decoded) == 1

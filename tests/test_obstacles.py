"""The mandatory obstacle question (SPEC §4.2): evidence-demanding answers, reminders, and
需跨部门支持 handed to a supporter and timed to their first substantive reply."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.events import Event, EventKind
from domain.enums import ObstacleStatus, Role
from handlers.obstacles import is_substantive
from storage import members as member_store
from storage import obstacles as obstacle_store
from storage.models import CardRecord, Evidence, Member, Obstacle, SupportRequest, Touch
from tests.conftest import cards_of, texts_of, unique_id
from tests.seed import add_customer
from tests.test_stages import jpeg_bytes, upload


async def answer(console, member: str, text: str, option: str) -> dict[str, Any]:
    """Request a move and answer its obstacle card; the answer's response."""
    [card] = cards_of(await console.send(member, text))
    return await console.click(member, card, option)


async def obstacles(console) -> list[Obstacle]:
    async with console.runtime.sessions() as session:
        return list(await session.scalars(select(Obstacle).order_by(Obstacle.id)))


async def run_job(console, job: str) -> None:
    accepted = await console.runtime.inbox.accept(
        Event(platform="schedule", platform_msg_id=unique_id(), kind=EventKind.SCHEDULE, job=job)
    )
    await console.runtime.inbox.wait_processed(accepted.inbox_id)


def texts_to(reply: dict[str, Any], member: str) -> list[str]:
    return feed_texts([i for i in reply["replies"] if i["to"] == {"member": member}])


def feed_texts(items: list[dict[str, Any]]) -> list[str]:
    return [i.get("fallback") or i["payload"].get("text", "") for i in items]


# --- evidence-demanding obstacles ---------------------------------------------------------------


async def test_technical_doubt_asks_for_minutes_and_the_next_photo_is_linked(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await answer(console, "rep.li", "华东建材 进入方案报价", "② 技术适配存疑")

    assert ("「技术适配存疑」需要凭证:请现在发送「华东建材」的技术对接会议纪要(拍照或文件)。\n"
            "稍后补发也可以:图片说明里写上客户名或“技术对接会议纪要”即可;补齐前每24小时提醒一次。") in texts_of(reply)
    moved = cards_of(reply)[0]
    assert {"label": "待补凭证", "value": "技术对接会议纪要"} in moved["fields"]
    [obstacle] = await obstacles(console)
    assert obstacle.status is ObstacleStatus.AWAITING_EVIDENCE
    assert obstacle.required_evidence == "技术对接会议纪要" and obstacle.evidence_id is None

    reply = await console.upload("rep.li", jpeg_bytes(), "minutes.jpg")
    assert texts_of(reply) == ["已将照片作为「华东建材」的技术对接会议纪要保存,障碍「技术适配存疑」的凭证已补齐。"]
    [obstacle] = await obstacles(console)
    assert obstacle.status is ObstacleStatus.OPEN and obstacle.evidence_id is not None
    async with console.runtime.sessions() as session:
        evidence = await session.get(Evidence, obstacle.evidence_id)
    assert evidence.customer_id == customer.id and evidence.touch_id is None
    assert evidence.attributes["evidence"] == "技术对接会议纪要" and evidence.attributes["obstacle_id"] == obstacle.id


async def test_contract_dispute_evidence_can_follow_later_with_a_caption(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await answer(console, "rep.li", "华东建材 进入商务谈判", "④ 合同条款分歧")
    assert any("请现在发送「华东建材」的合同争议条款截图" in t for t in texts_of(reply))

    assert texts_of(await console.send("rep.li", "稍后")) == [
        "好的,稍后补发「华东建材」的合同争议条款截图即可(图片说明里写上客户名或“合同争议条款截图”)。"
    ]
    clock.offset += dt.timedelta(hours=3)
    reply = await upload(console, "rep.li", "争议条款", "clause.png")
    assert texts_of(reply) == ["已将照片作为「华东建材」的合同争议条款截图保存,障碍「合同条款分歧」的凭证已补齐。"]
    [obstacle] = await obstacles(console)
    assert obstacle.status is ObstacleStatus.OPEN and obstacle.evidence_id is not None


async def test_a_caption_naming_the_customer_links_later_evidence(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await answer(console, "rep.li", "华东建材 进入方案报价", "② 技术适配存疑")
    clock.offset += dt.timedelta(hours=1)  # the immediate follow-up has expired
    reply = await upload(console, "rep.li", "华东建材")
    assert texts_of(reply) == ["已将照片作为「华东建材」的技术对接会议纪要保存,障碍「技术适配存疑」的凭证已补齐。"]


async def test_text_while_evidence_is_awaited_is_handled_as_usual(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await answer(console, "rep.li", "华东建材 进入方案报价", "② 技术适配存疑")
    reply = await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,下周三上门拜访")
    assert cards_of(reply)[0]["title"] == "已记录跟进 · 华东建材"
    # The photo now belongs to the touch just logged; the obstacle keeps waiting.
    reply = await console.upload("rep.li", jpeg_bytes(), "call.jpg")
    assert any("关联到「华东建材」" in t for t in texts_of(reply))
    [obstacle] = await obstacles(console)
    assert obstacle.status is ObstacleStatus.AWAITING_EVIDENCE
    async with console.runtime.sessions() as session:
        [touch] = list(await session.scalars(select(Touch)))
    assert touch.effective


async def test_several_customers_waiting_and_a_vague_caption_asks_which(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.li", "金陵置业")
    await answer(console, "rep.li", "华东建材 进入方案报价", "② 技术适配存疑")
    await answer(console, "rep.li", "金陵置业 进入方案报价", "② 技术适配存疑")
    clock.offset += dt.timedelta(hours=1)
    reply = await upload(console, "rep.li", "会议纪要")
    assert texts_of(reply) == [
        "您有多个障碍在等凭证:华东建材(技术对接会议纪要)、金陵置业(技术对接会议纪要)。请在图片说明里写上客户名后重新发送。"
    ]
    assert all(o.status is ObstacleStatus.AWAITING_EVIDENCE for o in await obstacles(console))
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Evidence))) == []
    await upload(console, "rep.li", "金陵置业 会议纪要")
    assert [o.status for o in await obstacles(console)] == [ObstacleStatus.AWAITING_EVIDENCE, ObstacleStatus.OPEN]


async def test_reminders_come_once_per_window_until_the_evidence_arrives(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.li", "金陵置业")
    await answer(console, "rep.li", "华东建材 进入方案报价", "② 技术适配存疑")
    await answer(console, "rep.li", "金陵置业 进入商务谈判", "④ 合同条款分歧")
    await console.send("rep.li", "稍后")

    def reminders(items: list[dict[str, Any]]) -> list[str]:
        return [t for t in feed_texts(items) if t.startswith("⏰")]

    await run_job(console, "obstacle_reminders")  # just answered: too early
    assert reminders(await console.feed(member="rep.li")) == []

    clock.offset += dt.timedelta(hours=25)
    await run_job(console, "obstacle_reminders")
    [first] = reminders(await console.feed(member="rep.li"))
    assert "- 华东建材:技术适配存疑 → 待补技术对接会议纪要(已1天1小时)" in first
    assert "- 金陵置业:合同条款分歧 → 待补合同争议条款截图(已1天1小时)" in first
    assert all(o.last_reminded_at == clock.now() for o in await obstacles(console))

    clock.offset += dt.timedelta(hours=12)  # within the window: nothing more
    await run_job(console, "obstacle_reminders")
    assert len(reminders(await console.feed(member="rep.li"))) == 1

    await upload(console, "rep.li", "金陵置业 争议条款截图")
    clock.offset += dt.timedelta(hours=13)  # past the window: again, for what is still missing
    await run_job(console, "obstacle_reminders")
    latest = reminders(await console.feed(member="rep.li"))
    assert len(latest) == 2
    assert "华东建材" in latest[1] and "金陵置业" not in latest[1]


# --- 需跨部门支持 ------------------------------------------------------------------------------


async def test_cross_department_support_is_timed_to_the_first_substantive_reply(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await answer(console, "rep.li", "华东建材 进入方案报价 客户要对接他们的ERP", "② 技术适配存疑")
    moved = cards_of(reply)[0]
    clock.offset += dt.timedelta(minutes=5)
    reply = await console.click("rep.li", moved, "需跨部门支持")
    assert "已请支持同事刘工协助「华东建材」(技术适配存疑)。TA的答复会转给您。" in texts_of(reply)
    [closed] = [i for i in reply["replies"] if i["kind"] == "card_update"]
    assert closed["payload"]["card"]["closed_note"] == "已请刘工支持"
    asked_at = clock.now()

    [notice] = [i for i in await console.feed(member="sup.liu") if i["kind"] == "card"]
    card = notice["payload"]["card"]
    assert card["title"] == "需跨部门支持 · 华东建材"
    assert {f["label"]: f["value"] for f in card["fields"]} == {
        "客户": "华东建材", "销售": "李明", "阶段": "方案报价", "最大障碍": "技术适配存疑", "销售说明": "客户要对接他们的ERP",
    }
    async with console.runtime.sessions() as session:
        [request] = list(await session.scalars(select(SupportRequest)))
        supporter = await member_store.member_by_code(session, "sup.liu")
    assert request.supporter_id == supporter.id and request.customer_id == customer.id
    assert request.requested_at == asked_at and request.first_reply_at is None

    clock.offset += dt.timedelta(hours=2)
    reply = await console.send("sup.liu", "收到")
    assert texts_of(reply) == ["已收到。给出具体意见时直接回复即可,我会转给销售同事(“收到/好的”这类回复不计为答复)。"]
    async with console.runtime.sessions() as session:
        assert (await session.get(SupportRequest, request.id)).first_reply_at is None

    clock.offset += dt.timedelta(hours=10)
    reply = await console.send("sup.liu", "ERP接口我们有标准中间件,明天我带文档一起去开技术对接会")
    assert texts_to(reply, "sup.liu") == ["已转给李明(从发起到答复用时12小时)。"]
    async with console.runtime.sessions() as session:
        stored = await session.get(SupportRequest, request.id)
        hours = await obstacle_store.resolution_hours(session, asked_at, clock.now() + dt.timedelta(seconds=1))
    assert stored.first_reply_at == clock.now()
    assert stored.reply_text.startswith("ERP接口我们有标准中间件")
    assert hours == [12.0]
    relays = [t for t in feed_texts(await console.feed(member="rep.li")) if t.startswith("💬")]
    assert relays == ["💬 支持同事刘工答复了「华东建材」的障碍「技术适配存疑」:\n"
                      "ERP接口我们有标准中间件,明天我带文档一起去开技术对接会"]

    # Answered: the supporter's later messages are no longer claimed as answers.
    reply = await console.send("sup.liu", "另外价格也可以再谈")
    assert not any(t.startswith("已转给") for t in texts_of(reply))


async def test_support_cannot_be_requested_twice_for_one_obstacle(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    moved = cards_of(await answer(console, "rep.li", "华东建材 进入方案报价", "① 决策链不清晰"))[0]
    await console.click("rep.li", moved, "需跨部门支持")
    assert texts_of(await console.click("rep.li", moved, "需跨部门支持")) == ["这张卡片已经处理过了,无需重复操作。"]
    async with console.runtime.sessions() as session, session.begin():
        await session.execute(update(CardRecord).where(CardRecord.task_id == moved["task_id"]).values(answered_at=None))
    assert texts_of(await console.click("rep.li", moved, "需跨部门支持")) == ["这个障碍已经请刘工支持过了,无需重复发起。"]
    async with console.runtime.sessions() as session:
        assert len(list(await session.scalars(select(SupportRequest)))) == 1


async def test_the_least_busy_supporter_is_chosen_and_replies_name_the_customer(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.li", "金陵置业")
    await add_customer(console.runtime, "rep.li", "滨江幕墙")
    async with console.runtime.sessions() as session, session.begin():
        session.add(Member(code="sup.ma", name="马律师", role=Role.SUPPORTER, created_at=clock.now()))
    for name in ("华东建材", "金陵置业", "滨江幕墙"):
        moved = cards_of(await answer(console, "rep.li", f"{name} 进入初步沟通", "① 决策链不清晰"))[0]
        await console.click("rep.li", moved, "需跨部门支持")
    async with console.runtime.sessions() as session:
        supporters = {m.id: m.code for m in await member_store.all_members(session)}
        rows = list(await session.scalars(select(SupportRequest).order_by(SupportRequest.id)))
    assert [supporters[r.supporter_id] for r in rows] == ["sup.liu", "sup.ma", "sup.liu"]
    assert any("马律师" in t for t in feed_texts(await console.feed(member="rep.li")))

    reply = await console.send("sup.liu", "这个需要先确认对方的审批流程")
    assert texts_of(reply) == ["您有多个待答复的支持请求:华东建材、滨江幕墙。请在回复开头写上客户名。"]
    reply = await console.send("sup.liu", "滨江幕墙 先确认对方的审批流程,我来准备材料")
    assert texts_to(reply, "sup.liu")[0].startswith("已转给李明")
    async with console.runtime.sessions() as session:
        rows = list(await session.scalars(select(SupportRequest).order_by(SupportRequest.id)))
    assert [r.first_reply_at is not None for r in rows] == [False, False, True]

    clock.offset += dt.timedelta(hours=49)
    async with console.runtime.sessions() as session:
        slow = await obstacle_store.open_support_requests_older_than(session, clock.now() - dt.timedelta(hours=48))
    assert [r.id for r in slow] == [rows[0].id, rows[1].id]


async def test_without_supporters_the_request_is_refused_and_nothing_changes(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    async with console.runtime.sessions() as session, session.begin():
        await session.execute(update(Member).where(Member.role == Role.SUPPORTER).values(active=False))
    moved = cards_of(await answer(console, "rep.li", "华东建材 进入方案报价", "① 决策链不清晰"))[0]
    reply = await console.click("rep.li", moved, "需跨部门支持")
    assert texts_of(reply) == ["系统中还没有支持同事,暂时无法发起跨部门支持。请联系管理员在成员中设置支持角色。"]
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(SupportRequest))) == []


@pytest.mark.parametrize(
    ("text", "substantive"),
    [
        ("收到", False), ("好的", False), ("ok", False), ("OK!", False), ("嗯", False), ("嗯嗯", False),
        ("好的,收到", False), ("收到了👌", False), ("了解,我看看", False),
        ("好的,明天派工程师过去", True), ("接口没问题,用标准中间件", True), ("可以支持,下周三到现场", True),
    ],
)
def test_acknowledgements_are_not_substantive(text, substantive):
    assert is_substantive(text) is substantive


async def test_the_stage_view_lists_obstacles_with_their_evidence_and_support_state(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await answer(console, "rep.li", "华东建材 进入初步沟通", "① 决策链不清晰")
    moved = cards_of(await answer(console, "rep.li", "华东建材 进入需求确认", "② 技术适配存疑"))[0]
    await console.click("rep.li", moved, "需跨部门支持")

    text = (await console.send("rep.li", "/阶段 华东建材"))["replies"][0]["payload"]["text"]
    assert "需求确认:技术适配存疑(待补技术对接会议纪要) · 跨部门支持:刘工未答复" in text
    assert "初步沟通:决策链不清晰(已解决)" in text

    await console.send("sup.liu", "ERP接口有标准中间件,可以对接")
    text = (await console.send("rep.li", "/阶段 华东建材"))["replies"][0]["payload"]["text"]
    assert "需求确认:技术适配存疑(待补技术对接会议纪要) · 跨部门支持:刘工已答复" in text

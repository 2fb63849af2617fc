"""Stage moves (SPEC §4.1): by text, by /阶段, by a deliverable photo — each waiting for the
obstacle card — plus history, time in stage, and the refusals that change nothing."""

from __future__ import annotations

import datetime as dt
import io
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select, update

from domain.enums import StageChangeStatus
from handlers.stages import find_node, match_stage, parse_move
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage import stages as stage_store
from storage.models import CardRecord, Customer, Evidence, Obstacle, StageChange, StageHistory, Touch
from storage.pipeline_templates import B2B, HOSPITAL
from tests.conftest import cards_of, texts_of
from tests.seed import add_customer

# --- pure rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "customer", "stage", "note", "reason"),
    [
        ("华东建材 进入报价阶段", "华东建材", "报价阶段", "", ""),
        ("华东建材 进入方案报价", "华东建材", "方案报价", "", ""),
        ("华东建材 推进到商务谈判", "华东建材", "商务谈判", "", ""),
        ("华东建材已进入签约", "华东建材", "签约", "", ""),
        ("华东建材 退回需求确认 原因:客户换了对接人", "华东建材", "需求确认", "", "客户换了对接人"),
        ("华东建材 退回需求确认原因:客户换了对接人", "华东建材", "需求确认", "", "客户换了对接人"),
        ("华东建材 进入方案报价,客户认可了方案", "华东建材", "方案报价", "客户认可了方案", ""),
        ("协和医院 进入中标/入院", "协和医院", "中标/入院", "", ""),
    ],
)
def test_stage_move_messages_are_parsed(text, customer, stage, note, reason):
    move = parse_move(text)
    assert move is not None
    assert (move.customer, move.stage, move.note, move.reason) == (customer, stage, note, reason)


@pytest.mark.parametrize(
    "text",
    [
        "华东建材 电话20分钟 聊了报价细节,下周三上门拜访",
        "华东建材 微信发了定制方案,报价阶段客户比较关注价格",
        "华东建材 张总 电话 客户说下周进入招标",
        "华东建材,电话,回到公司再说",
    ],
)
def test_touch_messages_are_not_stage_moves(text):
    assert parse_move(text) is None


def _stages(template: dict[str, Any]) -> list[Any]:
    return [
        SimpleNamespace(id=i + 1, position=i, name=s["name"], deliverables=s.get("deliverables", []))
        for i, s in enumerate(template["stages"])
    ]


@pytest.mark.parametrize(
    ("phrase", "template", "current", "expected"),
    [
        ("报价", B2B, 0, "方案报价"),
        ("报价阶段", B2B, 0, "方案报价"),
        ("方案报价", B2B, 0, "方案报价"),
        ("谈判", B2B, 0, "商务谈判"),
        ("方案报介", B2B, 0, "方案报价"),  # a typo
        ("下一阶段", B2B, 2, "方案报价"),
        ("上一阶段", B2B, 2, "初步沟通"),
        ("入院", HOSPITAL, 0, "中标/入院"),
        ("招标", HOSPITAL, 0, "招标文件获取"),
        ("中标/入院", HOSPITAL, 0, "中标/入院"),
        ("火星", B2B, 0, None),
        ("工地看了现场", B2B, 0, None),
    ],
)
def test_stage_names_match_loosely_within_the_pipeline(phrase, template, current, expected):
    found = match_stage(phrase, _stages(template), current)
    assert (found.stage.name if found.stage else None) == expected


@pytest.mark.parametrize(
    ("caption", "stage", "deliverable"),
    [
        ("招标文件", "招标文件获取", "招标文件"),
        ("中标通知书 拍照", "中标/入院", "中标通知书扫描件"),
        ("意向书扫描件", "获取科室使用意向书", "意向书扫描件"),
        ("招标文件获取", "招标文件获取", None),
        ("入院", "中标/入院", None),
        ("科室主任签字了", None, None),
    ],
)
def test_deliverable_captions_name_a_node(caption, stage, deliverable):
    hit = find_node(caption, _stages(HOSPITAL))
    assert (hit[0].name if hit else None, hit[1] if hit else None) == (stage, deliverable)


# --- helpers ------------------------------------------------------------------------------------


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (40, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


async def upload(console, member: str, caption: str, filename: str = "doc.jpg") -> dict[str, Any]:
    """Send a photo with a caption (the console's multipart form has a ``text`` field)."""
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("member", member)
    form.add_field("kind", "photo")
    form.add_field("text", caption)
    form.add_field("file", jpeg_bytes(), filename=filename, content_type="image/jpeg")
    response = await console.client.post("/console/api/messages", data=form)
    assert response.status == 200, await response.text()
    return await response.json()


async def state(console, customer_id: int) -> SimpleNamespace:
    async with console.runtime.sessions() as session:
        customer = await session.get(Customer, customer_id)
        stage = await stage_store.get_stage(session, customer.stage_id)
        history = list(
            await session.scalars(
                select(StageHistory).where(StageHistory.customer_id == customer_id).order_by(StageHistory.id)
            )
        )
        changes = list(
            await session.scalars(
                select(StageChange).where(StageChange.customer_id == customer_id).order_by(StageChange.id)
            )
        )
        obstacles = list(
            await session.scalars(select(Obstacle).where(Obstacle.customer_id == customer_id).order_by(Obstacle.id))
        )
    return SimpleNamespace(customer=customer, stage=stage.name, history=history, changes=changes,
                           obstacles=obstacles)


async def stage_names(console) -> dict[int, str]:
    async with console.runtime.sessions() as session:
        return await pipeline_store.stage_names(session)


# --- moving by text -----------------------------------------------------------------------------


async def test_a_text_move_waits_for_the_obstacle_card_and_the_answer_commits_it(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    clock.offset += dt.timedelta(days=2, hours=3)
    reply = await console.send("rep.li", "华东建材 进入报价阶段")

    [card] = cards_of(reply)
    assert card["title"] == "当前最大障碍是?"
    assert [b["label"] for b in card["buttons"]] == [
        "① 决策链不清晰", "② 技术适配存疑", "③ 预算审批未启动", "④ 合同条款分歧", "撤回变更",
    ]
    assert "从「新线索」推进到「方案报价」" in card["body"]
    before = await state(console, customer.id)
    assert before.stage == "新线索"  # not moved until the card is answered
    [change] = before.changes
    assert change.status is StageChangeStatus.AWAITING_OBSTACLE and change.task_id == card["task_id"]
    assert before.obstacles == []

    clock.offset += dt.timedelta(minutes=1)
    reply = await console.click("rep.li", card, "③ 预算审批未启动")
    [closed] = [i for i in reply["replies"] if i["kind"] == "card_update"]
    assert closed["payload"]["card"]["closed_note"] == "已选择:预算审批未启动"
    [moved] = cards_of(reply)
    assert moved["title"] == "已推进到「方案报价」 · 华东建材"
    assert [b["label"] for b in moved["buttons"]] == ["需跨部门支持"]

    after = await state(console, customer.id)
    assert after.stage == "方案报价"
    assert after.customer.stage_entered_at == clock.now()
    assert [h.left_at is None for h in after.history] == [False, True]
    assert after.history[0].left_at == clock.now()
    assert after.changes[0].status is StageChangeStatus.COMMITTED and after.changes[0].committed_at == clock.now()
    [obstacle] = after.obstacles
    assert obstacle.option == "预算审批未启动" and obstacle.status.value == "open"
    assert obstacle.stage_id == after.customer.stage_id and obstacle.required_evidence is None

    async with console.runtime.sessions() as session:
        history = await stage_store.stage_history(session, customer.id)
    clock.offset += dt.timedelta(hours=5)
    totals = stage_store.time_in_stage(history, clock.now())
    names = {h.stage_id: h.stage_name for h in history}
    assert {names[k]: v for k, v in totals.items()} == {
        "新线索": dt.timedelta(days=2, hours=3, minutes=1),
        "方案报价": dt.timedelta(hours=5),
    }


async def test_other_move_phrasings_and_the_command_request_moves(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    for text, stage in (("华东建材 进入方案报价", "方案报价"), ("华东建材 推进到商务谈判", "商务谈判"),
                        ("/阶段 华东建材 下一阶段", "签约"), ("/阶段 华东建材 进入回款", "回款")):
        [card] = cards_of(await console.send("rep.li", text))
        assert card["title"] == "当前最大障碍是?", text
        await console.click("rep.li", card, "① 决策链不清晰")
        assert (await state(console, customer.id)).stage == stage, text
    after = await state(console, customer.id)
    assert len(after.history) == 5 and len(after.obstacles) == 4
    assert texts_of(await console.send("rep.li", "/阶段 华东建材 下一阶段")) == [
        "「华东建材」已在最后一个阶段「回款」,没有下一阶段。"
    ]


async def test_the_stage_command_moves_and_shows_pipeline_history_and_time_in_stage(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    clock.offset += dt.timedelta(days=1)
    [card] = cards_of(await console.send("rep.li", "/阶段 华东建材 初步沟通"))
    await console.click("rep.li", card, "① 决策链不清晰")
    clock.offset += dt.timedelta(days=3, hours=2)

    reply = await console.send("rep.li", "/阶段 华东建材")
    [item] = reply["replies"]
    assert item["kind"] == "markdown"
    text = item["payload"]["text"]
    assert "流程:B2B项目销售 · 负责人:李明" in text
    assert "1. 新线索(累计1天)" in text
    assert "2. **初步沟通** ← 当前,已停留3天2小时" in text
    assert "6. 签约 · 交付物:签字页" in text
    assert "- 11-25 10:00 进入「新线索」,停留1天" in text
    assert "- 11-26 10:00 进入「初步沟通」,至今3天2小时" in text
    assert "初步沟通:决策链不清晰" in text
    after = await state(console, customer.id)
    assert after.stage == "初步沟通" and len(after.history) == 2

    usage = texts_of(await console.send("rep.li", "/阶段"))
    assert usage[0].startswith("用法:")


async def test_a_manager_moves_a_team_customer_and_the_owner_is_told(console):
    customer = await add_customer(console.runtime, "rep.zhao", "金陵置业")
    [card] = cards_of(await console.send("mgr.wang", "金陵置业 进入需求确认"))
    reply = await console.click("mgr.wang", card, "① 决策链不清晰")
    assert cards_of(reply)[0]["title"] == "已推进到「需求确认」 · 金陵置业"
    feed = await console.feed(member="rep.zhao")
    assert any("王静将您的客户「金陵置业」推进到「需求确认」" in i["payload"].get("text", "") for i in feed)
    assert (await state(console, customer.id)).stage == "需求确认"


async def test_moving_backwards_needs_a_reason(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 进入方案报价"))
    await console.click("rep.li", card, "① 决策链不清晰")

    reply = await console.send("rep.li", "华东建材 退回需求确认")
    assert texts_of(reply) == [
        "「需求确认」在当前阶段「方案报价」之前,退回需要说明原因,例如:\n华东建材 退回需求确认 原因:客户换了对接人"
    ]
    assert len((await state(console, customer.id)).changes) == 1  # nothing new stored

    reply = await console.send("rep.li", "华东建材 退回需求确认 原因:客户换了对接人")
    [card] = cards_of(reply)
    assert "从「方案报价」退回到「需求确认」" in card["body"]
    assert {"label": "原因", "value": "客户换了对接人"} in card["fields"]
    reply = await console.click("rep.li", card, "① 决策链不清晰")
    assert cards_of(reply)[0]["title"] == "已退回到「需求确认」 · 华东建材"
    after = await state(console, customer.id)
    assert after.stage == "需求确认" and len(after.history) == 3
    assert after.changes[-1].reason == "客户换了对接人"


# --- refusals that change nothing ---------------------------------------------------------------


async def test_an_unknown_stage_is_refused_with_the_valid_stages(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    expected = ("「华东建材」所在的流程「B2B项目销售」中没有「火星阶段」这个阶段。\n"
                "可选阶段:新线索 → 初步沟通 → 需求确认 → 方案报价 → 商务谈判 → 签约 → 回款")
    assert texts_of(await console.send("rep.li", "华东建材 进入火星阶段")) == [expected]
    assert texts_of(await console.send("rep.li", "/阶段 华东建材 火星阶段")) == [expected]
    after = await state(console, customer.id)
    assert after.changes == [] and after.stage == "新线索"


async def test_moving_to_the_current_stage_is_refused(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    assert texts_of(await console.send("rep.li", "/阶段 华东建材 新线索")) == ["「华东建材」已经在「新线索」阶段了。"]
    assert (await state(console, customer.id)).changes == []


async def test_answering_the_obstacle_card_twice_changes_nothing(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 进入方案报价"))
    await console.click("rep.li", card, "① 决策链不清晰")

    again = await console.click("rep.li", card, "③ 预算审批未启动")
    assert texts_of(again) == ["这张卡片已经处理过了,无需重复操作。"]
    # Even if the card were open again (a replayed platform callback), the handler is idempotent.
    async with console.runtime.sessions() as session, session.begin():
        await session.execute(update(CardRecord).where(CardRecord.task_id == card["task_id"]).values(answered_at=None))
    again = await console.click("rep.li", card, "③ 预算审批未启动")
    assert texts_of(again) == ["这个阶段变更已经处理过或已撤回,无需重复操作。"]
    after = await state(console, customer.id)
    assert len(after.history) == 2 and len(after.obstacles) == 1
    assert after.obstacles[0].option == "决策链不清晰"


async def test_a_second_request_while_one_waits_is_refused_naming_it(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 进入方案报价"))
    reply = await console.send("rep.li", "华东建材 进入商务谈判")
    [text] = texts_of(reply)
    assert text.startswith("「华东建材」已有一个待确认的阶段变更:新线索 → 方案报价(11-25 10:00提出)")
    assert "/阶段 华东建材 撤回" in text
    assert len((await state(console, customer.id)).changes) == 1

    reply = await console.send("rep.li", "/阶段 华东建材 撤回")
    assert texts_of(reply) == ["已撤回「华东建材」的阶段变更(新线索 → 方案报价),客户仍在「新线索」。"]
    assert texts_of(await console.click("rep.li", card, "① 决策链不清晰")) == [
        "这个阶段变更已经处理过或已撤回,无需重复操作。"
    ]
    [card] = cards_of(await console.send("rep.li", "华东建材 进入商务谈判"))
    await console.click("rep.li", card, "① 决策链不清晰")
    after = await state(console, customer.id)
    assert after.stage == "商务谈判"
    assert [c.status for c in after.changes] == [StageChangeStatus.CANCELLED, StageChangeStatus.COMMITTED]


async def test_the_withdraw_button_cancels_the_change(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 进入方案报价"))
    reply = await console.click("rep.li", card, "撤回变更")
    assert "已撤回「华东建材」的阶段变更(新线索 → 方案报价),客户仍在「新线索」。" in texts_of(reply)
    after = await state(console, customer.id)
    assert after.stage == "新线索" and after.changes[0].status is StageChangeStatus.CANCELLED


async def test_someone_elses_customer_cannot_be_moved(console):
    customer = await add_customer(console.runtime, "rep.zhao", "金陵置业")
    refusal = "「金陵置业」不是您负责的客户。销售只能调整自己客户的阶段,主管可调整本团队客户的阶段。"
    assert texts_of(await console.send("rep.li", "金陵置业 进入方案报价")) == [refusal]
    assert texts_of(await console.send("rep.li", "/阶段 金陵置业 方案报价")) == [refusal]
    assert texts_of(await console.send("mgr.chen", "/阶段 金陵置业 方案报价")) == [refusal]  # another team
    assert texts_of(await console.send("rep.li", "/阶段 金陵置业")) == [refusal]
    assert (await state(console, customer.id)).changes == []


async def test_an_unknown_customer_is_refused(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    assert texts_of(await console.send("rep.li", "星辰科技 进入方案报价")) == [
        "没有找到客户「星辰科技」。请检查客户名称(可用 /客户 查询)。"
    ]
    assert texts_of(await console.send("rep.li", "/阶段 星辰科技")) == [
        "没有找到客户「星辰科技」。请检查客户名称(可用 /客户 查询)。"
    ]
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(StageChange))) == []
        assert [c.name for c in await session.scalars(select(Customer))] == ["华东建材"]


async def test_ordinary_touch_messages_are_left_to_touch_logging(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材", contacts=("张总",))
    for text in ("华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访",
                 "华东建材 微信发了定制方案,报价阶段客户比较关注价格,周五前电话确认",
                 "今天拜访华东建材,进入工地看了现场,明天发报价单",
                 "华东建材 进入工地看了现场,明天发报价单"):
        reply = await console.send("rep.li", text)
        assert cards_of(reply)[0]["title"] == "已记录跟进 · 华东建材", text
    async with console.runtime.sessions() as session:
        assert len(list(await session.scalars(select(Touch)))) == 4
    assert (await state(console, customer.id)).changes == []


# --- deliverables -------------------------------------------------------------------------------


async def _hospital_customer(console, name: str, stage_name: str) -> Customer:
    customer = await add_customer(console.runtime, "rep.li", name)
    async with console.runtime.sessions() as session, session.begin():
        pipeline = await pipeline_store.ensure_pipeline(session, HOSPITAL)
        stage = next(s for s in await pipeline_store.stages_of(session, pipeline.id) if s.name == stage_name)
        row = await session.get(Customer, customer.id)
        row.pipeline_id, row.stage_id = pipeline.id, stage.id
        history = await session.scalar(select(StageHistory).where(StageHistory.customer_id == customer.id))
        history.stage_id = stage.id
    return customer


async def test_a_deliverable_photo_naming_the_next_node_is_stored_and_requests_the_move(console):
    customer = await _hospital_customer(console, "协和医院", "进入医院采购目录初审")
    reply = await upload(console, "rep.li", "协和医院 招标文件")

    assert "已将照片存为「协和医院」「招标文件获取」节点的交付物:招标文件。" in texts_of(reply)
    [card] = cards_of(reply)
    assert card["title"] == "当前最大障碍是?"
    assert "从「进入医院采购目录初审」推进到「招标文件获取」" in card["body"]
    async with console.runtime.sessions() as session:
        [evidence] = list(await session.scalars(select(Evidence)))
        target = await session.scalar(select(StageChange))
    names = await stage_names(console)
    assert evidence.customer_id == customer.id and evidence.touch_id is None
    assert evidence.attributes["deliverable"] == "招标文件"
    assert names[evidence.attributes["stage_id"]] == "招标文件获取"
    assert names[target.to_stage_id] == "招标文件获取"
    assert (await state(console, customer.id)).stage == "进入医院采购目录初审"  # not yet

    await console.click("rep.li", card, "③ 预算审批未启动")
    assert (await state(console, customer.id)).stage == "招标文件获取"
    view = (await console.send("rep.li", "/阶段 协和医院"))["replies"][0]["payload"]["text"]
    assert "**招标文件获取** ← 当前" in view and "交付物:招标文件✅" in view


async def test_a_deliverable_of_the_current_node_is_only_recorded(console):
    customer = await _hospital_customer(console, "协和医院", "中标/入院")
    reply = await upload(console, "rep.li", "协和医院 中标通知书")
    assert texts_of(reply) == ["已将照片存为「协和医院」「中标/入院」节点的交付物:中标通知书扫描件。"]
    after = await state(console, customer.id)
    assert after.changes == [] and after.stage == "中标/入院"


async def test_a_photo_without_a_node_in_its_caption_is_ordinary_evidence(console):
    await _hospital_customer(console, "协和医院", "中标/入院")
    await console.send("rep.li", "协和医院 上门拜访30分钟 见了设备科,明天发资料")
    reply = await upload(console, "rep.li", "协和医院 现场")
    assert any("关联到「协和医院」" in t for t in texts_of(reply))
    async with console.runtime.sessions() as session:
        [evidence] = list(await session.scalars(select(Evidence)))
    assert evidence.touch_id is not None and "deliverable" not in evidence.attributes


async def test_the_storage_view_of_history_counts_repeated_stays(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 进入初步沟通"))
    await console.click("rep.li", card, "① 决策链不清晰")
    clock.offset += dt.timedelta(hours=2)
    [card] = cards_of(await console.send("rep.li", "华东建材 退回新线索 原因:联系人离职"))
    await console.click("rep.li", card, "① 决策链不清晰")
    clock.offset += dt.timedelta(hours=3)
    [card] = cards_of(await console.send("rep.li", "华东建材 进入初步沟通"))
    await console.click("rep.li", card, "① 决策链不清晰")
    clock.offset += dt.timedelta(hours=1)
    async with console.runtime.sessions() as session:
        history = await stage_store.stage_history(session, customer.id)
        member = await member_store.member_by_code(session, "rep.li")
    assert [h.stage_name for h in history] == ["新线索", "初步沟通", "新线索", "初步沟通"]
    assert all(h.member_id == member.id for h in history)
    names = {h.stage_id: h.stage_name for h in history}
    totals = {names[k]: v for k, v in stage_store.time_in_stage(history, clock.now()).items()}
    assert totals == {"新线索": dt.timedelta(hours=3), "初步沟通": dt.timedelta(hours=3)}


async def test_a_customer_imported_without_history_gets_its_past_stay_recorded(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    async with console.runtime.sessions() as session, session.begin():
        for row in await session.scalars(select(StageHistory).where(StageHistory.customer_id == customer.id)):
            await session.delete(row)
    clock.offset += dt.timedelta(days=4)
    [card] = cards_of(await console.send("rep.li", "华东建材 进入初步沟通"))
    await console.click("rep.li", card, "① 决策链不清晰")
    after = await state(console, customer.id)
    assert [(h.entered_at, h.left_at) for h in after.history] == [
        (customer.stage_entered_at, clock.now()), (clock.now(), None)
    ]


async def test_an_answer_after_the_customer_moved_elsewhere_voids_the_change(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 进入方案报价"))
    async with console.runtime.sessions() as session, session.begin():
        stages = await pipeline_store.stages_of(session, customer.pipeline_id)
        row = await session.get(Customer, customer.id)
        row.stage_id = next(s.id for s in stages if s.name == "需求确认")  # e.g. a re-import set it
    reply = await console.click("rep.li", card, "① 决策链不清晰")
    assert "「华东建材」的阶段已经变为「需求确认」,这个变更已作废。如仍需调整,请重新发起。" in texts_of(reply)
    after = await state(console, customer.id)
    assert after.stage == "需求确认" and after.obstacles == []
    assert after.changes[0].status is StageChangeStatus.CANCELLED


async def test_an_answer_after_the_customer_was_transferred_away_voids_the_change(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("rep.li", "华东建材 进入方案报价"))
    async with console.runtime.sessions() as session, session.begin():
        other_team_rep = await member_store.member_by_code(session, "rep.sun")
        row = await session.get(Customer, customer.id)
        row.owner_id = other_team_rep.id  # e.g. the manager's [转交], or an admin's transfer
    reply = await console.click("rep.li", card, "① 决策链不清晰")
    assert "「华东建材」已不在您的负责范围内(可能已转交他人),这个阶段变更已作废。" in texts_of(reply)
    after = await state(console, customer.id)
    assert after.stage == "新线索" and after.obstacles == []
    assert after.changes[0].status is StageChangeStatus.CANCELLED
    # The new owner is not blocked by the voided request.
    assert cards_of(await console.send("rep.sun", "华东建材 进入方案报价"))[0]["title"] == "当前最大障碍是?"


async def test_a_manager_may_still_answer_for_a_customer_moved_within_the_team(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    [card] = cards_of(await console.send("mgr.wang", "华东建材 进入需求确认"))
    async with console.runtime.sessions() as session, session.begin():
        teammate = await member_store.member_by_code(session, "rep.zhao")
        row = await session.get(Customer, customer.id)
        row.owner_id = teammate.id
    reply = await console.click("mgr.wang", card, "① 决策链不清晰")
    assert cards_of(reply)[0]["title"] == "已推进到「需求确认」 · 华东建材"
    assert (await state(console, customer.id)).stage == "需求确认"

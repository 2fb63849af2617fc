"""进度停滞 → 复盘 through the console: stalls, the manager's checklist card and its three answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import create_app
from domain.enums import (
    AlertStatus,
    CustomerStatus,
    EscalationStatus,
    EvidenceKind,
    ObstacleStatus,
    StageChangeStatus,
)
from handlers.escalation import parse_snooze
from storage import libraries
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage.models import (
    Alert,
    Customer,
    Escalation,
    Evidence,
    Obstacle,
    ObstacleResponse,
    StageChange,
    StageHistory,
    Touch,
)
from tests.conftest import Console, cards_of, make_config, texts_of
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database
from tests.seed import add_customer

STALL_BUSY = "华东建材 电话5分钟 客户在忙,再约时间,明天再打"
STALL_NO_ANSWER = "华东建材 打电话没接电话,后天再打"
PROGRESS = "华东建材 电话15分钟 聊了样品测试安排,周五送样品"


async def say(console, clock, text: str, member: str = "rep.li", hours: int = 3) -> dict[str, Any]:
    clock.offset += dt.timedelta(hours=hours)
    return await console.send(member, text)


def replies_to(reply: dict[str, Any], member: str) -> list[dict[str, Any]]:
    return [item for item in reply["replies"] if item["to"] == {"member": member}]


def card_to(reply: dict[str, Any], member: str) -> dict[str, Any]:
    [card] = [item["payload"]["card"] for item in replies_to(reply, member) if item["kind"] == "card"]
    return card


async def load(console, model, **where) -> list[Any]:
    async with console.runtime.sessions() as session:
        query = select(model).filter_by(**where)
        return list(await session.scalars(query.order_by(model.id)))


async def customer_row(console, customer_id: int) -> Customer:
    [customer] = await load(console, Customer, id=customer_id)
    return customer


async def escalate(console, clock) -> tuple[Customer, dict[str, Any]]:
    """Two stalls in a row: returns the customer and the reply to the second one."""
    customer = await add_customer(console.runtime, "rep.li", "华东建材", contacts=("张总",))
    await say(console, clock, STALL_BUSY)
    reply = await say(console, clock, STALL_NO_ANSWER)
    return customer, reply


async def advance_stage(console, clock, customer_id: int) -> None:
    """Move the customer one stage on, the way a committed stage change leaves it."""
    clock.offset += dt.timedelta(minutes=30)
    async with console.runtime.sessions() as session, session.begin():
        row = await session.get(Customer, customer_id)
        stages = await pipeline_store.stages_of(session, row.pipeline_id)
        position = next(i for i, s in enumerate(stages) if s.id == row.stage_id)
        current, following = stages[position], stages[position + 1]
        session.add(
            StageChange(
                customer_id=row.id, from_stage_id=current.id, to_stage_id=following.id, member_id=row.owner_id,
                status=StageChangeStatus.COMMITTED, requested_at=clock.now(), committed_at=clock.now(),
            )
        )
        session.add(StageHistory(customer_id=row.id, stage_id=following.id, entered_at=clock.now()))
        row.stage_id, row.stage_entered_at = following.id, clock.now()


# ------------------------------------------------------------------------------ detection


async def test_two_stalls_in_a_row_escalate_to_the_manager_with_the_checklist(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材", contacts=("张总",))
    async with console.runtime.sessions() as session, session.begin():
        rep = await member_store.member_by_code(session, "rep.li")
        memo = Evidence(
            customer_id=customer.id, member_id=rep.id, kind=EvidenceKind.FILE, filename="对接纪要.pdf",
            created_at=clock.now(), attributes={},
        )
        session.add(memo)
        await session.flush()
        session.add(
            Obstacle(
                customer_id=customer.id, stage_id=customer.stage_id, member_id=rep.id, option="技术适配存疑",
                required_evidence="技术对接会议纪要", evidence_id=memo.id, status=ObstacleStatus.OPEN,
                answered_at=clock.now(),
            )
        )
        library = await libraries.obstacle_response(session, "技术适配存疑")
        if library is None:  # the shipped library may or may not be seeded
            library = ObstacleResponse(obstacle="技术适配存疑", updated_at=clock.now())
            session.add(library)
        library.guidance = "先安排一次技术对接会"
        library.review_questions = ["客户的技术负责人参加过对接会吗?", "测试标准由谁确认?"]
        session.add(
            Alert(
                rule="cold", open_key=f"cold:{customer.id}", customer_id=customer.id, member_id=rep.id,
                severity="yellow", status=AlertStatus.NOTIFIED, details={}, raised_at=clock.now(),
            )
        )

    first = await say(console, clock, STALL_BUSY, hours=24)
    assert [c["title"] for c in cards_of(first)] == ["已记录跟进 · 华东建材"]  # one stall: nothing yet
    assert await load(console, Escalation) == []

    second = await say(console, clock, STALL_NO_ANSWER, hours=24)
    [note] = [t["payload"]["text"] for t in replies_to(second, "rep.li") if t["kind"] == "text"]
    assert note.startswith("「华东建材」最近两次跟进都没有实质进展(停滞话术:客户在忙、再约时间、没接电话)")
    assert "已标记为「复盘中」,并提交王静复盘" in note

    card = card_to(second, "mgr.wang")
    assert card["title"] == "进度停滞 · 华东建材 需复盘"
    assert [b["label"] for b in card["buttons"]] == ["已复盘", "转交", "暂缓"]
    fields = {f["label"]: f["value"] for f in card["fields"]}
    assert fields["客户"] == "华东建材" and fields["负责人"] == "李明"
    assert fields["阶段"] == "新线索 · 已停留2天"
    assert fields["停滞话术"] == "客户在忙、再约时间、没接电话"
    touches_shown = fields["最近跟进"].splitlines()
    assert touches_shown[0].startswith("11月27日 电话:") and "没接电话" in touches_shown[0]
    assert touches_shown[1].startswith("11月26日 电话:") and "〔停滞:客户在忙、再约时间〕" in touches_shown[1]
    assert fields["障碍与凭证"] == "技术适配存疑(处理中),凭证:文件 11月25日 对接纪要.pdf"
    assert fields["未关闭预警"] == "久未跟进(标黄,11月25日起)"
    assert fields["复盘问题"] == "1. 客户的技术负责人参加过对接会吗?\n2. 测试标准由谁确认?"
    [markdown] = [i for i in replies_to(second, "mgr.wang") if i["kind"] == "markdown"]
    assert "应答库建议" in markdown["payload"]["text"] and "先安排一次技术对接会" in markdown["payload"]["text"]

    assert (await customer_row(console, customer.id)).status is CustomerStatus.REVIEWING
    [escalation] = await load(console, Escalation)
    async with console.runtime.sessions() as session:
        manager = await member_store.member_by_code(session, "mgr.wang")
    assert escalation.status is EscalationStatus.OPEN and escalation.manager_id == manager.id
    assert escalation.checklist["stall_phrases"] == ["客户在忙", "再约时间", "没接电话"]
    touches = await load(console, Touch)
    assert [t.no_progress for t in touches] == [True, True]
    assert touches[0].stall_phrases == ["客户在忙", "再约时间"]
    assert [i["payload"]["card"]["title"] for i in await console.feed(member="mgr.wang") if i["kind"] == "card"] == [
        "进度停滞 · 华东建材 需复盘"
    ]


@pytest.mark.parametrize("progress", ["touch", "stage", "deliverable"])
async def test_progress_between_two_stalls_prevents_escalation(console, clock, progress):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    await say(console, clock, STALL_BUSY)
    clock.offset += dt.timedelta(hours=1)
    if progress == "touch":
        await say(console, clock, PROGRESS)
    if progress == "stage":
        await advance_stage(console, clock, customer.id)
    async with console.runtime.sessions() as session, session.begin():
        row = await session.get(Customer, customer.id)
        if progress == "deliverable":
            session.add(
                Evidence(
                    customer_id=row.id, member_id=row.owner_id, kind=EvidenceKind.PHOTO, filename="签字页.jpg",
                    attributes={"deliverable": "签字页"}, created_at=clock.now(),
                )
            )
    reply = await say(console, clock, STALL_NO_ANSWER)

    assert [c["title"] for c in cards_of(reply)] == ["已记录跟进 · 华东建材"]
    assert replies_to(reply, "mgr.wang") == []
    assert await load(console, Escalation) == []
    assert (await customer_row(console, customer.id)).status is CustomerStatus.ACTIVE
    last = (await load(console, Touch))[-1]
    assert last.stall_phrases == ["没接电话"]
    assert last.no_progress is (progress == "touch")  # the stage or the milestone moved since the last touch


async def test_a_withdrawn_stall_does_not_count(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    first = await say(console, clock, STALL_BUSY)
    await console.click("rep.li", cards_of(first)[0], "撤销")

    second = await say(console, clock, STALL_NO_ANSWER)
    assert replies_to(second, "mgr.wang") == []
    assert await load(console, Escalation) == []

    third = await say(console, clock, STALL_BUSY)
    assert card_to(third, "mgr.wang")["title"] == "进度停滞 · 华东建材 需复盘"
    [escalation] = await load(console, Escalation)
    touches = await load(console, Touch)
    assert escalation.checklist["touch_ids"] == [touches[2].id, touches[1].id]
    assert (await customer_row(console, customer.id)).status is CustomerStatus.REVIEWING


async def test_progress_before_a_withdrawn_touch_counts_for_the_next_standing_touch(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    await say(console, clock, PROGRESS)
    await advance_stage(console, clock, customer.id)
    ordinary = await say(console, clock, "华东建材 电话10分钟 确认了需求清单,周五发方案")
    await say(console, clock, STALL_BUSY)  # judged against the ordinary touch: no progress
    await console.click("rep.li", cards_of(ordinary)[0], "撤销")

    # With the ordinary touch withdrawn, the stall came right after the stage moved: progress.
    reply = await say(console, clock, STALL_NO_ANSWER)
    assert replies_to(reply, "mgr.wang") == []
    assert await load(console, Escalation) == []
    assert [t.no_progress for t in await load(console, Touch) if t.undone_at is None] == [False, False, True]


async def test_an_open_escalation_is_not_raised_again(console, clock):
    await escalate(console, clock)
    reply = await say(console, clock, STALL_BUSY)
    assert replies_to(reply, "mgr.wang") == []
    assert not any("复盘中" in t for t in texts_of(reply))
    assert len(await load(console, Escalation)) == 1


async def test_a_rep_cannot_act_on_the_managers_card(console, clock):
    customer, reply = await escalate(console, clock)
    card = card_to(reply, "mgr.wang")
    for other in ("rep.li", "mgr.chen"):
        refused = await console.click(other, card, "已复盘")
        assert texts_of(refused) == ["这张卡片不是发给您的,无法操作。"]
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.OPEN
    assert (await customer_row(console, customer.id)).status is CustomerStatus.REVIEWING


async def test_without_a_team_manager_the_admins_review_and_may_act(console, clock):
    async with console.runtime.sessions() as session, session.begin():
        rep = await member_store.member_by_code(session, "rep.li")
        team = await member_store.get_team(session, rep.team_id)
        team.manager_id = None
    customer, reply = await escalate(console, clock)
    assert replies_to(reply, "mgr.wang") == []
    assert "并提交何敏复盘" in replies_to(reply, "rep.li")[-1]["payload"]["text"]
    await console.click("admin.he", card_to(reply, "admin.he"), "已复盘")
    await console.send("admin.he", "下周一起陪访。")
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.REVIEWED
    assert (await customer_row(console, customer.id)).status is CustomerStatus.ACTIVE


# ------------------------------------------------------------------------------ [已复盘]


async def test_reviewed_relays_the_managers_advice_to_the_rep(console, clock):
    customer, reply = await escalate(console, clock)
    card = card_to(reply, "mgr.wang")

    asked = await console.click("mgr.wang", card, "已复盘")
    assert texts_of(asked)[0].startswith("请回复给李明的复盘建议")
    advice = "先约技术负责人做一次现场测试,周五前给出测试方案。"
    done = await console.send("mgr.wang", advice)

    assert texts_of(done)[-2:] == [
        "已将复盘建议转给李明,「华东建材」恢复正常跟进。",
        f"主管王静已复盘「华东建材」,建议:\n{advice}\n\n「华东建材」已恢复正常跟进。",
    ]
    assert replies_to(done, "rep.li")[0]["payload"]["text"].endswith("已恢复正常跟进。")
    [update] = [i for i in done["replies"] if i["kind"] == "card_update"]
    assert update["payload"]["card"]["closed_note"] == "已复盘" and update["to"] == {"member": "mgr.wang"}
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.REVIEWED and escalation.advice == advice
    assert escalation.resolved_at is not None
    assert (await customer_row(console, customer.id)).status is CustomerStatus.ACTIVE
    assert texts_of(await console.click("mgr.wang", card, "转交")) == ["这张卡片已经处理过了,无需重复操作。"]

    # The two stalls were reviewed: one more stall is not a new run, two are.
    assert replies_to(await say(console, clock, STALL_BUSY), "mgr.wang") == []
    assert card_to(await say(console, clock, STALL_NO_ANSWER), "mgr.wang")
    assert [e.status for e in await load(console, Escalation)] == [EscalationStatus.REVIEWED, EscalationStatus.OPEN]


async def test_the_advice_dialogue_can_be_cancelled_and_the_card_used_again(console, clock):
    _customer, reply = await escalate(console, clock)
    card = card_to(reply, "mgr.wang")
    await console.click("mgr.wang", card, "已复盘")
    assert texts_of(await console.send("mgr.wang", "取消")) == ["已取消,复盘卡片仍可继续操作。"]
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.OPEN
    assert texts_of(await console.click("mgr.wang", card, "暂缓"))[0].startswith("请回复暂缓原因和恢复日期")


# ------------------------------------------------------------------------------ [转交]


async def test_transfer_changes_the_owner_and_keeps_stage_and_history(console, clock):
    customer, reply = await escalate(console, clock)
    before = await customer_row(console, customer.id)
    history_before = await load(console, StageHistory, customer_id=customer.id)

    picker_reply = await console.click("mgr.wang", card_to(reply, "mgr.wang"), "转交")
    [picker] = cards_of(picker_reply)
    assert picker["title"] == "把「华东建材」转交给谁?"
    assert [b["label"] for b in picker["buttons"]] == ["赵磊", "取消"]  # the team's other reps

    done = await console.click("mgr.wang", picker, "赵磊")
    assert "已将「华东建材」从李明转交给赵磊。" in texts_of(done)
    assert replies_to(done, "rep.li")[0]["payload"]["text"] == "主管王静已将「华东建材」转交给赵磊跟进,您无需再跟进这个客户。"
    assert replies_to(done, "rep.zhao")[0]["payload"]["text"].startswith("主管王静将「华东建材」(当前阶段:新线索)转交给您跟进。")
    assert {i["payload"]["card"]["closed_note"] for i in done["replies"] if i["kind"] == "card_update"} == {
        "已转交给赵磊"
    }

    after = await customer_row(console, customer.id)
    async with console.runtime.sessions() as session:
        zhao = await member_store.member_by_code(session, "rep.zhao")
    assert after.owner_id == zhao.id
    assert (after.stage_id, after.stage_entered_at, after.status) == (before.stage_id, before.stage_entered_at, CustomerStatus.ACTIVE)
    assert [h.id for h in await load(console, StageHistory, customer_id=customer.id)] == [h.id for h in history_before]
    assert len(await load(console, Touch, customer_id=customer.id)) == 2
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.TRANSFERRED
    # The new owner can log touches for the customer; the old one no longer sees it.
    assert cards_of(await console.send("rep.zhao", "华东建材 电话10分钟 自我介绍并约了面谈,下周一拜访"))
    assert texts_of(await console.send("rep.li", "/客户 华东建材")) == ["在您可查看的客户中没有找到「华东建材」。"]


async def test_transfer_can_be_cancelled(console, clock):
    customer, reply = await escalate(console, clock)
    [picker] = cards_of(await console.click("mgr.wang", card_to(reply, "mgr.wang"), "转交"))
    cancelled = await console.click("mgr.wang", picker, "取消")
    assert cancelled["replies"][0]["payload"]["card"]["closed_note"] == "已取消转交"
    assert (await customer_row(console, customer.id)).owner_id == customer.owner_id
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.OPEN


# ------------------------------------------------------------------------------ [暂缓]


async def test_snooze_with_a_reason_and_resume_date(console, clock):
    customer, reply = await escalate(console, clock)
    asked = await console.click("mgr.wang", card_to(reply, "mgr.wang"), "暂缓")
    assert texts_of(asked) == [
        "请回复暂缓原因和恢复日期,例如:客户出国两周,12月10日恢复。暂缓期间该客户不会产生预警。(回复“取消”可放弃)"
    ]
    done = await console.send("mgr.wang", "客户出国两周,12月10日恢复")

    assert "已暂缓「华东建材」至12月10日(原因:客户出国两周)。暂缓期间不会产生预警,已通知李明。" in texts_of(done)
    assert replies_to(done, "rep.li")[0]["payload"]["text"] == (
        "主管王静已将「华东建材」暂缓至12月10日,原因:客户出国两周。暂缓期间不会产生预警,12月10日起请恢复跟进。"
    )
    row = await customer_row(console, customer.id)
    assert row.snoozed_until == dt.date(2026, 12, 10) and row.snooze_reason == "客户出国两周"
    assert row.status is CustomerStatus.ACTIVE
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.SNOOZED

    # While snoozed, stalls are expected and escalate nobody.
    for _ in range(2):
        assert replies_to(await say(console, clock, STALL_BUSY), "mgr.wang") == []
    assert len(await load(console, Escalation)) == 1


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [
        ("客户出差,11月20日恢复", "恢复日期11月20日不晚于今天,未做任何更改。"),
        ("客户出国两周", "没有识别到恢复日期,未做任何更改。"),
        ("12月10日恢复", "请同时写明暂缓原因,未做任何更改。"),
    ],
)
async def test_snooze_without_a_future_date_or_a_reason_is_refused_and_changes_nothing(console, clock, answer, refusal):
    customer, reply = await escalate(console, clock)
    await console.click("mgr.wang", card_to(reply, "mgr.wang"), "暂缓")

    refused = await console.send("mgr.wang", answer)
    [text] = texts_of(refused)
    assert text.startswith(refusal)
    row = await customer_row(console, customer.id)
    assert row.snoozed_until is None and row.snooze_reason == "" and row.status is CustomerStatus.REVIEWING
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.OPEN

    # The question is still open: a proper answer now works.
    await console.send("mgr.wang", "客户出国两周,12月10日恢复")
    assert (await customer_row(console, customer.id)).snoozed_until == dt.date(2026, 12, 10)


@pytest.mark.parametrize(
    ("text", "reason", "resume_on"),
    [
        ("客户出国两周,12月10日恢复", "客户出国两周", dt.date(2026, 12, 10)),
        ("下周一恢复跟进,客户在外地", "客户在外地", dt.date(2026, 11, 30)),
        ("客户出国,两周后恢复", "客户出国", dt.date(2026, 12, 9)),
        ("等客户预算批下来,暂缓到12月15日", "等客户预算批下来", dt.date(2026, 12, 15)),
        ("客户出国两周", "客户出国两周", None),
        ("客户出差,11月20日恢复", "客户出差", dt.date(2026, 11, 20)),
    ],
)
def test_snooze_answers_are_split_into_reason_and_resume_date(text, reason, resume_on):
    request = parse_snooze(text, dt.date(2026, 11, 25))
    assert (request.reason, request.resume_on) == (reason, resume_on)


# ------------------------------------------------------------------------------ on PostgreSQL


@pytest.fixture
async def pg_console(aiohttp_client, tmp_path, clock) -> Any:
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    async with scratch_database() as url:
        client = await aiohttp_client(create_app(make_config(tmp_path, storage={"url": url}), clock=clock))
        yield Console(client)
        await client.close()


async def test_escalation_and_review_on_postgresql(pg_console, clock):
    console = pg_console
    customer, reply = await escalate(console, clock)
    card = card_to(reply, "mgr.wang")
    assert (await customer_row(console, customer.id)).status is CustomerStatus.REVIEWING
    await console.click("mgr.wang", card, "暂缓")
    assert texts_of(await console.send("mgr.wang", "客户出差,11月20日恢复"))[0].startswith("恢复日期11月20日")
    await console.send("mgr.wang", "客户出国两周,12月10日恢复")
    row = await customer_row(console, customer.id)
    assert row.snoozed_until == dt.date(2026, 12, 10) and row.status is CustomerStatus.ACTIVE
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.SNOOZED


async def test_undoing_a_stall_touch_withdraws_the_waiting_escalation(console, clock):
    customer, reply = await escalate(console, clock)
    manager_card = card_to(reply, "mgr.wang")
    undo_card = next(c for c in (i["payload"]["card"] for i in replies_to(reply, "rep.li") if i["kind"] == "card")
                     if c["buttons"] and c["buttons"][0]["label"] == "撤销")

    undone = await console.click("rep.li", undo_card, "撤销")
    assert any("复盘申请随之撤回" in (i["payload"].get("text") or "") for i in replies_to(undone, "rep.li"))
    [closed] = [i["payload"]["card"] for i in replies_to(undone, "mgr.wang") if i["kind"] == "card_update"]
    assert closed["task_id"] == manager_card["task_id"] and closed["closed_note"].startswith("已撤回")
    [escalation] = await load(console, Escalation)
    assert escalation.status is EscalationStatus.WITHDRAWN
    assert (await customer_row(console, customer.id)).status is CustomerStatus.ACTIVE
    # The manager's card is closed: clicking it changes nothing.
    late = await console.click("mgr.wang", manager_card, manager_card["buttons"][0]["label"])
    assert "已经处理过" in late["replies"][0].get("fallback", late["replies"][0]["payload"].get("text", ""))

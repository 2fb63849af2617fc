"""The medical-device distributor's case (SPEC §1): a hospital walks the seven access nodes.

One rep, one hospital, the 医院准入 pipeline, through the console with the controllable clock:
each node is entered through the mandatory obstacle card; ② waits for its meeting minutes; the
tender node runs over its 3-day limit and its script pack is pushed once; a budget request is
refused until the node has an effective touch with evidence, then approved by the manager.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid

from PIL import Image
from sqlalchemy import select

from bot.events import Event, EventKind
from domain.enums import AlertStatus, ObstacleStatus, ResourceRequestStatus
from storage import pipelines as pipeline_store
from storage.models import Alert, Customer, Obstacle, ResourceRequest, StageHistory
from storage.pipeline_templates import HOSPITAL
from tests.conftest import cards_of, texts_of
from tests.seed import add_customer

NODES = [stage["name"] for stage in HOSPITAL["stages"]]


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), (230, 230, 230)).save(buffer, "JPEG")
    return buffer.getvalue()


async def upload(console, caption: str) -> dict:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("member", "rep.li")
    form.add_field("kind", "photo")
    form.add_field("text", caption)
    form.add_field("file", photo(), filename="scan.jpg", content_type="image/jpeg")
    response = await console.client.post("/console/api/messages", data=form)
    assert response.status == 200
    return await response.json()


async def move(console, target: str, option: str) -> dict:
    """Ask to enter ``target``; the customer stays put until the obstacle card is answered."""
    before = await current_stage(console)
    [card] = cards_of(await console.send("rep.li", f"协和医院 进入{target}"))
    assert card["title"] == "当前最大障碍是?"
    assert await current_stage(console) == before
    answer = next(b["label"] for b in card["buttons"] if option in b["label"])
    return await console.click("rep.li", card, answer)


async def current_stage(console) -> str:
    async with console.runtime.sessions() as session:
        customer = await session.scalar(select(Customer).where(Customer.name == "协和医院"))
        return (await pipeline_store.stage_names(session))[customer.stage_id]


async def sweep(console) -> None:
    accepted = await console.runtime.inbox.accept(
        Event(platform="schedule", platform_msg_id=uuid.uuid4().hex, kind=EventKind.SCHEDULE, job="alert_sweep")
    )
    await console.runtime.inbox.wait_processed(accepted.inbox_id)


async def test_a_hospital_walks_the_seven_nodes(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "协和医院", contacts=("刘主任",))
    async with console.runtime.sessions() as session, session.begin():
        pipeline = await pipeline_store.ensure_pipeline(session, HOSPITAL)
        first = (await pipeline_store.stages_of(session, pipeline.id))[0]
        row = await session.get(Customer, customer.id)
        row.pipeline_id, row.stage_id = pipeline.id, first.id
        history = await session.scalar(select(StageHistory).where(StageHistory.customer_id == customer.id))
        history.stage_id = first.id
    assert await current_stage(console) == NODES[0]

    # Nodes 2 and 3: each entered only through its obstacle card.
    await move(console, NODES[1], "决策链不清晰")
    assert await current_stage(console) == NODES[1]
    clock.offset += dt.timedelta(days=2)
    await move(console, NODES[2], "预算审批未启动")
    assert await current_stage(console) == NODES[2]

    # Node 4, 招标文件获取: obstacle ② waits for the technical meeting minutes.
    clock.offset += dt.timedelta(days=2)
    reply = await move(console, NODES[3], "技术适配存疑")
    assert any("技术对接会议纪要" in text for text in texts_of(reply))
    async with console.runtime.sessions() as session:
        obstacle = await session.scalar(select(Obstacle).where(Obstacle.option == "技术适配存疑"))
    assert obstacle.status is ObstacleStatus.AWAITING_EVIDENCE
    await upload(console, "协和医院 技术对接会议纪要")
    async with console.runtime.sessions() as session:
        obstacle = await session.get(Obstacle, obstacle.id)
    assert obstacle.status is ObstacleStatus.OPEN and obstacle.evidence_id is not None

    # The tender documents are not uploaded within 3 days: the node's script pack is pushed, once.
    entered = clock.now()
    for _ in range(2):
        clock.offset += dt.timedelta(days=1)
        await console.send("rep.li", "协和医院 电话5分钟 问了招标进度,明天再跟进")
    clock.offset += entered + dt.timedelta(days=3, minutes=1) - clock.now()
    await sweep(console)
    pushed = [i for i in await console.feed(member="rep.li") if "三甲医院招标应答话术包" in i["payload"].get("title", "")]
    assert len(pushed) == 1
    manager_news = [i["payload"].get("text", "") for i in await console.feed(member="mgr.wang")]
    assert any("协和医院" in text and NODES[3] in text for text in manager_news)
    clock.offset += dt.timedelta(minutes=20)
    await sweep(console)
    assert len([i for i in await console.feed(member="rep.li") if "三甲医院招标应答话术包" in i["payload"].get("title", "")]) == 1

    # The documents arrive as a deliverable photo: the overdue episode ends.
    reply = await upload(console, "协和医院 招标文件")
    assert any("招标文件" in text for text in texts_of(reply))
    clock.offset += dt.timedelta(minutes=20)
    await sweep(console)
    async with console.runtime.sessions() as session:
        episode = await session.scalar(select(Alert).where(Alert.rule == "milestone_overdue"))
    assert episode.status is AlertStatus.CLEARED

    # A budget request is refused until this node has an effective touch with evidence …
    request = "/申请 市场费用 5000 协和医院 用于推动临床试用"
    refused = texts_of(await console.send("rep.li", request))
    assert refused[0].startswith(f"「协和医院」当前阶段「{NODES[3]}」还没有带凭证的有效触达")
    await console.send("rep.li", "协和医院 刘主任 面谈40分钟 讲解了临床试用方案,后天发补充材料")
    clock.offset += dt.timedelta(minutes=3)
    evidence_reply = await console.upload("rep.li", photo(), "meeting.jpg")
    assert any("已计为有效触达" in text for text in texts_of(evidence_reply))
    # … then goes to the manager, who approves it; the rep is told.
    accepted = await console.send("rep.li", request)
    [approval] = [i["payload"]["card"] for i in accepted["replies"] if i["kind"] == "card" and i["to"] == {"member": "mgr.wang"}]
    assert any(field["value"] == NODES[3] for field in approval["fields"])
    outcome = await console.click("mgr.wang", approval, "批准")
    assert any(i["to"] == {"member": "rep.li"} and "批准" in (i.get("fallback") or i["payload"].get("text", ""))
               for i in outcome["replies"])
    async with console.runtime.sessions() as session:
        [resource] = list(await session.scalars(select(ResourceRequest)))
    assert resource.status is ResourceRequestStatus.APPROVED and resource.amount == 5000

    # Nodes 5–7.
    for node in NODES[4:]:
        clock.offset += dt.timedelta(days=3)
        await move(console, node, "合同条款分歧" if node == NODES[4] else "决策链不清晰")
        if node == NODES[4]:
            await upload(console, "协和医院 合同争议条款截图")
        assert await current_stage(console) == node

    async with console.runtime.sessions() as session:
        stays = list(await session.scalars(
            select(StageHistory).where(StageHistory.customer_id == customer.id).order_by(StageHistory.id)
        ))
        names = await pipeline_store.stage_names(session)
    assert [names[s.stage_id] for s in stays] == NODES
    assert all(s.left_at is not None for s in stays[:-1]) and stays[-1].left_at is None
    view = (await console.send("rep.li", "/阶段 协和医院"))["replies"][0]["payload"]["text"]
    assert NODES[-1] in view

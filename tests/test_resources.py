"""资源申请 through the console: the evidence gate, the approval card, and the rep hearing the outcome."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import create_app
from domain.enums import ResourceRequestStatus
from handlers.resources import ParsedRequest, parse_amount, parse_request
from storage import members as member_store
from storage.models import Customer, Dialogue, ResourceRequest
from tests.conftest import Console, make_config, texts_of
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database
from tests.seed import add_customer
from tests.test_touch_transcripts import jpeg_bytes

MARKETING = "/申请 市场费用 5000 华东建材 用于推动临床试用"
SUPPORT = "/申请 技术支持 华东建材 需要工程师现场测试"
KINDS = ("市场费用", "技术支持")


async def requests(console) -> list[ResourceRequest]:
    async with console.runtime.sessions() as session:
        return list(await session.scalars(select(ResourceRequest).order_by(ResourceRequest.id)))


async def effective_touch(console, clock, member: str = "rep.li") -> None:
    """A 20-minute call, then a photo of it within the evidence window."""
    await console.send(member, "华东建材 电话20分钟 聊了临床试用方案,明天发报价单")
    clock.offset += dt.timedelta(minutes=5)
    reply = await console.upload(member, jpeg_bytes(), "visit.jpg")
    assert any("有效触达" in t for t in texts_of(reply))


def replies_to(reply: dict[str, Any], member: str) -> list[dict[str, Any]]:
    return [item for item in reply["replies"] if item["to"] == {"member": member}]


async def submit(console, clock, text: str = MARKETING) -> dict[str, Any]:
    """An accepted request: returns the approval card sent to mgr.wang."""
    reply = await console.send("rep.li", text)
    [card] = [i["payload"]["card"] for i in replies_to(reply, "mgr.wang") if i["kind"] == "card"]
    return card


# ------------------------------------------------------------------------------ the gate


async def test_a_request_without_an_effective_touch_in_the_stage_is_refused_then_accepted(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")

    refused = await console.send("rep.li", MARKETING)
    assert texts_of(refused) == [
        "「华东建材」当前阶段「新线索」还没有带凭证的有效触达(需要至少1次)。请先记录一次有效触达并上传凭证,再申请。"
    ]
    assert await requests(console) == []

    # A touch still waiting for its evidence is not enough, and the refusal says so.
    await console.send("rep.li", "华东建材 电话20分钟 聊了临床试用方案,明天发报价单")
    [waiting] = texts_of(await console.send("rep.li", MARKETING))
    assert waiting.endswith("(本阶段有1条跟进还在等凭证,补上凭证后可能就满足了。)")
    clock.offset += dt.timedelta(minutes=5)
    await console.upload("rep.li", jpeg_bytes(), "visit.jpg")

    reply = await console.send("rep.li", MARKETING)
    assert replies_to(reply, "rep.li")[-1]["payload"]["text"] == (
        "已提交「华东建材」的市场费用申请(5000元),当前阶段「新线索」,附1项凭证,等待王静审批。"
    )
    [card] = [i["payload"]["card"] for i in replies_to(reply, "mgr.wang") if i["kind"] == "card"]
    assert card["title"] == "资源申请 · 华东建材"
    assert card["body"] == "李明申请市场费用(5000元),用途:用于推动临床试用"
    assert [b["label"] for b in card["buttons"]] == ["批准", "驳回"]
    fields = {f["label"]: f["value"] for f in card["fields"]}
    assert fields == {
        "申请人": "李明",
        "客户": "华东建材",
        "当前阶段": "新线索",
        "类型": "市场费用",
        "金额": "5000元",
        "用途": "用于推动临床试用",
        "凭证": "照片 · 11月25日 · visit.jpg",
    }

    [request] = await requests(console)
    async with console.runtime.sessions() as session:
        row = await session.get(Customer, customer.id)
    assert request.status is ResourceRequestStatus.PENDING
    assert (request.kind, request.amount, request.purpose) == ("市场费用", 5000, "用于推动临床试用")
    assert request.stage_id == row.stage_id
    assert [(e["kind"], e["filename"], e["date"]) for e in request.evidence] == [("photo", "visit.jpg", "2026-11-25")]


async def test_an_effective_touch_from_an_earlier_stage_does_not_count(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    await effective_touch(console, clock)
    clock.offset += dt.timedelta(hours=1)
    async with console.runtime.sessions() as session, session.begin():
        row = await session.get(Customer, customer.id)
        row.stage_entered_at = clock.now()  # the customer moved on since that touch
    [refusal] = texts_of(await console.send("rep.li", SUPPORT))
    assert refusal.startswith("「华东建材」当前阶段「新线索」还没有带凭证的有效触达(需要至少1次)")
    assert await requests(console) == []


async def test_a_request_for_another_reps_customer_is_refused_and_nothing_is_stored(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await effective_touch(console, clock)
    reply = await console.send("rep.zhao", MARKETING)
    assert texts_of(reply) == ["您名下没有「华东建材」,只能为自己负责的客户申请资源。"]
    assert await requests(console) == []
    assert replies_to(reply, "mgr.wang") == []


async def test_a_second_identical_pending_request_is_refused_naming_the_first(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await effective_touch(console, clock)
    await submit(console, clock)
    clock.offset += dt.timedelta(minutes=30)
    again = await console.send("rep.li", "/申请 市场费用 5千 华东建材 推动临床试用")
    assert texts_of(again) == [
        "「华东建材」已有一笔待审批的市场费用申请(5000元,11月25日提交,用途:用于推动临床试用),"
        "请等待王静处理,不要重复提交。"
    ]
    assert len(await requests(console)) == 1


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("/申请", "用法:/申请 类型 [金额] 客户 用途"),
        ("/申请 差旅费 华东建材 出差", "没有识别到申请类型。可申请的类型:市场费用、技术支持。"),
        ("/申请 市场费用 华东建材 推动临床试用", "市场费用需要写明金额"),
        ("/申请 技术支持 华东建材", "请写明用途"),
        ("/申请 市场费用 0 华东建材 推动临床试用", "金额需大于0"),
    ],
)
async def test_incomplete_requests_say_what_is_missing(console, clock, text, answer):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await effective_touch(console, clock)
    [reply] = texts_of(await console.send("rep.li", text))
    assert reply.startswith(answer)
    assert await requests(console) == []


# ------------------------------------------------------------------------------ the decision


async def test_approval_tells_the_rep(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await effective_touch(console, clock)
    card = await submit(console, clock)

    assert texts_of(await console.click("rep.li", card, "批准")) == ["这张卡片不是发给您的,无法操作。"]
    done = await console.click("mgr.wang", card, "批准")
    assert replies_to(done, "rep.li")[0]["payload"]["text"] == "您为「华东建材」申请的市场费用(5000元)已获王静批准。"
    assert "已批准,已通知李明。" in texts_of(done)
    [update] = [i for i in done["replies"] if i["kind"] == "card_update"]
    assert update["payload"]["card"]["closed_note"] == "已批准"
    [request] = await requests(console)
    async with console.runtime.sessions() as session:
        manager = await member_store.member_by_code(session, "mgr.wang")
    assert request.status is ResourceRequestStatus.APPROVED and request.decided_by == manager.id
    assert texts_of(await console.click("mgr.wang", card, "驳回")) == ["这张卡片已经处理过了,无需重复操作。"]


async def test_rejection_asks_for_a_reason_and_tells_the_rep(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await effective_touch(console, clock)
    card = await submit(console, clock, SUPPORT)
    assert card["body"] == "李明申请技术支持,用途:需要工程师现场测试"

    asked = await console.click("mgr.wang", card, "驳回")
    assert texts_of(asked)[0].startswith("请回复驳回原因,会转告李明。")
    [request] = await requests(console)
    assert request.status is ResourceRequestStatus.PENDING  # nothing decided until the reason comes

    done = await console.send("mgr.wang", "先远程演示,现场测试下阶段再安排")
    assert replies_to(done, "rep.li")[0]["payload"]["text"] == (
        "您为「华东建材」申请的技术支持被王静驳回,原因:先远程演示,现场测试下阶段再安排"
    )
    assert "已驳回,已将原因告知李明。" in texts_of(done)
    [update] = [i for i in done["replies"] if i["kind"] == "card_update"]
    assert update["payload"]["card"]["closed_note"] == "已驳回:先远程演示,现场测试下阶段再安排"
    [request] = await requests(console)
    assert request.status is ResourceRequestStatus.REJECTED
    assert request.decision_reason == "先远程演示,现场测试下阶段再安排"
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Dialogue))) == []
    assert texts_of(await console.click("mgr.wang", card, "批准")) == ["这张卡片已经处理过了,无需重复操作。"]


async def test_rejection_can_be_cancelled_and_the_request_approved_instead(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await effective_touch(console, clock)
    card = await submit(console, clock)
    await console.click("mgr.wang", card, "驳回")
    assert texts_of(await console.send("mgr.wang", "取消")) == ["已取消,审批卡片仍可继续操作。"]
    await console.click("mgr.wang", card, "批准")
    [request] = await requests(console)
    assert request.status is ResourceRequestStatus.APPROVED


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("token", "amount"),
    [
        ("5000", 5000),
        ("5千", 5000),
        ("1.2万", 12000),
        ("¥8,000", 8000),
        ("3000元", 3000),
        ("两万", 20000),
        ("五千", 5000),
        ("2w", 20000),
        ("三", None),  # a bare small numeral is a word, not money
        ("2台", None),
        ("华东建材", None),
    ],
)
def test_amounts(token, amount):
    assert parse_amount(token) == amount


@pytest.mark.parametrize(
    ("text", "kind", "amount", "rest"),
    [
        ("市场费用 5000 华东建材 用于推动临床试用", "市场费用", 5000, "华东建材 用于推动临床试用"),
        ("技术支持 华东建材 需要工程师现场测试", "技术支持", None, "华东建材 需要工程师现场测试"),
        ("市场费用1.2万 华东建材 展会", "市场费用", 12000, "华东建材 展会"),
        ("华东建材 市场费用 5千 展会物料", "市场费用", 5000, "华东建材 展会物料"),
        ("差旅 华东建材", None, None, "差旅 华东建材"),
    ],
)
def test_request_text_is_split_into_kind_amount_and_the_rest(text, kind, amount, rest):
    assert parse_request(text, KINDS) == ParsedRequest(kind, amount, rest)


# ------------------------------------------------------------------------------ on PostgreSQL


@pytest.fixture
async def pg_console(aiohttp_client, tmp_path, clock) -> Any:
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    async with scratch_database() as url:
        client = await aiohttp_client(create_app(make_config(tmp_path, storage={"url": url}), clock=clock))
        yield Console(client)
        await client.close()


async def test_request_and_rejection_on_postgresql(pg_console, clock):
    console = pg_console
    await add_customer(console.runtime, "rep.li", "华东建材")
    assert texts_of(await console.send("rep.li", SUPPORT))[0].startswith("「华东建材」当前阶段「新线索」还没有")
    await effective_touch(console, clock)
    card = await submit(console, clock, SUPPORT)
    assert texts_of(await console.send("rep.li", SUPPORT))[0].startswith("「华东建材」已有一笔待审批的技术支持申请")
    await console.click("mgr.wang", card, "驳回")
    await console.send("mgr.wang", "先远程演示")
    [request] = await requests(console)
    assert request.status is ResourceRequestStatus.REJECTED and request.amount is None

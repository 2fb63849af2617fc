"""Rewards: every N effective touches unlock one material chosen for the rep's customers (SPEC §6)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from bot.app import create_app
from handlers.playbooks import Situation, rank_packs
from storage.models import Customer, PackDelivery, ScriptPack
from tests.conftest import Console, cards_of, make_config, texts_of
from tests.seed import add_customer
from tests.test_touch_transcripts import jpeg_bytes

SUMMARIES = [
    "聊了报价细节", "确认了样品寄送地址", "沟通了付款方式", "跟进了招标进度",
    "了解了项目工期", "回复了技术参数问题", "发了检测报告",
]


async def set_industry(console: Console, customer_id: int, industry: str) -> None:
    async with console.runtime.sessions() as session, session.begin():
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        customer.industry = industry


async def effective_touch(console: Console, clock: Any, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Log a 20-minute call and send a photo for it: one effective touch. Returns both replies."""
    logged = await console.send("rep.li", f"华东建材 电话20分钟 {SUMMARIES[n % len(SUMMARIES)]},明天发报价单")
    evidence = await console.upload("rep.li", jpeg_bytes(), f"call{n}.jpg")
    assert any("已计为有效触达" in t for t in texts_of(evidence)), texts_of(evidence)
    clock.offset += dt.timedelta(minutes=20)
    return logged, evidence


def unlocked(reply: dict[str, Any]) -> list[str]:
    return [t for t in texts_of(reply) if "解锁物料" in t]


async def deliveries(console: Console) -> list[tuple[str, str]]:
    async with console.runtime.sessions() as session:
        rows = await session.execute(
            select(PackDelivery.cause, ScriptPack.title)
            .join(ScriptPack, ScriptPack.id == PackDelivery.pack_id)
            .order_by(PackDelivery.id)
        )
        return [(row.cause, row.title) for row in rows]


async def test_the_third_and_sixth_effective_touches_each_unlock_one_material(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    await set_industry(console, customer.id, "房地产开发")
    unlocked_at = {}
    for n in range(1, 7):
        _logged, evidence = await effective_touch(console, clock, n)
        unlocked_at[n] = unlocked(evidence)

    assert [n for n, notes in unlocked_at.items() if notes] == [3, 6]
    assert all(len(notes) == 1 for notes in unlocked_at.values() if notes)
    # Chosen for the customer: a new lead (新线索) in real estate gets the first-visit opener.
    assert "已完成第3次有效触达,解锁物料:《工程渠道首访开场白》" in unlocked_at[3][0]
    assert "已完成第6次有效触达" in unlocked_at[6][0]
    causes = await deliveries(console)
    assert [cause for cause, _title in causes] == ["reward:3", "reward:6"]
    # The second reward prefers a pack the rep has not received yet.
    assert causes[0][1] != causes[1][1]
    pushed = [item for item in await console.feed(member="rep.li") if "解锁物料" in item["payload"].get("text", "")]
    assert len(pushed) == 2 and pushed[0]["kind"] == "markdown"


async def test_a_count_reached_again_after_an_undo_never_rewards_twice(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    cards = []
    for n in range(1, 4):
        logged, _evidence = await effective_touch(console, clock, n)
        cards.append(cards_of(logged)[0])
    assert [cause for cause, _t in await deliveries(console)] == ["reward:3"]

    await console.click("rep.li", cards[2], "撤销")  # back to two effective touches
    _logged, evidence = await effective_touch(console, clock, 4)  # the third again

    assert unlocked(evidence) == []
    assert [cause for cause, _t in await deliveries(console)] == ["reward:3"]


async def test_touches_that_are_not_effective_do_not_count(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    for n in range(1, 3):
        await effective_touch(console, clock, n)
    await console.send("rep.li", "华东建材 电话1分钟 没聊几句,明天再打")
    reply = await console.upload("rep.li", jpeg_bytes(), "short.jpg")  # evidence, but too short a call
    assert unlocked(reply) == []
    assert await deliveries(console) == []


async def test_reward_every_is_configurable(aiohttp_client, tmp_path, clock):
    client = await aiohttp_client(create_app(make_config(tmp_path, rules={"reward_every": 2}), clock=clock))
    console = Console(client)
    await add_customer(console.runtime, "rep.li", "华东建材")
    notes = [unlocked((await effective_touch(console, clock, n))[1]) for n in range(1, 5)]
    assert [bool(n) for n in notes] == [False, True, False, True]
    assert [cause for cause, _t in await deliveries(console)] == ["reward:2", "reward:4"]


def _pack(pack_id: int, title: str, **tags: list[str]) -> ScriptPack:
    return ScriptPack(id=pack_id, title=title, body="", tags=tags, updated_at=dt.datetime.now(dt.UTC))


def test_rank_prefers_fitting_packs_then_unreceived_general_ones_over_other_industries():
    opener = _pack(1, "首访", industry=["房地产开发"], stage=["新线索"])
    quote = _pack(2, "报价", stage=["方案报价"])
    hospital = _pack(3, "招标", industry=["医院"], stage=["招标文件获取"])
    guide = _pack(4, "补漏建议")
    customers = [Situation("房地产开发", "新线索"), Situation("装饰工程", "方案报价")]

    assert [p.title for p in rank_packs([hospital, guide, quote, opener], customers)] == ["首访", "报价", "招标", "补漏建议"]
    # The customer just worked on counts double.
    focus = Situation("装饰工程", "方案报价")
    assert rank_packs([opener, quote], customers, focus=focus)[0].title == "报价"
    # Once received, a fitting pack gives way to general material not yet received.
    assert [p.title for p in rank_packs([opener, quote, hospital], [customers[0]], delivered={1})] == ["报价", "首访", "招标"]

"""竞品动态: reports by command, free text and photo; counter-scripts; intel for the weekly report."""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from handlers.competitors import find_competitor, leading_name
from storage import intel as intel_store
from storage.models import Competitor, CompetitorIntel, Evidence, Touch
from tests.conftest import START, Console, texts_of
from tests.seed import add_customer
from tests.test_touch_transcripts import jpeg_bytes


async def upload_with_caption(console: Console, member: str, data: bytes, caption: str) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("member", member)
    form.add_field("kind", "photo")
    form.add_field("text", caption)
    form.add_field("file", data, filename="photo.jpg", content_type="image/jpeg")
    response = await console.client.post("/console/api/messages", data=form)
    assert response.status == 200, await response.text()
    return await response.json()


async def all_intel(console: Console) -> list[CompetitorIntel]:
    async with console.runtime.sessions() as session:
        return list(await session.scalars(select(CompetitorIntel).order_by(CompetitorIntel.id)))


async def competitor_named(console: Console, name: str) -> Competitor:
    async with console.runtime.sessions() as session:
        competitor = await session.scalar(select(Competitor).where(Competitor.name == name))
    assert competitor is not None
    return competitor


async def test_a_report_by_alias_gets_the_counter_script_and_is_stored(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "/竞品 鼎固 降价20% 华东建材")

    [item] = reply["replies"]
    assert item["kind"] == "markdown" and item["payload"]["title"] == "竞品应对 · 鼎固建材"
    text = item["payload"]["text"]
    assert "已记录竞品动态:**鼎固建材**(客户:华东建材)" in text
    competitor = await competitor_named(console, "鼎固建材")
    assert competitor.counter_script.strip() in text
    [intel] = await all_intel(console)
    assert intel.competitor_id == competitor.id
    assert intel.customer_id == customer.id
    assert intel.text == "鼎固 降价20% 华东建材"
    assert intel.source_event_id == reply["event_id"]


async def test_free_text_starting_with_the_word_is_a_report(console):
    reply = await console.send("rep.li", "竞品:蓝盾 在搞免费施工指导")
    assert any("已记录竞品动态:**蓝盾防水**" in t for t in texts_of(reply))
    [intel] = await all_intel(console)
    assert intel.competitor_id == (await competitor_named(console, "蓝盾防水")).id
    assert intel.customer_id is None
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Touch))) == []


async def test_an_unknown_competitor_is_recorded_and_admins_are_told(console):
    reply = await console.send("rep.li", "/竞品 新锐建材 送货上门免运费")

    assert texts_of(reply)[0].startswith("已记录竞品动态「新锐建材」")
    assert "已通知管理员" in texts_of(reply)[0]
    [intel] = await all_intel(console)
    assert intel.competitor_id is None and intel.text == "新锐建材 送货上门免运费"
    [note] = [i for i in await console.feed(member="admin.he") if "新锐建材" in i["payload"].get("text", "")]
    assert "李明" in note["payload"]["text"] and "/竞品库" in note["payload"]["text"]


@pytest.mark.parametrize("text", ["/竞品", "/竞品   ", "竞品", "竞品:"])
async def test_a_report_with_nothing_in_it_gets_the_usage_and_stores_nothing(console, text):
    reply = await console.send("rep.li", text)
    assert texts_of(reply)[0].startswith("用法:/竞品")
    assert await all_intel(console) == []


async def test_a_touch_message_that_mentions_a_competitor_is_still_a_touch(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "华东建材 电话20分钟 客户说竞品鼎固在降价,明天发报价单")
    assert any("已记录跟进 · 华东建材" in t for t in texts_of(reply))
    assert await all_intel(console) == []


async def test_a_photo_captioned_with_a_competitor_is_stored_as_evidence_of_the_named_customer(console):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await upload_with_caption(console, "rep.li", jpeg_bytes(), "恒筑 华东建材项目上的报价单")

    assert any("已记录竞品动态:**恒筑新材**(客户:华东建材)。照片已存为「华东建材」的凭证。" in t for t in texts_of(reply))
    [intel] = await all_intel(console)
    async with console.runtime.sessions() as session:
        [evidence] = list(await session.scalars(select(Evidence)))
    assert intel.evidence_id == evidence.id and intel.customer_id == customer.id
    assert evidence.customer_id == customer.id and evidence.touch_id is None
    assert evidence.kind.value == "photo" and console.runtime.media.path_of(evidence.path).is_file()


async def test_a_competitor_photo_without_a_customer_is_kept_with_the_report(console):
    reply = await upload_with_caption(console, "rep.li", jpeg_bytes(), "竞品 华耀 新品宣传单")
    assert any("已记录竞品动态:**华耀板材**" in t and "照片已随竞品动态存档" in t for t in texts_of(reply))
    [intel] = await all_intel(console)
    assert intel.evidence_id is None and intel.photo_path.startswith("evidence/")
    assert console.runtime.media.path_of(intel.photo_path).is_file()
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Evidence))) == []
        [item] = await intel_store.intel_since(session, START)
    assert item.photo_path == intel.photo_path


async def test_a_competitor_photo_right_after_a_touch_belongs_to_that_customer(console, clock):
    customer = await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 上门拜访40分钟 看了工地,下周一送样品")
    clock.offset += dt.timedelta(minutes=3)
    reply = await upload_with_caption(console, "rep.li", jpeg_bytes(), "竞品 鼎固的样品")

    assert any("照片已存为「华东建材」的凭证" in t for t in texts_of(reply))
    [intel] = await all_intel(console)
    assert intel.customer_id == customer.id and intel.evidence_id is not None
    async with console.runtime.sessions() as session:
        [touch] = list(await session.scalars(select(Touch)))
    assert not touch.effective  # a competitor photo is not evidence of the visit


async def test_an_ordinary_photo_is_left_to_evidence_handling(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    reply = await upload_with_caption(console, "rep.li", jpeg_bytes(), "通话截图")
    assert any("已将照片作为凭证关联到「华东建材」" in t for t in texts_of(reply))
    assert await all_intel(console) == []


async def test_a_broken_competitor_photo_is_refused_and_nothing_is_stored(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await upload_with_caption(console, "rep.li", b"not really a jpeg", "竞品 鼎固 华东建材")
    assert texts_of(reply) and "图片" in texts_of(reply)[0]
    assert await all_intel(console) == []
    async with console.runtime.sessions() as session:
        assert list(await session.scalars(select(Evidence))) == []


async def test_intel_since_lists_the_weeks_reports_for_the_calibration_report(console, clock):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "/竞品 鼎固 降价20% 华东建材")
    clock.offset += dt.timedelta(days=8)
    await console.send("rep.zhao", "/竞品 新锐建材 送货上门免运费")
    await upload_with_caption(console, "rep.li", jpeg_bytes(), "竞品 蓝盾 华东建材 展会海报")

    async with console.runtime.sessions() as session:
        items = await intel_store.intel_since(session, START + dt.timedelta(days=7))
    assert [(i.competitor, i.member, i.customer) for i in items] == [
        (None, "赵磊", None),
        ("蓝盾防水", "李明", "华东建材"),
    ]
    assert items[0].photo_path is None and items[1].photo_path


class _Named:
    def __init__(self, competitor_id: int, name: str, aliases: list[str]) -> None:
        self.id, self.name, self.aliases = competitor_id, name, aliases


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("鼎固降价20%", "鼎固建材"),
        ("听说鼎固集团在华东降价", "鼎固建材"),  # the longest alias wins
        ("蓝顿防水 免费施工", "蓝盾防水"),  # a typo in the leading name
        ("ＨＹ板材 促销", None),
        ("新锐建材 送货上门", None),
    ],
)
def test_find_competitor(text, expected):
    base = [
        _Named(1, "鼎固建材", ["鼎固", "鼎固集团"]),
        _Named(2, "蓝盾防水", ["蓝盾"]),
    ]
    hit = find_competitor(text, base)  # type: ignore[arg-type]
    assert (hit.name if hit else None) == expected


@pytest.mark.parametrize(
    ("text", "name"),
    [("新锐建材降价20%", "新锐建材"), ("新锐建材 送货上门", "新锐建材"), ("远大,促销", "远大")],
)
def test_leading_name(text, name):
    assert leading_name(text) == name

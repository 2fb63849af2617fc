"""The shipped libraries: seeded at start-up, insert-only, consistent with pipelines and rules."""

from __future__ import annotations

import dataclasses

from sqlalchemy import delete, select

from bot.config import Config
from storage import library_seed
from storage.library_seed import COMPETITORS, OBSTACLE_RESPONSES, SCRIPT_PACKS, ensure_library
from storage.models import Competitor, ObstacleResponse, ScriptPack
from storage.pipeline_templates import DEFAULT_OBSTACLES, TEMPLATES
from tests.conftest import Console, texts_of
from tests.seed import add_customer


async def test_the_libraries_are_seeded_at_start_up(console):
    async with console.runtime.sessions() as session:
        titles = set(await session.scalars(select(ScriptPack.title)))
        responses = {r.obstacle: r for r in await session.scalars(select(ObstacleResponse))}
        competitors = list(await session.scalars(select(Competitor)))
    assert {"三甲医院招标应答话术包", "3步简化演示脚本", "游戏化教学方案包", "本周高价值客户补漏建议"} <= titles
    assert len(titles) == len(SCRIPT_PACKS) >= 12
    assert set(responses) == set(DEFAULT_OBSTACLES)
    assert all(3 <= len(r.review_questions) <= 4 and r.guidance for r in responses.values())
    assert len(competitors) >= 3
    assert all(c.aliases and c.counter_script for c in competitors)


def test_every_pack_named_by_a_pipeline_or_a_feedback_rule_ships():
    titles = {pack["title"] for pack in SCRIPT_PACKS}
    named = {
        action["push"]
        for template in TEMPLATES
        for stage in template["stages"]
        for action in stage.get("overdue", [])
        if "push" in action
    }
    named |= {rule["push"] for rule in Config().feedback.rules if rule.get("push")}
    assert named <= titles


def test_pack_tags_name_real_stages_and_obstacles():
    stages = {stage["name"] for template in TEMPLATES for stage in template["stages"]}
    obstacles = {o for template in TEMPLATES for o in template["obstacle_options"]}
    hospital = next(p for p in SCRIPT_PACKS if p["title"] == "三甲医院招标应答话术包")
    assert "招标文件获取" in hospital["tags"]["stage"]
    for pack in SCRIPT_PACKS:
        assert set(pack["tags"]) == {"industry", "stage", "obstacle", "competitor"}, pack["title"]
        assert set(pack["tags"]["stage"]) <= stages, pack["title"]
        assert set(pack["tags"]["obstacle"]) <= obstacles, pack["title"]
        assert set(pack["tags"]["competitor"]) <= {c["name"] for c in COMPETITORS}, pack["title"]
        assert len(pack["body"]) > 150, pack["title"]
    assert {r["obstacle"] for r in OBSTACLE_RESPONSES} == set(DEFAULT_OBSTACLES)


async def test_seeding_again_keeps_admin_edits_and_deletions(console, monkeypatch):
    runtime = console.runtime
    async with runtime.sessions() as session, session.begin():
        pack = await session.scalar(select(ScriptPack).where(ScriptPack.title == "3步简化演示脚本"))
        assert pack is not None
        pack.body = "管理员改写过的演示脚本"
        response = await session.scalar(select(ObstacleResponse).where(ObstacleResponse.obstacle == "合同条款分歧"))
        assert response is not None
        response.review_questions = ["只保留这一个问题?"]
        await session.execute(delete(Competitor).where(Competitor.name == "华耀板材"))

    added_pack = {**SCRIPT_PACKS[0], "title": "新版本新增的话术包"}
    monkeypatch.setattr(library_seed, "SCRIPT_PACKS", (*SCRIPT_PACKS, added_pack))
    async with runtime.sessions() as session, session.begin():
        result = await ensure_library(session, runtime.clock.now())
    assert dataclasses.astuple(result) == (1, 0, 0)

    async with runtime.sessions() as session:
        pack = await session.scalar(select(ScriptPack).where(ScriptPack.title == "3步简化演示脚本"))
        response = await session.scalar(select(ObstacleResponse).where(ObstacleResponse.obstacle == "合同条款分歧"))
        names = set(await session.scalars(select(Competitor.name)))
        assert await session.scalar(select(ScriptPack).where(ScriptPack.title == "新版本新增的话术包")) is not None
    assert pack is not None and pack.body == "管理员改写过的演示脚本"
    assert response is not None and response.review_questions == ["只保留这一个问题?"]
    assert "华耀板材" not in names  # an admin's deletion is not undone


async def test_an_entry_an_admin_created_before_seeding_is_kept(console):
    runtime = console.runtime
    async with runtime.sessions() as session, session.begin():
        await session.execute(delete(ScriptPack))
        await session.execute(delete(library_seed.Setting).where(library_seed.Setting.key == library_seed.SEED_SETTING))
        session.add(ScriptPack(title="合同条款谈判要点", body="公司自己的版本", tags={}, updated_at=runtime.clock.now()))
    async with runtime.sessions() as session, session.begin():
        result = await ensure_library(session, runtime.clock.now())
    assert result.packs == len(SCRIPT_PACKS) - 1
    async with runtime.sessions() as session:
        pack = await session.scalar(select(ScriptPack).where(ScriptPack.title == "合同条款谈判要点"))
    assert pack is not None and pack.body == "公司自己的版本"


# --- /话术 ----------------------------------------------------------------------------------------


async def test_a_keyword_lists_matching_packs(console: Console):
    reply = await console.send("rep.li", "/话术 谈判")
    [item] = reply["replies"]
    text = item["payload"]["text"]
    assert "《合同条款谈判要点》" in text and "《方案报价阶段价格异议应对》" in text
    assert text.index("《合同条款谈判要点》") < text.index("《方案报价阶段价格异议应对》")  # title hits first
    assert "/话术 合同条款谈判要点" in text


async def test_a_full_title_sends_the_pack_every_time_it_is_asked_for(console: Console):
    for _ in range(2):
        reply = await console.send("rep.li", "/话术 《预算审批推动话术》")
        [item] = reply["replies"]
        assert item["kind"] == "markdown" and item["payload"]["title"] == "📘《预算审批推动话术》"
        assert "立项说明" in item["payload"]["text"]


async def test_a_keyword_with_one_match_sends_it_at_once(console: Console):
    reply = await console.send("rep.li", "/话术 招标应答")
    assert reply["replies"][0]["payload"]["title"] == "📘《三甲医院招标应答话术包》"


async def test_without_a_keyword_the_usage_and_suggestions_for_the_reps_customers(console: Console):
    await add_customer(console.runtime, "rep.li", "华东建材")  # a new lead (新线索)
    text = texts_of(await console.send("rep.li", "/话术"))[0]
    assert text.startswith("用法:/话术")
    assert "1. 《工程渠道首访开场白》" in text


async def test_an_unknown_keyword_says_so(console: Console):
    text = texts_of(await console.send("rep.li", "/话术 量子纠缠"))[0]
    assert text == "没有找到与「量子纠缠」相关的话术包。可以换个关键词,或发送 /话术 查看推荐。"

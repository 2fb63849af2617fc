"""Admins keep the libraries: list, add, edit, retire, restore — edits survive an upgrade (the
seed runs again at every start) and every change is audited."""

from __future__ import annotations

from sqlalchemy import select

from storage.library_seed import ensure_library
from storage.models import AuditEntry, Competitor, ObstacleResponse, ScriptPack
from tests.conftest import texts_of


async def rows(console, model):
    async with console.runtime.sessions() as session:
        return list(await session.scalars(select(model)))


async def test_an_admin_adds_edits_and_retires_a_script_pack_and_reps_stop_getting_it(console):
    reply = await console.send("admin.he", "/话术 新增 大客户开场白 先问项目进度,再谈产品。")
    assert texts_of(reply) == ["已新增话术包「大客户开场白」。"]
    reply = await console.send("admin.he", "/话术 修改 大客户开场白 先问工期,再谈交付。")
    assert texts_of(reply) == ["已修改话术包「大客户开场白」。以后升级不会覆盖您的修改。"]
    reply = await console.send("rep.li", "/话术 大客户开场白")
    assert any("先问工期" in t for t in texts_of(reply))
    await console.send("admin.he", "/话术 停用 大客户开场白")
    reply = await console.send("rep.li", "/话术 大客户开场白")
    assert not any("先问工期" in t for t in texts_of(reply))
    listing = texts_of(await console.send("admin.he", "/话术 列表"))[0]
    assert "大客户开场白(已停用)" in listing
    actions = [a.action for a in await rows(console, AuditEntry)]
    assert actions == ["library.pack.add", "library.pack.edit", "library.pack.retire"]


async def test_admin_edits_and_retirements_survive_the_seed_at_the_next_start(console):
    packs = await rows(console, ScriptPack)
    responses = await rows(console, ObstacleResponse)
    competitors = await rows(console, Competitor)
    assert packs and responses and competitors  # seeded at first start
    pack, response, competitor = packs[0], responses[0], competitors[0]
    await console.send("admin.he", f"/话术 修改 {pack.title} 我们自己的版本")
    await console.send("admin.he", f"/应答库 修改 {response.obstacle} 先请技术负责人一起拜访")
    await console.send("admin.he", f"/竞品库 停用 {competitor.name}")
    async with console.runtime.sessions() as session, session.begin():
        await ensure_library(session, console.runtime.clock.now())  # as an upgrade's start would
    async with console.runtime.sessions() as session:
        assert (await session.get(ScriptPack, pack.id)).body == "我们自己的版本"
        assert (await session.get(ObstacleResponse, response.id)).guidance == "先请技术负责人一起拜访"
        assert (await session.get(Competitor, competitor.id)).retired_at is not None
        assert len(list(await session.scalars(select(Competitor)))) == len(competitors)


async def test_competitor_library_sets_aliases_and_refuses_duplicates_and_unknown_names(console):
    reply = await console.send("admin.he", "/竞品库 新增 坚石建材 强调我们的交期和售后。")
    assert texts_of(reply) == ["已新增竞品「坚石建材」。"]
    assert texts_of(await console.send("admin.he", "/竞品库 别名 坚石建材 坚石、JS")) == ["已设置竞品「坚石建材」的别名:坚石、JS。"]
    assert texts_of(await console.send("admin.he", "/竞品库 新增 坚石建材 再来一次")) == ["竞品「坚石建材」已存在,请用“修改”。"]
    assert texts_of(await console.send("admin.he", "/竞品库 停用 不存在的")) == ["没有名为「不存在的」的竞品。"]
    [added] = [c for c in await rows(console, Competitor) if c.name == "坚石建材"]
    assert added.aliases == ["坚石", "JS"]


async def test_non_admins_cannot_change_the_libraries(console):
    assert texts_of(await console.send("rep.li", "/话术 新增 偷偷加的 内容")) == ["只有管理员可以修改话术包库。"]
    assert texts_of(await console.send("mgr.wang", "/应答库")) == ["您没有权限使用 /应答库。"]
    assert texts_of(await console.send("rep.li", "/竞品库 新增 X Y")) == ["您没有权限使用 /竞品库。"]
    assert not [p for p in await rows(console, ScriptPack) if p.title == "偷偷加的"]
    assert await rows(console, AuditEntry) == []

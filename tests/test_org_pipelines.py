"""Admin-defined pipelines in the org directory, and team pipelines for new leads."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from storage import customers as customer_store
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import Pipeline, Stage
from storage.org import DirectoryError, load_directory, parse_directory

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)


def directory(stages: list[dict[str, Any]], team_pipeline: str | None = "project") -> dict[str, Any]:
    team: dict[str, Any] = {"key": "east", "name": "华东一组"}
    if team_pipeline:
        team["pipeline"] = team_pipeline
    return {
        "pipelines": [{"key": "project", "name": "工程项目销售", "obstacle_options": ["决策链不清晰", "资金未落实"],
                       "stages": stages}],
        "teams": [team, {"key": "south", "name": "华南组"}],
        "members": [
            {"code": "rep.li", "name": "李明", "team": "east"},
            {"code": "rep.sun", "name": "孙悦", "team": "south"},
        ],
    }


STAGES = [
    {"name": "立项", "limit_days": 5},
    {"name": "投标", "limit_days": 10, "working": True, "deliverables": ["投标文件"],
     "overdue": [{"push": "投标应答话术包"}, {"notify": "manager"}]},
]


@pytest.fixture
async def sessions(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/org.db")
    await upgrade(engine)
    yield session_factory(engine)
    await engine.dispose()


async def test_a_team_pipeline_is_where_its_reps_new_leads_start(sessions):
    async with transaction(sessions) as session:
        await load_directory(session, directory(STAGES), now=NOW)
    async with transaction(sessions) as session:
        li = await member_store.member_by_code(session, "rep.li")
        sun = await member_store.member_by_code(session, "rep.sun")
        east_lead = await customer_store.create_lead(session, owner_id=li.id, name="滨江幕墙", now=NOW)
        south_lead = await customer_store.create_lead(session, owner_id=sun.id, name="岭南置业", now=NOW)
        names = await pipeline_store.stage_names(session)
        project = await pipeline_store.pipeline_by_key(session, "project")
        stages = await pipeline_store.stages_of(session, project.id)
    assert names[east_lead.stage_id] == "立项" and east_lead.pipeline_id == project.id
    assert names[south_lead.stage_id] == "新线索"  # no team pipeline: the default B2B one
    assert project.obstacle_options == ["决策链不清晰", "资金未落实"]
    bid = stages[1]
    assert (bid.limit_days, bid.limit_working_days, bid.deliverables) == (10, True, ["投标文件"])
    assert bid.overdue_actions == [{"push": "投标应答话术包"}, {"notify": "manager"}]


async def test_reloading_updates_stages_in_place_appends_new_ones_and_keeps_removed_ones(sessions):
    async with transaction(sessions) as session:
        await load_directory(session, directory(STAGES), now=NOW)
    changed = [{"name": "立项", "limit_days": 3}, {"name": "签约", "limit_days": 14}]
    async with transaction(sessions) as session:
        await load_directory(session, directory(changed), now=NOW)
    async with sessions() as session:
        project = await session.scalar(select(Pipeline).where(Pipeline.key == "project"))
        stages = list(await session.scalars(select(Stage).where(Stage.pipeline_id == project.id).order_by(Stage.position)))
        pipelines = list(await session.scalars(select(Pipeline)))
    assert [(s.name, s.limit_days) for s in stages] == [("立项", 3), ("投标", 10), ("签约", 14)]
    assert len(pipelines) == 4  # the three templates and this one, never duplicated


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["teams"][0].update(pipeline="nope"), "teams #1: unknown pipeline 'nope'"),
        (lambda d: d["pipelines"][0]["stages"].append({"name": "立项"}), "duplicate stage name '立项'"),
        (lambda d: d["pipelines"][0]["stages"][0].update(limit_days=0), "limit_days must be a whole number"),
        (lambda d: d["pipelines"][0]["stages"][1]["overdue"].append({"notify": "ceo"}), "each overdue action is"),
        (lambda d: d["pipelines"][0].update(stages=[]), "stages must list at least one stage"),
        (lambda d: d.update(pipeline=[]), "unknown sections ['pipeline']"),
    ],
)
def test_a_bad_pipeline_definition_is_refused_precisely(change, message):
    raw = directory([dict(s) for s in STAGES])
    raw["pipelines"][0]["stages"] = [dict(s, overdue=list(s.get("overdue", []))) for s in STAGES]
    change(raw)
    with pytest.raises(DirectoryError) as info:
        parse_directory(raw)
    assert message in str(info.value)


def test_teams_may_use_the_shipped_templates():
    teams, _ = parse_directory(directory(STAGES, team_pipeline="hospital"))
    assert teams[0]["pipeline"] == "hospital"

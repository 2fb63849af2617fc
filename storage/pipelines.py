"""Pipelines and stages: seeding the templates and looking stages up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Pipeline, Stage, Team
from storage.pipeline_templates import TEMPLATES


async def ensure_pipeline(session: AsyncSession, template: dict[str, Any]) -> Pipeline:
    """Create a pipeline from a template unless one with its key exists (admins' edits are kept)."""
    [pipeline] = await _ensure_pipelines(session, [template])
    return pipeline


async def _ensure_pipelines(session: AsyncSession, templates: Sequence[dict[str, Any]]) -> list[Pipeline]:
    """``ensure_pipeline`` for several templates at once: one query for the existing ones, one
    flush for the new pipelines and one statement for all their stages."""
    keys = [template["key"] for template in templates]
    pipelines = {p.key: p for p in await session.scalars(select(Pipeline).where(Pipeline.key.in_(keys)))}
    created: list[tuple[Pipeline, dict[str, Any]]] = []
    for template in templates:
        if template["key"] in pipelines:
            continue
        pipeline = Pipeline(
            key=template["key"],
            name=template["name"],
            is_default=bool(template.get("default")),
            obstacle_options=list(template.get("obstacle_options", [])),
        )
        _set_crossing(pipeline, template)
        session.add(pipeline)
        pipelines[template["key"]] = pipeline
        created.append((pipeline, template))
    if created:
        await session.flush()
        await session.execute(insert(Stage), [
            {
                "pipeline_id": pipeline.id,
                "position": position,
                "name": stage["name"],
                "limit_days": stage.get("limit_days"),
                "limit_working_days": bool(stage.get("working")),
                "deliverables": list(stage.get("deliverables", [])),
                "overdue_actions": list(stage.get("overdue", [])),
            }
            for pipeline, template in created
            for position, stage in enumerate(template["stages"])
        ])
    return [pipelines[key] for key in keys]


async def upsert_pipeline(session: AsyncSession, template: dict[str, Any]) -> tuple[Pipeline, list[str]]:
    """Create or update an admin-defined pipeline; returns it and the stages kept but no longer listed.

    Stages are matched by name: limits, deliverables and overdue actions are updated in place and
    new stages are appended. A stage missing from the template is kept — customers and history
    still refer to it — and reported back so the caller can say so.
    """
    pipeline = await ensure_pipeline(session, template)
    pipeline.name = template["name"]
    pipeline.obstacle_options = list(template.get("obstacle_options", pipeline.obstacle_options))
    _set_crossing(pipeline, template)
    existing = {stage.name: stage for stage in await stages_of(session, pipeline.id)}
    position = max((stage.position for stage in existing.values()), default=-1)
    for spec in template["stages"]:
        stage = existing.get(spec["name"])
        if stage is None:
            position += 1
            stage = Stage(pipeline_id=pipeline.id, position=position, name=spec["name"])
            session.add(stage)
        stage.limit_days = spec.get("limit_days")
        stage.limit_working_days = bool(spec.get("working"))
        stage.deliverables = list(spec.get("deliverables", []))
        stage.overdue_actions = list(spec.get("overdue", []))
    await session.flush()
    listed = {spec["name"] for spec in template["stages"]}
    return pipeline, [name for name in existing if name not in listed]


def _set_crossing(pipeline: Pipeline, template: dict[str, Any]) -> None:
    crossing = template.get("crossing") or (None, None)
    pipeline.crossing_from, pipeline.crossing_to = crossing[0], crossing[1]


async def pipeline_by_key(session: AsyncSession, key: str) -> Pipeline | None:
    return await session.scalar(select(Pipeline).where(Pipeline.key == key))


async def pipeline_for_member(session: AsyncSession, team_id: int | None) -> Pipeline:
    """The pipeline a member's new leads start in: their team's, else the default."""
    if team_id is not None:
        pipeline_id = await session.scalar(select(Team.pipeline_id).where(Team.id == team_id))
        if pipeline_id is not None:
            pipeline = await session.get(Pipeline, pipeline_id)
            if pipeline is not None:
                return pipeline
    return await default_pipeline(session)


async def ensure_templates(session: AsyncSession) -> None:
    await _ensure_pipelines(session, TEMPLATES)


async def default_pipeline(session: AsyncSession) -> Pipeline:
    pipeline = await session.scalar(select(Pipeline).where(Pipeline.is_default.is_(True)).order_by(Pipeline.id))
    if pipeline is None:
        await ensure_templates(session)
        pipeline = await session.scalar(select(Pipeline).where(Pipeline.is_default.is_(True)))
    assert pipeline is not None
    return pipeline


async def stages_of(session: AsyncSession, pipeline_id: int) -> list[Stage]:
    return list(await session.scalars(select(Stage).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position)))


async def first_stage(session: AsyncSession, pipeline_id: int) -> Stage:
    return (await stages_of(session, pipeline_id))[0]


async def stage_names(session: AsyncSession) -> dict[int, str]:
    rows = await session.execute(select(Stage.id, Stage.name))
    return {row.id: row.name for row in rows}

"""Pipelines and stages: seeding the templates and looking stages up."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Pipeline, Stage
from storage.pipeline_templates import TEMPLATES


async def ensure_pipeline(session: AsyncSession, template: dict[str, Any]) -> Pipeline:
    """Create a pipeline from a template unless one with its key exists (admins' edits are kept)."""
    existing = await session.scalar(select(Pipeline).where(Pipeline.key == template["key"]))
    if existing is not None:
        return existing
    pipeline = Pipeline(
        key=template["key"],
        name=template["name"],
        is_default=bool(template.get("default")),
        obstacle_options=list(template.get("obstacle_options", [])),
    )
    session.add(pipeline)
    await session.flush()
    for position, stage in enumerate(template["stages"]):
        session.add(
            Stage(
                pipeline_id=pipeline.id,
                position=position,
                name=stage["name"],
                limit_days=stage.get("limit_days"),
                limit_working_days=bool(stage.get("working")),
                deliverables=list(stage.get("deliverables", [])),
                overdue_actions=list(stage.get("overdue", [])),
            )
        )
    await session.flush()
    return pipeline


async def ensure_templates(session: AsyncSession) -> None:
    for template in TEMPLATES:
        await ensure_pipeline(session, template)


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

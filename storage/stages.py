"""Stage moves (阶段变更), stage history and time in stage.

A move is requested first (``StageChange`` awaiting its obstacle answer) and committed only when
the obstacle card is answered: then the customer's stage changes, the open history row is closed
and a new one opened, all in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import StageChangeStatus
from storage.db import rowcount
from storage.models import Customer, Evidence, Pipeline, Stage, StageChange, StageHistory
from storage.pipeline_templates import DEFAULT_OBSTACLES


@dataclass(frozen=True)
class StageStay:
    """One stay of a customer in a stage; ``left_at`` is None while it lasts."""

    stage_id: int
    stage_name: str
    position: int
    entered_at: dt.datetime
    left_at: dt.datetime | None
    member_id: int | None

    def duration(self, now: dt.datetime) -> dt.timedelta:
        return (self.left_at or now) - self.entered_at


# --- pipelines and stages ----------------------------------------------------------------------


async def get_pipeline(session: AsyncSession, pipeline_id: int) -> Pipeline | None:
    return await session.get(Pipeline, pipeline_id)


async def get_stage(session: AsyncSession, stage_id: int) -> Stage | None:
    return await session.get(Stage, stage_id)


async def pipeline_stages(session: AsyncSession, pipeline_id: int) -> list[Stage]:
    return list(
        await session.scalars(select(Stage).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position))
    )


async def all_stages(session: AsyncSession) -> list[Stage]:
    """Every stage of every pipeline, grouped by pipeline and ordered."""
    return list(await session.scalars(select(Stage).order_by(Stage.pipeline_id, Stage.position)))


def obstacle_options(pipeline: Pipeline | None) -> list[str]:
    """The obstacle question's options for a pipeline (the defaults when it defines none)."""
    options = [str(o).strip() for o in (pipeline.obstacle_options if pipeline else []) or [] if str(o).strip()]
    return options or list(DEFAULT_OBSTACLES)


async def customers_named(session: AsyncSession, name: str) -> list[Customer]:
    """Customers (of anyone) with exactly this name — to tell "not yours" from "unknown"."""
    return list(await session.scalars(select(Customer).where(Customer.name == name).order_by(Customer.id)))


# --- stage changes -----------------------------------------------------------------------------


async def get_change(session: AsyncSession, change_id: int) -> StageChange | None:
    return await session.get(StageChange, change_id)


async def pending_change(session: AsyncSession, customer_id: int) -> StageChange | None:
    """The customer's move still waiting for its obstacle answer, if any."""
    return await session.scalar(
        select(StageChange)
        .where(StageChange.customer_id == customer_id, StageChange.status == StageChangeStatus.AWAITING_OBSTACLE)
        .order_by(StageChange.id.desc())
        .limit(1)
    )


async def request_change(
    session: AsyncSession,
    *,
    customer: Customer,
    to_stage_id: int,
    member_id: int,
    reason: str,
    task_id: str,
    now: dt.datetime,
) -> StageChange:
    """Record a requested move; the customer stays where it is until ``commit_change``."""
    change = StageChange(
        customer_id=customer.id,
        from_stage_id=customer.stage_id,
        to_stage_id=to_stage_id,
        member_id=member_id,
        reason=reason,
        status=StageChangeStatus.AWAITING_OBSTACLE,
        requested_at=now,
        task_id=task_id,
    )
    session.add(change)
    await session.flush()
    return change


async def _settle(session: AsyncSession, change: StageChange, status: StageChangeStatus,
                  now: dt.datetime | None) -> bool:
    """Compare-and-set the status of a pending change: exactly one caller wins, even across replicas."""
    result = await session.execute(
        update(StageChange)
        .where(StageChange.id == change.id, StageChange.status == StageChangeStatus.AWAITING_OBSTACLE)
        .values(status=status, committed_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return rowcount(result) == 1


async def cancel_change(session: AsyncSession, change: StageChange) -> bool:
    """Withdraw a pending move; False when it was no longer pending."""
    return await _settle(session, change, StageChangeStatus.CANCELLED, None)


async def commit_change(session: AsyncSession, change: StageChange, customer: Customer, now: dt.datetime) -> bool:
    """Move the customer: close the open stay, open the new one, mark the change committed.

    Idempotent: False (and nothing changed) when the change is not pending any more.
    """
    if not await _settle(session, change, StageChangeStatus.COMMITTED, now):
        return False
    open_stays = list(
        await session.scalars(
            select(StageHistory).where(StageHistory.customer_id == customer.id, StageHistory.left_at.is_(None))
        )
    )
    if not open_stays:
        # Customers imported with a stage but no history: record the stay that is ending.
        session.add(
            StageHistory(
                customer_id=customer.id,
                stage_id=customer.stage_id,
                entered_at=customer.stage_entered_at,
                left_at=now,
                member_id=customer.owner_id,
            )
        )
    for stay in open_stays:
        stay.left_at = now
    session.add(StageHistory(customer_id=customer.id, stage_id=change.to_stage_id, entered_at=now,
                             member_id=change.member_id))
    customer.stage_id = change.to_stage_id
    customer.stage_entered_at = now
    await session.flush()
    return True


async def committed_changes_since(session: AsyncSession, customer_id: int, since: dt.datetime) -> list[StageChange]:
    """Moves of a customer committed at or after ``since`` (e.g. "did this touch advance the stage?")."""
    return list(
        await session.scalars(
            select(StageChange)
            .where(
                StageChange.customer_id == customer_id,
                StageChange.status == StageChangeStatus.COMMITTED,
                StageChange.committed_at >= since,
            )
            .order_by(StageChange.committed_at)
        )
    )


# --- history and time in stage -----------------------------------------------------------------


async def stage_history(session: AsyncSession, customer_id: int) -> list[StageStay]:
    """Every stay of the customer, oldest first."""
    rows = await session.execute(
        select(StageHistory, Stage.name, Stage.position)
        .join(Stage, Stage.id == StageHistory.stage_id)
        .where(StageHistory.customer_id == customer_id)
        .order_by(StageHistory.entered_at, StageHistory.id)
    )
    return [
        StageStay(
            stage_id=row[0].stage_id,
            stage_name=row[1],
            position=row[2],
            entered_at=row[0].entered_at,
            left_at=row[0].left_at,
            member_id=row[0].member_id,
        )
        for row in rows
    ]


def time_in_stage(history: Sequence[StageStay], now: dt.datetime) -> dict[int, dt.timedelta]:
    """Total time spent in each stage (stage id → duration), the current stay counted until ``now``.

    A customer may come back to a stage (a move backwards); its stays are added up.
    """
    totals: dict[int, dt.timedelta] = {}
    for stay in history:
        totals[stay.stage_id] = totals.get(stay.stage_id, dt.timedelta()) + max(stay.duration(now), dt.timedelta())
    return totals


def current_stay(customer: Customer, now: dt.datetime) -> dt.timedelta:
    """How long the customer has been in its current stage."""
    return max(now - customer.stage_entered_at, dt.timedelta())


# --- deliverables (节点交付物) -----------------------------------------------------------------


async def delivered(session: AsyncSession, customer_id: int) -> dict[int, list[str]]:
    """Deliverables received per stage id, from evidence recorded with a ``deliverable`` attribute."""
    rows = await session.scalars(
        select(Evidence).where(Evidence.customer_id == customer_id).order_by(Evidence.id)
    )
    result: dict[int, list[str]] = {}
    for evidence in rows:
        attributes = evidence.attributes or {}
        name, stage_id = attributes.get("deliverable"), attributes.get("stage_id")
        if name and isinstance(stage_id, int):
            names = result.setdefault(stage_id, [])
            if name not in names:
                names.append(name)
    return result

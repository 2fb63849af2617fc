"""Scheduled job runs: one ``JobRun`` row per job and period, and the schedule events behind them.

A schedule event is stored in the inbox with ``platform_msg_id = "<job>:<period>"``; the lookups
here that take a ``platform`` rely on that id format.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import InboxStatus, OutboxStatus
from storage.db import dialect_insert
from storage.models import InboxItem, JobRun, OutboxItem


async def record_run(
    session: AsyncSession, *, job: str, period: str, as_of: dt.datetime, started_at: dt.datetime,
    finished_at: dt.datetime, summary: str,
) -> None:
    """Record a finished run of ``job`` for ``period``, in the caller's transaction."""
    insert = dialect_insert(session)
    values = {"as_of": as_of, "started_at": started_at, "finished_at": finished_at, "status": "done",
              "summary": summary[:4000]}
    statement = insert(JobRun).values(job=job, period=period[:32], **values)
    # A replay of a period overwrites its record: the row says what the period's latest run did.
    await session.execute(statement.on_conflict_do_update(index_elements=["job", "period"], set_=values))


async def run_exists(session: AsyncSession, job: str, period: str) -> bool:
    """A run of ``job`` was recorded for ``period``."""
    return await session.scalar(select(JobRun.id).where(JobRun.job == job, JobRun.period == period)) is not None


async def period_queued(session: AsyncSession, platform: str, job: str, period: str) -> bool:
    """The schedule event for ``job`` and ``period`` is already in the inbox."""
    return (
        await session.scalar(
            select(InboxItem.id).where(InboxItem.platform == platform, InboxItem.platform_msg_id == f"{job}:{period}")
        )
    ) is not None


async def has_ever_run(session: AsyncSession, job: str) -> bool:
    """Some run of ``job`` was recorded, for any period."""
    return await session.scalar(select(JobRun.id).where(JobRun.job == job).limit(1)) is not None


async def ever_queued(session: AsyncSession, platform: str, job: str) -> bool:
    """Some schedule event of ``job`` is in the inbox, for any period."""
    # Event ids are "<job>:<period>": a range on the unique index instead of LIKE.
    return (
        await session.scalar(
            select(InboxItem.id)
            .where(InboxItem.platform == platform, InboxItem.platform_msg_id >= f"{job}:", InboxItem.platform_msg_id < f"{job};")
            .limit(1)
        )
    ) is not None


async def latest_runs(session: AsyncSession) -> dict[str, JobRun]:
    """Each job's most recently finished run, by job name."""
    latest = select(JobRun.job, func.max(JobRun.finished_at).label("finished")).group_by(JobRun.job).subquery()
    rows = await session.scalars(
        select(JobRun).join(latest, (latest.c.job == JobRun.job) & (latest.c.finished == JobRun.finished_at))
    )
    return {row.job: row for row in rows}


async def run_of(session: AsyncSession, job: str, period: str) -> JobRun | None:
    """The recorded run of ``job`` for ``period``, if any."""
    return await session.scalar(select(JobRun).where(JobRun.job == job, JobRun.period == period))


@dataclass(frozen=True)
class QueuedRun:
    """Where the inbox item of a run stands, whichever process holds it."""

    status: InboxStatus
    attempts: int
    lease_until: dt.datetime | None  # held by a worker (or waiting for a retry) until then
    error: str | None


async def queued_run(session: AsyncSession, inbox_id: int) -> QueuedRun | None:
    """The state of the inbox item ``inbox_id`` (a job's schedule event), read from the database."""
    row = (
        await session.execute(
            select(InboxItem.status, InboxItem.attempts, InboxItem.lease_until, InboxItem.error).where(
                InboxItem.id == inbox_id
            )
        )
    ).first()
    return QueuedRun(InboxStatus(row.status), row.attempts, row.lease_until, row.error) if row else None


@dataclass(frozen=True)
class QueuedReply:
    id: int
    status: OutboxStatus
    attempts: int
    next_attempt_at: dt.datetime
    lease_until: dt.datetime | None


async def replies_of(session: AsyncSession, inbox_id: int) -> list[QueuedReply]:
    """Every outbox message queued while processing inbox item ``inbox_id``, oldest first."""
    rows = await session.execute(
        select(OutboxItem.id, OutboxItem.status, OutboxItem.attempts, OutboxItem.next_attempt_at,
               OutboxItem.lease_until)
        .where(OutboxItem.source_event_id == inbox_id)
        .order_by(OutboxItem.id)
    )
    return [QueuedReply(r.id, OutboxStatus(r.status), r.attempts, r.next_attempt_at, r.lease_until) for r in rows]


@dataclass(frozen=True)
class PendingRun:
    inbox_id: int
    job: str
    period: str
    attempts: int
    error: str | None


async def pending_runs(session: AsyncSession, platform: str) -> list[PendingRun]:
    """Schedule events stored and not finished yet (queued, being processed, or waiting for a retry)."""
    rows = await session.execute(
        select(InboxItem.id, InboxItem.payload, InboxItem.attempts, InboxItem.error)
        .where(InboxItem.platform == platform, InboxItem.status == InboxStatus.PENDING)
        .order_by(InboxItem.id)
    )
    return [
        PendingRun(row.id, str(row.payload.get("job") or ""), str((row.payload.get("job_args") or {}).get("period") or ""),
                   row.attempts, row.error)
        for row in rows
    ]

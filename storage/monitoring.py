"""What the database says about the service's health, read at each ``/metrics`` scrape.

Counts are taken from the shared tables rather than from one process's memory, so every replica
reports the same backlog, outbox depth, dead letters, alerts and job runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import InboxStatus
from storage.models import Alert, InboxItem, JobRun, OutboxItem


@dataclass(frozen=True)
class Snapshot:
    inbox_pending: int = 0
    inbox_failed: int = 0
    oldest_pending_age_seconds: float = 0.0
    outbox_by_status: dict[str, int] = field(default_factory=dict)
    alerts_by_status: dict[str, int] = field(default_factory=dict)
    job_runs: dict[tuple[str, str], int] = field(default_factory=dict)  # (job, status) → runs


async def database_answers(session: AsyncSession) -> None:
    """Raise when the database cannot run a trivial query (health checks)."""
    await session.execute(text("SELECT 1"))


async def snapshot(session: AsyncSession, now: dt.datetime) -> Snapshot:
    inbox = {
        status.value: n
        for status, n in await session.execute(select(InboxItem.status, func.count()).group_by(InboxItem.status))
    }
    oldest = await session.scalar(
        select(func.min(InboxItem.received_at)).where(InboxItem.status == InboxStatus.PENDING)
    )
    outbox = {
        status.value: n
        for status, n in await session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status))
    }
    alerts = {
        status.value: n for status, n in await session.execute(select(Alert.status, func.count()).group_by(Alert.status))
    }
    runs = {
        (job, status): n
        for job, status, n in await session.execute(
            select(JobRun.job, JobRun.status, func.count()).group_by(JobRun.job, JobRun.status)
        )
    }
    return Snapshot(
        inbox_pending=inbox.get(InboxStatus.PENDING.value, 0),
        inbox_failed=inbox.get(InboxStatus.FAILED.value, 0),
        oldest_pending_age_seconds=max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0,
        outbox_by_status=outbox,
        alerts_by_status=alerts,
        job_runs=runs,
    )

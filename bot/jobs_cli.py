"""``pacebot jobs list | run NAME [--now ISO]``: see the jobs, or replay one period as of an instant."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from typing import Any

from bot.bootstrap import build_runtime
from bot.clock import FrozenClock, ShiftableClock
from bot.config import Config
from bot.runtime import Runtime
from bot.scheduler import JOBS, JOBS_BY_NAME, accept_job, period_of
from domain.enums import OutboxStatus
from storage import inbox as inbox_store
from storage import job_runs


async def run_cli(config: Config, action: str, name: str | None = None, now: str | None = None) -> int:
    clock: Any = ShiftableClock()
    if now:
        try:
            instant = dt.datetime.fromisoformat(now)
        except ValueError:
            print(f"pacebot: --now {now!r} is not an ISO 8601 date-time", file=sys.stderr)
            return 2
        if instant.tzinfo is None:
            print("pacebot: --now needs a time zone offset, e.g. 2026-12-01T09:00:00+08:00", file=sys.stderr)
            return 2
        clock = FrozenClock(instant)
    runtime = await build_runtime(config, clock=clock)
    try:
        handled = set(runtime.dispatcher.job_names)
        if action == "list":
            return await _list(runtime, handled)
        assert name is not None
        if name not in JOBS_BY_NAME or name not in handled:
            known = ", ".join(spec.name for spec in JOBS if spec.name in handled)
            reason = "has no handler yet" if name in JOBS_BY_NAME else "is not a job"
            print(f"pacebot: {name!r} {reason}; jobs: {known}", file=sys.stderr)
            return 2
        await runtime.start(workers=True, scheduler=False)
        return await _run_one(runtime, name)
    finally:
        await runtime.stop()


async def _list(runtime: Runtime, handled: set[str]) -> int:
    async with runtime.sessions() as session:
        runs = await job_runs.latest_runs(session)
    tz = runtime.config.tz
    now = runtime.clock.now()
    for spec in JOBS:
        schedule = spec.schedule(runtime.config)
        run = runs.get(spec.name)
        last = f"last run {run.period} ({run.summary})" if run else "never run"
        state = "" if spec.name in handled else " [no handler yet]"
        due = period_of(spec, runtime.config, now).fire.astimezone(tz).isoformat(timespec="minutes")
        print(f"{spec.name:<20} {schedule.describe():<18} {spec.about}{state}\n{'':<20} latest period {due}; {last}")
    return 0


async def _run_one(runtime: Runtime, name: str, timeout: float = 60.0) -> int:
    accepted, period = await accept_job(runtime, name, replay=True)
    await runtime.inbox.wait_processed(accepted.inbox_id, timeout=timeout)
    async with runtime.sessions() as session:
        item = await inbox_store.load(session, accepted.inbox_id)
        run = await job_runs.run_of(session, name, period.key)
    assert item is not None
    as_of_text = period.fire.astimezone(runtime.config.tz).isoformat()
    if item.status != "done":
        print(f"job {name} period {period.key} (as of {as_of_text}): {item.status}: {item.error}", file=sys.stderr)
        return 1
    statuses = await _wait_delivered(runtime, accepted.inbox_id, timeout)
    print(f"job {name} period {period.key} (as of {as_of_text}): done")
    if run is not None:
        print(f"  {run.summary}")
    sent, dead = statuses.get(OutboxStatus.SENT, 0), statuses.get(OutboxStatus.DEAD, 0)
    waiting = sum(statuses.values()) - sent - dead
    print(f"  messages: {sent} sent, {waiting} waiting for retry, {dead} failed")
    return 0


async def _wait_delivered(runtime: Runtime, inbox_id: int, timeout: float) -> dict[OutboxStatus, int]:
    """Wait until every reply of the run was sent, dead-lettered, or tried once and left for a retry."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with runtime.sessions() as session:
            rows = await job_runs.replies_delivery_state(session, inbox_id)
        statuses: dict[OutboxStatus, int] = {}
        for status, _ in rows:
            statuses[OutboxStatus(status)] = statuses.get(OutboxStatus(status), 0) + 1
        untried = [
            (status, attempts) for status, attempts in rows
            if status == OutboxStatus.SENDING or (status == OutboxStatus.PENDING and attempts == 0)
        ]
        if not untried or loop.time() >= deadline:
            return statuses
        runtime.outbox.wake()
        await asyncio.sleep(0.1)

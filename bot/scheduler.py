"""Scheduled jobs: timers that become durable ``schedule`` events.

A timer never does the work itself. When it fires, APScheduler calls :func:`fire` (one
importable function, plain string arguments), which works out the job's *period* — the
scheduled instant it stands for, e.g. ``2026-11-30T10:15`` or ``2026-11-27`` — and accepts
``Event(platform="schedule", platform_msg_id="<job>:<period>")`` into the inbox. The inbox
de-duplicates on that id, so however many replicas fire, each period is stored once and processed
once by the normal worker, through the same dispatcher as a chat message; its replies go through
the outbox. When the event is processed, a ``JobRun`` row (unique per job and period) records it
in the same transaction.

At start-up each job that ran before gets its most recent period enqueued if that period never
ran — once, however long the bot was down. ``pacebot jobs run NAME --now ISO`` runs one
period as of any instant (bot/jobs_cli.py), through the same inbox, while the service runs or not.

Jobs are listed in :data:`JOBS`, one line each. A job is only scheduled once some router handles
it (``@router.job(name)``), so a line can be added before its handler exists.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, timer_offset
from bot.config import Config
from bot.events import Event, EventKind
from bot.inbox import Accepted, Inbox
from storage import job_runs


class JobHost(Protocol):
    """What the timers need of the runtime (the runtime itself, structurally)."""

    config: Config
    clock: Clock
    sessions: async_sessionmaker[AsyncSession]
    inbox: Inbox

    @property
    def job_names(self) -> list[str]: ...

log = logging.getLogger(__name__)

PLATFORM = "schedule"
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Interval periods are counted from here, so every replica computes the same boundaries.
_EPOCH = dt.datetime(2000, 1, 3, tzinfo=dt.UTC)
# A timer whose period cannot be stored (the database is briefly away) tries again after these
# pauses (then every last one), for as long as a late run is still wanted (misfire grace).
_ENQUEUE_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


# -- schedules ---------------------------------------------------------------------------------


class Schedule(Protocol):
    def trigger(self, tz: ZoneInfo) -> BaseTrigger: ...

    def last_fire(self, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        """The latest scheduled instant at or before ``now``."""
        ...

    def period(self, fire: dt.datetime, tz: ZoneInfo) -> str: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Every:
    """Every ``minutes`` minutes, on boundaries shared by all replicas."""

    minutes: int

    def trigger(self, tz: ZoneInfo) -> BaseTrigger:
        return IntervalTrigger(minutes=self.minutes, start_date=_EPOCH, timezone=dt.UTC)

    def last_fire(self, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        step = dt.timedelta(minutes=self.minutes)
        return _EPOCH + step * ((now - _EPOCH) // step)

    def period(self, fire: dt.datetime, tz: ZoneInfo) -> str:
        return fire.astimezone(tz).strftime("%Y-%m-%dT%H:%M")

    def describe(self) -> str:
        return f"every {self.minutes} min"


@dataclass(frozen=True)
class Daily:
    at: dt.time

    def trigger(self, tz: ZoneInfo) -> BaseTrigger:
        return CronTrigger(hour=self.at.hour, minute=self.at.minute, timezone=tz)

    def last_fire(self, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        local = now.astimezone(tz)
        fire = dt.datetime.combine(local.date(), self.at, tzinfo=tz)
        if fire > local:
            fire = dt.datetime.combine(local.date() - dt.timedelta(days=1), self.at, tzinfo=tz)
        return fire.astimezone(dt.UTC)

    def period(self, fire: dt.datetime, tz: ZoneInfo) -> str:
        return fire.astimezone(tz).date().isoformat()

    def describe(self) -> str:
        return f"daily {self.at:%H:%M}"


@dataclass(frozen=True)
class Weekly:
    weekday: int  # Monday = 0
    at: dt.time

    @classmethod
    def parse(cls, text: str) -> Weekly:
        """``"fri 10:00"`` (the form of ``scheduler.weekly_activity``)."""
        match = re.fullmatch(r"\s*(mon|tue|wed|thu|fri|sat|sun)\s+([01]?\d|2[0-3]):([0-5]\d)\s*", text)
        if match is None:
            raise ValueError(f"expected a weekday and a time like 'fri 10:00', got {text!r}")
        return cls(_WEEKDAYS.index(match.group(1)), dt.time(int(match.group(2)), int(match.group(3))))

    def trigger(self, tz: ZoneInfo) -> BaseTrigger:
        return CronTrigger(day_of_week=_WEEKDAYS[self.weekday], hour=self.at.hour, minute=self.at.minute, timezone=tz)

    def last_fire(self, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        local = now.astimezone(tz)
        day = local.date() - dt.timedelta(days=(local.weekday() - self.weekday) % 7)
        fire = dt.datetime.combine(day, self.at, tzinfo=tz)
        if fire > local:
            fire = dt.datetime.combine(day - dt.timedelta(days=7), self.at, tzinfo=tz)
        return fire.astimezone(dt.UTC)

    def period(self, fire: dt.datetime, tz: ZoneInfo) -> str:
        return fire.astimezone(tz).date().isoformat()

    def describe(self) -> str:
        return f"weekly {_WEEKDAYS[self.weekday]} {self.at:%H:%M}"

    def a_day_later(self) -> Weekly:
        return Weekly((self.weekday + 1) % 7, self.at)


@dataclass(frozen=True)
class TeamDaily:
    """Daily at ``at`` in *each team's own* time zone (the morning digest).

    The timer ticks every few minutes (every 15, or finer when ``at`` is not on a quarter hour),
    which puts a tick on ``at`` in every time zone in use; each tick's handler sends to the teams
    whose local ``at`` has come and who have not had that day's message yet (one record per team
    and local date makes it once per team per day).
    """

    at: dt.time

    @property
    def tick(self) -> Every:
        return Every(math.gcd(15, self.at.minute))

    def trigger(self, tz: ZoneInfo) -> BaseTrigger:
        return self.tick.trigger(tz)

    def last_fire(self, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        return self.tick.last_fire(now, tz)

    def period(self, fire: dt.datetime, tz: ZoneInfo) -> str:
        return self.tick.period(fire, tz)

    def describe(self) -> str:
        return f"daily {self.at:%H:%M} team time"


class ShiftedTrigger(BaseTrigger):  # type: ignore[misc]
    """``inner``'s fire times on a clock ``offset`` ahead of the wall clock (the test-only offset clock)."""

    def __init__(self, inner: BaseTrigger, offset: dt.timedelta) -> None:
        self.inner = inner
        self.offset = offset

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        previous = previous_fire_time + self.offset if previous_fire_time is not None else None
        fire = self.inner.get_next_fire_time(previous, now + self.offset)
        return fire - self.offset if fire is not None else None

    def __str__(self) -> str:
        return f"{self.inner} shifted by {self.offset}"


@dataclass(frozen=True)
class JobSpec:
    name: str
    schedule: Callable[[Config], Schedule]
    about: str
    # Idempotent sweeps run their current period at the very first start, so a fresh
    # installation (or the demo) shows alerts at once instead of after the first interval.
    run_at_first_start: bool = False


# One line per job. Times are in the organisation's time zone (org.timezone).
JOBS: tuple[JobSpec, ...] = (
    JobSpec("alert_sweep", lambda c: Every(c.scheduler.alert_sweep_minutes), "alert rules (预警扫描)", True),
    JobSpec("weekly_activity", lambda c: Weekly.parse(c.scheduler.weekly_activity), "low weekly activity check"),
    JobSpec("obstacle_reminders", lambda c: Every(60), "obstacle evidence reminders"),
    JobSpec("purge", lambda c: Daily(dt.time.fromisoformat(c.retention.run_at)), "retention: finished rows, unused media"),
    JobSpec("evidence_deadline", lambda c: Every(60), "touches past the evidence deadline stay non-effective", True),
    JobSpec("digest", lambda c: TeamDaily(dt.time.fromisoformat(c.scheduler.digest_time)),
            "morning digest to team groups (晨会速览)"),
    JobSpec("calibration", lambda c: Weekly.parse(c.scheduler.calibration_time), "Friday calibration report (动作校准会)"),
    JobSpec("calibration_reminder", lambda c: Weekly.parse(c.scheduler.calibration_time).a_day_later(),
            "remind admins to update the obstacle response library 24 h after calibration"),
)
JOBS_BY_NAME = {spec.name: spec for spec in JOBS}


@dataclass(frozen=True)
class Period:
    job: str
    key: str  # e.g. "2026-11-30T10:15" or "2026-11-27"
    fire: dt.datetime  # the scheduled instant it stands for (UTC)


def period_of(spec: JobSpec, config: Config, now: dt.datetime) -> Period:
    """The period a run at ``now`` belongs to: the latest scheduled instant at or before it."""
    schedule = spec.schedule(config)
    fire = schedule.last_fire(now, config.tz)
    return Period(spec.name, schedule.period(fire, config.tz), fire)


def schedule_event(period: Period, *, replay: str | None = None, now: dt.datetime | None = None) -> Event:
    """The inbox event of one period; a replay gets its own id so it runs even if the period ran.

    ``now`` (``pacebot jobs run --now``) travels with the event: whichever process handles it
    evaluates the run as of that instant (the dispatcher's scheduled-run step).
    """
    msg_id = f"{period.job}:{period.key}" + (f":replay:{replay}" if replay else "")
    job_args = {"period": period.key, "as_of": period.fire.isoformat()}
    if now is not None:
        job_args["now"] = now.astimezone(dt.UTC).isoformat()
    return Event(
        platform=PLATFORM,
        platform_msg_id=msg_id,
        kind=EventKind.SCHEDULE,
        occurred_at=period.fire,
        job=period.job,
        job_args=job_args,
    )


async def accept_job(
    runtime: JobHost, job: str, *, replay: bool = False, now: dt.datetime | None = None
) -> tuple[Accepted, Period]:
    """Accept the event of the job's period at ``now`` (default: the runtime clock's now).

    With ``now``, the run is evaluated as of that instant wherever it is processed. Without
    ``replay`` the event has the period's own id, so it de-duplicates with the timers' (a period
    that is queued or ran is not stored again); a replay gets an id of its own and runs again.
    """
    period = period_of(JOBS_BY_NAME[job], runtime.config, now or runtime.clock.now())
    event = schedule_event(period, replay=uuid.uuid4().hex[:12] if replay else None, now=now)
    accepted = await runtime.inbox.accept(event)
    return accepted, period


# -- the timers ----------------------------------------------------------------------------------

# Schedulers running in this process, by key: what ``fire`` (called with plain strings) acts on.
_RUNNING: dict[str, JobScheduler] = {}


async def fire(job: str, scheduler_key: str) -> None:
    """What every APScheduler job calls: enqueue the job's current period."""
    scheduler = _RUNNING.get(scheduler_key)
    if scheduler is None:
        log.warning("job %s fired for a stopped scheduler %s; ignored", job, scheduler_key)
        return
    await scheduler.enqueue(job)


def scheduled_jobs(config: Config, handled: list[str] | set[str]) -> list[JobSpec]:
    """The jobs that have a handler; the others are logged and left out."""
    missing = [spec.name for spec in JOBS if spec.name not in handled]
    if missing:
        log.info("scheduler: no handler yet for %s; not scheduled", ", ".join(missing))
    return [spec for spec in JOBS if spec.name in handled]


class JobScheduler:
    """APScheduler timers for one runtime, started and stopped with it."""

    def __init__(self, runtime: JobHost) -> None:
        self.runtime = runtime
        self.key = f"scheduler-{uuid.uuid4().hex[:8]}"
        self.jobs = scheduled_jobs(runtime.config, set(runtime.job_names))
        self._scheduler: AsyncIOScheduler | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        config = self.runtime.config
        _RUNNING[self.key] = self
        await self.catch_up()
        self._scheduler = AsyncIOScheduler(
            timezone=config.tz,
            job_defaults={
                # After a stall, several due runs of a job collapse into one; it never overlaps itself;
                # a run more than the grace late is skipped (the next period, or start-up catch-up,
                # covers it — and the inbox de-duplicates whatever does run).
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": config.scheduler.misfire_grace_seconds,
            },
        )
        offset = timer_offset(self.runtime.clock)
        for spec in self.jobs:
            trigger = spec.schedule(config).trigger(config.tz)
            self._scheduler.add_job(
                fire,
                ShiftedTrigger(trigger, offset) if offset else trigger,
                args=[spec.name, self.key],
                id=spec.name,
                name=spec.name,
                replace_existing=True,
            )
        self._scheduler.start()
        log.info("scheduler started: %s", ", ".join(f"{s.name} ({s.schedule(config).describe()})" for s in self.jobs))

    async def stop(self) -> None:
        _RUNNING.pop(self.key, None)
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback: let it run
        self._scheduler = None
        if self._in_flight:
            _, stuck = await asyncio.wait(self._in_flight, timeout=10)
            for task in stuck:  # still retrying a database that is away: catch-up covers it next start
                task.cancel()

    def next_runs(self) -> dict[str, dt.datetime | None]:
        if self._scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    async def enqueue(self, job: str) -> Accepted:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            # The period is fixed when the timer fires, however long storing it takes.
            period = period_of(JOBS_BY_NAME[job], self.runtime.config, self.runtime.clock.now())
            accepted = await self._accept(period)
            log.info("job %s period %s %s", job, period.key, "enqueued" if accepted.is_new else "already enqueued")
            return accepted
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _accept(self, period: Period) -> Accepted:
        """Store the period's event; a failure is tried again rather than losing, say, a day's digest."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.runtime.config.scheduler.misfire_grace_seconds
        for attempt in itertools.count():
            try:
                return await self.runtime.inbox.accept(schedule_event(period))
            except Exception:
                delay = _ENQUEUE_RETRY_SECONDS[min(attempt, len(_ENQUEUE_RETRY_SECONDS) - 1)]
                if self.key not in _RUNNING or loop.time() + delay > give_up_at:
                    raise
                log.warning("job %s period %s could not be enqueued; trying again in %ss",
                            period.job, period.key, delay, exc_info=True)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def catch_up(self) -> list[Period]:
        """Enqueue, once, each job's latest period that has neither run nor been enqueued.

        Only jobs that ran before are caught up: a fresh installation (or a job new in this
        release) starts with its next scheduled time, rather than sending, say, yesterday's digest
        on the day it is installed — except idempotent sweeps (``run_at_first_start``), whose
        current period runs at once.
        """
        enqueued = []
        now = self.runtime.clock.now()
        for spec in self.jobs:
            period = period_of(spec, self.runtime.config, now)
            async with self.runtime.sessions() as session:
                if await has_run(session, spec.name, period.key):
                    continue
                if not spec.run_at_first_start and not await ever_ran(session, spec.name):
                    continue
            accepted = await self.runtime.inbox.accept(schedule_event(period))
            if accepted.is_new:
                log.info("catch-up: job %s period %s enqueued", spec.name, period.key)
                enqueued.append(period)
        return enqueued


async def has_run(session: AsyncSession, job: str, period: str) -> bool:
    """A run was recorded for the period, or its event is already in the inbox."""
    return await job_runs.run_exists(session, job, period) or await job_runs.period_queued(
        session, PLATFORM, job, period
    )


async def ever_ran(session: AsyncSession, job: str) -> bool:
    return await job_runs.has_ever_run(session, job) or await job_runs.ever_queued(session, PLATFORM, job)

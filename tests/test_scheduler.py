"""Scheduled jobs: period keys, once per period across replicas, catch-up, run records, the CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import jobs_cli, scheduler
from bot.bootstrap import build_runtime
from bot.cli import main
from bot.clock import FrozenClock, ShiftableClock
from bot.config import config_from_dict
from bot.scheduler import JOBS_BY_NAME, Daily, Every, JobScheduler, Weekly, accept_job, period_of
from domain.enums import OutboxStatus
from storage import customers as customer_store
from storage import members as member_store
from storage.db import create_engine, session_factory
from storage.models import Alert, InboxItem, JobRun, OutboxItem
from tests.conftest import ORG_SMALL, SHANGHAI, START, make_config
from tests.pg import database_on

CONFIG = config_from_dict({})


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SHANGHAI)


# -- periods -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "at", "period"),
    [
        ("alert_sweep", local(2026, 11, 25, 10, 7), "2026-11-25T10:00"),
        ("alert_sweep", local(2026, 11, 25, 10, 14, 59), "2026-11-25T10:00"),
        ("alert_sweep", local(2026, 11, 25, 10, 15), "2026-11-25T10:15"),
        ("alert_sweep", local(2026, 11, 26, 0, 3), "2026-11-26T00:00"),
        ("obstacle_reminders", local(2026, 11, 25, 10, 59), "2026-11-25T10:00"),
        ("weekly_activity", local(2026, 11, 25, 10, 0), "2026-11-20"),  # Wednesday: last Friday
        ("weekly_activity", local(2026, 11, 27, 9, 59), "2026-11-20"),
        ("weekly_activity", local(2026, 11, 27, 10, 0), "2026-11-27"),
        # The digest ticks every quarter hour; each team's own 09:00 is picked by the handler.
        ("digest", local(2026, 11, 25, 8, 59), "2026-11-25T08:45"),
        ("digest", local(2026, 11, 25, 9, 0), "2026-11-25T09:00"),
        ("calibration", local(2026, 11, 27, 15, 0), "2026-11-27"),
    ],
)
def test_the_period_is_the_latest_scheduled_instant(job: str, at: dt.datetime, period: str) -> None:
    assert period_of(JOBS_BY_NAME[job], CONFIG, at).key == period


@pytest.mark.parametrize(
    "schedule", [Every(15), Every(7), Every(60), Daily(dt.time(9, 0)), Weekly(4, dt.time(10, 0)), Weekly.parse("sun 23:30")]
)
def test_periods_match_the_apscheduler_triggers(schedule) -> None:
    """Each instant the timer fires at is the start of a period: every replica computes the same key."""
    trigger = schedule.trigger(SHANGHAI)
    now = local(2026, 11, 25, 10, 7, 30)
    previous = None
    for _ in range(5):
        fire = trigger.get_next_fire_time(previous, now)
        assert schedule.last_fire(fire, SHANGHAI) == fire
        before = schedule.last_fire(fire - dt.timedelta(seconds=1), SHANGHAI)
        assert before < fire and schedule.period(before, SHANGHAI) != schedule.period(fire, SHANGHAI)
        previous, now = fire, fire + dt.timedelta(seconds=1)


def test_a_schedule_event_is_keyed_by_job_and_period() -> None:
    period = period_of(JOBS_BY_NAME["alert_sweep"], CONFIG, START)
    event = scheduler.schedule_event(period)
    assert event.platform == "schedule" and event.platform_msg_id == "alert_sweep:2026-11-25T10:00"
    assert event.job == "alert_sweep" and event.job_args == {"period": "2026-11-25T10:00", "as_of": period.fire.isoformat()}
    replay = scheduler.schedule_event(period, replay="r1")
    assert replay.platform_msg_id == "alert_sweep:2026-11-25T10:00:replay:r1"
    # A run as of a given instant carries it, for whichever process handles the event.
    at = START + dt.timedelta(minutes=7)
    assert scheduler.schedule_event(period, now=at).job_args["now"] == "2026-11-25T02:07:00+00:00"


# -- exactly once per period ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def storage_url(request, tmp_path: Path) -> AsyncIterator[str]:
    async with database_on(request.param, tmp_path) as url:
        yield url


async def _schedule_items(runtime, job: str | None = None) -> list[InboxItem]:
    async with runtime.sessions() as session:
        query = select(InboxItem).where(InboxItem.platform == "schedule").order_by(InboxItem.id)
        if job:
            query = query.where(InboxItem.platform_msg_id.startswith(f"{job}:"))
        return list(await session.scalars(query))


async def test_two_replicas_accepting_the_same_period_store_one_item(tmp_path, storage_url) -> None:
    config = make_config(tmp_path, storage={"url": storage_url})
    clock = FrozenClock(START)
    first = await build_runtime(config, clock=clock)
    second = await build_runtime(config, clock=clock)
    try:
        (a, period_a), (b, period_b) = await asyncio.gather(
            accept_job(first, "alert_sweep"), accept_job(second, "alert_sweep")
        )
        assert period_a == period_b
        assert a.inbox_id == b.inbox_id and sorted([a.is_new, b.is_new]) == [False, True]
        assert len(await _schedule_items(first)) == 1
    finally:
        await first.stop()
        await second.stop()


async def test_catch_up_enqueues_the_latest_missed_period_once_and_runs_are_recorded(tmp_path) -> None:
    clock = ShiftableClock(base=FrozenClock(START))
    runtime = await build_runtime(make_config(tmp_path), clock=clock)
    jobs = JobScheduler(runtime)
    try:
        # A fresh installation runs its idempotent sweeps at once, but nothing for a past period
        # that sends messages: no weekly check for last Friday on day one.
        first = await jobs.catch_up()
        assert sorted((p.job, p.key) for p in first) == [
            ("alert_sweep", "2026-11-25T10:00"), ("evidence_deadline", "2026-11-25T10:00"),
        ]
        assert await jobs.catch_up() == []  # enqueued once
        await runtime.start(workers=True, scheduler=False)
        for job in ("alert_sweep", "weekly_activity"):  # the sweep enqueued above, the timer's first run
            accepted, _ = await accept_job(runtime, job)
            await runtime.inbox.wait_processed(accepted.inbox_id)
        async with runtime.sessions() as session:
            runs = {(run.job, run.period): run for run in await session.scalars(select(JobRun))}
        sweep = runs[("alert_sweep", "2026-11-25T10:00")]
        assert sweep.status == "done" and "raised:" in sweep.summary and sweep.finished_at is not None
        assert ("weekly_activity", "2026-11-20") in runs
        assert await jobs.catch_up() == []  # the latest periods ran

        clock.offset += dt.timedelta(hours=5, minutes=20)  # down for five hours: 21 sweeps missed
        again = await jobs.catch_up()
        assert sorted((p.job, p.key) for p in again) == [  # once each, the latest period
            ("alert_sweep", "2026-11-25T15:15"), ("evidence_deadline", "2026-11-25T15:00"),
        ]
        assert await jobs.catch_up() == []
        assert len(await _schedule_items(runtime, "alert_sweep")) == 2
    finally:
        await runtime.stop()


async def test_the_scheduler_starts_and_stops_with_the_runtime_and_fire_enqueues(tmp_path) -> None:
    runtime = await build_runtime(make_config(tmp_path, scheduler={"enabled": True}), clock=FrozenClock(START))
    try:
        await runtime.start()
        assert runtime.scheduler is not None
        key = runtime.scheduler.key
        next_runs = runtime.scheduler.next_runs()
        assert {"alert_sweep", "weekly_activity"} <= set(next_runs) and all(next_runs.values())
        # Fresh database: only the idempotent sweeps run at once.
        assert sorted(i.platform_msg_id for i in await _schedule_items(runtime)) == [
            "alert_sweep:2026-11-25T10:00", "evidence_deadline:2026-11-25T10:00",
        ]
        await scheduler.fire("alert_sweep", key)  # what the timer calls
        await scheduler.fire("alert_sweep", key)  # more fires in the same period: stored once
        [item] = await _schedule_items(runtime, "alert_sweep")
        assert item.platform_msg_id == "alert_sweep:2026-11-25T10:00"
    finally:
        await runtime.stop()
    assert runtime.scheduler is None
    await scheduler.fire("alert_sweep", key)  # a late timer after stop does nothing


async def test_a_fire_while_the_database_is_briefly_away_is_retried_not_lost(tmp_path, monkeypatch) -> None:
    clock = ShiftableClock(base=FrozenClock(START))
    runtime = await build_runtime(make_config(tmp_path, scheduler={"enabled": True}), clock=clock)
    monkeypatch.setattr(scheduler, "_ENQUEUE_RETRY_SECONDS", (0.0,))
    real_accept, failures = runtime.inbox.accept, []

    async def flaky_accept(event):
        if len(failures) < 2:
            failures.append(event.platform_msg_id)
            clock.offset += dt.timedelta(minutes=20)  # time passes while the database is away
            raise ConnectionError("database is away")
        return await real_accept(event)

    try:
        await runtime.start()
        clock.offset += dt.timedelta(minutes=15)  # the next period: start-up already ran the first
        monkeypatch.setattr(runtime.inbox, "accept", flaky_accept)
        await scheduler.fire("alert_sweep", runtime.scheduler.key)
        item = (await _schedule_items(runtime, "alert_sweep"))[-1]
        # Stored once, for the period the timer fired in (not the one the clock reached meanwhile).
        assert failures == [item.platform_msg_id] * 2 == ["alert_sweep:2026-11-25T10:15"] * 2
    finally:
        await runtime.stop()


async def test_scheduler_disabled_starts_no_timers(tmp_path) -> None:
    runtime = await build_runtime(make_config(tmp_path), clock=FrozenClock(START))
    try:
        await runtime.start()
        assert runtime.scheduler is None
        assert await _schedule_items(runtime) == []
    finally:
        await runtime.stop()


# -- pacebot jobs ---------------------------------------------------------------------------------------


def _config_file(tmp_path: Path) -> str:
    path = tmp_path / "pacebot.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\ndata_dir = "{tmp_path}/data"\n'
        f'[org]\ndirectory = "{ORG_SMALL}"\n',
        encoding="utf-8",
    )
    return str(path)


def _seed_cold_customer(tmp_path: Path, path: str) -> None:
    from bot.config import load_config

    async def seed() -> None:
        runtime = await build_runtime(load_config(path), clock=FrozenClock(START))
        try:
            async with runtime.sessions() as session, session.begin():
                rep = await member_store.member_by_code(session, "rep.li")
                assert rep is not None
                await customer_store.create_lead(session, owner_id=rep.id, name="华东建材", now=START)
        finally:
            await runtime.stop()

    asyncio.run(seed())


def _outbox(tmp_path: Path) -> list[OutboxItem]:
    async def read() -> list[OutboxItem]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
        async with session_factory(engine)() as session:
            rows = list(await session.scalars(select(OutboxItem).order_by(OutboxItem.id)))
            runs = await session.scalar(select(func.count()).select_from(JobRun))
        await engine.dispose()
        assert runs == 1
        return rows

    return asyncio.run(read())


def test_jobs_run_alert_sweep_as_of_a_time_delivers_and_prints_a_summary(tmp_path, capsys) -> None:
    path = _config_file(tmp_path)
    _seed_cold_customer(tmp_path, path)
    assert main(["--config", path, "jobs", "run", "alert_sweep", "--now", "2026-12-01T09:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "job alert_sweep period 2026-12-01T09:00 (as of 2026-12-01T09:00:00+08:00): done" in out
    assert "raised: cold 1" in out and "messages: 1 sent" in out
    [item] = _outbox(tmp_path)
    assert item.status == OutboxStatus.SENT and item.target == "rep.li" and "华东建材" in item.payload["text"]

    # The same period again: it already ran, so it is not run twice — the admin is told so.
    assert main(["--config", path, "jobs", "run", "alert_sweep", "--now", "2026-12-01T09:05:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "period 2026-12-01T09:00 (as of 2026-12-01T09:05:00+08:00): already ran" in out and "--force" in out
    assert "raised: cold 1" in out
    assert len(_outbox(tmp_path)) == 1 and _schedule_ids(tmp_path) == ["alert_sweep:2026-12-01T09:00"]

    # --force runs it again; the episode was told already, so nothing new is sent.
    assert main(["--config", path, "jobs", "run", "alert_sweep", "--now", "2026-12-01T09:05:00+08:00", "--force"]) == 0
    out = capsys.readouterr().out
    assert "period 2026-12-01T09:00 (as of 2026-12-01T09:05:00+08:00): done" in out and "messages: 0 sent" in out
    assert len(_outbox(tmp_path)) == 1 and len(_schedule_ids(tmp_path)) == 2


def _schedule_ids(tmp_path: Path) -> list[str]:
    async def read() -> list[str]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
        async with session_factory(engine)() as session:
            ids = list(await session.scalars(
                select(InboxItem.platform_msg_id).where(InboxItem.platform == "schedule").order_by(InboxItem.id)
            ))
        await engine.dispose()
        return ids

    return asyncio.run(read())


def test_jobs_run_refuses_an_unknown_job_and_lists_the_jobs(tmp_path, capsys) -> None:
    path = _config_file(tmp_path)
    assert main(["--config", path, "jobs", "run", "alert_swep"]) == 2
    err = capsys.readouterr().err
    assert "'alert_swep' is not a job" in err and "alert_sweep" in err and "weekly_activity" in err
    assert main(["--config", path, "jobs", "run", "alert_sweep", "--now", "yesterday"]) == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_jobs_list_shows_schedules(tmp_path, capsys) -> None:
    path = _config_file(tmp_path)
    assert main(["--config", path, "jobs", "list"]) == 0
    out = capsys.readouterr().out
    assert "alert_sweep" in out and "every 15 min" in out and "weekly fri 10:00" in out and "never run" in out


# -- pacebot jobs run while a service runs (in process: the service's worker wins deterministically) --------


async def _seed_lead(runtime, at: dt.datetime) -> None:
    async with runtime.sessions() as session, session.begin():
        rep = await member_store.member_by_code(session, "rep.li")
        assert rep is not None
        await customer_store.create_lead(session, owner_id=rep.id, name="华东建材", now=at)


async def _rows(runtime, model) -> list:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(model).order_by(model.id)))


def _only_others_take_it(monkeypatch, runtime) -> None:
    """This process never wins the claim: as when a running service took the item first."""

    async def lost_the_race(inbox_id: int) -> None:
        return None

    monkeypatch.setattr(runtime.inbox, "process", lost_the_race)


async def test_jobs_run_waits_for_the_run_a_service_took_and_it_is_evaluated_as_of_now(
    tmp_path, storage_url, monkeypatch, capsys
) -> None:
    config = make_config(tmp_path, storage={"url": storage_url}, inbox={"poll_seconds": 0.05})
    service_clock = FrozenClock(START + dt.timedelta(days=10))  # the service's own "now": every lead is cold
    service = await build_runtime(config, clock=service_clock)
    cli = await build_runtime(config, clock=service_clock)
    try:
        await _seed_lead(service, START)
        await service.start()
        await cli.start(workers=False)
        _only_others_take_it(monkeypatch, cli)

        # An hour after the lead was created nothing is cold: the service evaluates as of --now.
        early = START + dt.timedelta(hours=1)
        assert await jobs_cli.run_job(cli, "alert_sweep", now=early, timeout=30) == jobs_cli.EXIT_DONE
        out = capsys.readouterr().out
        assert "job alert_sweep period 2026-11-25T11:00 (as of 2026-11-25T11:00:00+08:00): done" in out
        assert "raised: none" in out and "messages: 0 sent" in out
        assert await _rows(service, Alert) == []

        # Four days later it is; the alert is raised as of that instant, and its message sent once.
        later = START + dt.timedelta(days=4)
        assert await jobs_cli.run_job(cli, "alert_sweep", now=later, timeout=30) == jobs_cli.EXIT_DONE
        out = capsys.readouterr().out
        assert "period 2026-11-29T10:00 (as of 2026-11-29T10:00:00+08:00): done" in out
        assert "raised: cold 1" in out and "messages: 1 sent" in out
        [alert] = await _rows(service, Alert)
        assert alert.rule == "cold" and alert.raised_at == later and alert.notified_at == later
        runs = {run.period: run for run in await _rows(service, JobRun)}
        assert set(runs) == {"2026-11-25T11:00", "2026-11-29T10:00"}
        assert runs["2026-11-29T10:00"].as_of == later and runs["2026-11-29T10:00"].finished_at == service_clock.now()
        [message] = await _rows(service, OutboxItem)
        assert message.status == OutboxStatus.SENT and message.attempts == 1
        assert len(await _schedule_items(service)) == 2
    finally:
        await cli.stop()
        await service.stop()


async def test_jobs_run_that_times_out_says_still_queued_not_failed_and_a_rerun_takes_it(
    tmp_path, monkeypatch, capsys
) -> None:
    runtime = await build_runtime(make_config(tmp_path), clock=FrozenClock(START + dt.timedelta(days=4)))
    try:
        await _seed_lead(runtime, START)
        await runtime.start(workers=False)
        with monkeypatch.context() as patch:
            _only_others_take_it(patch, runtime)
            code = await jobs_cli.run_job(runtime, "alert_sweep", timeout=0.3)
        assert code == jobs_cli.EXIT_STILL_QUEUED == 3
        captured = capsys.readouterr()
        assert "queued as inbox item" in captured.out
        assert "still queued" in captured.err and "not failed" in captured.err and "pacebot jobs list" in captured.err
        assert "failed" not in captured.err.replace("not failed", "")
        assert await _rows(runtime, JobRun) == []
        # What it names to check with shows the run as not finished.
        assert await jobs_cli._list(runtime, set(runtime.job_names), None) == 0
        [item] = await _schedule_items(runtime)
        assert f"not finished yet: period 2026-11-29T10:00, inbox item {item.id} (queued)" in capsys.readouterr().out

        # Run again (no service took it): the queued period is the one run — not a second one.
        assert await jobs_cli.run_job(runtime, "alert_sweep", timeout=30) == jobs_cli.EXIT_DONE
        out = capsys.readouterr().out
        assert "already queued as inbox item" in out and ": done" in out and "raised: cold 1" in out
        assert len(await _schedule_items(runtime)) == 1 and len(await _rows(runtime, JobRun)) == 1
    finally:
        await runtime.stop()


async def test_jobs_run_reports_a_real_failure_as_failed_with_the_reason(tmp_path, monkeypatch, capsys) -> None:
    runtime = await build_runtime(make_config(tmp_path, inbox={"max_attempts": 1}), clock=FrozenClock(START))
    try:
        await runtime.start(workers=False)

        async def broken(ctx):
            raise RuntimeError("the rules table is unreadable")

        monkeypatch.setitem(runtime.dispatcher._jobs, "alert_sweep", broken)
        assert await jobs_cli.run_job(runtime, "alert_sweep", timeout=30) == jobs_cli.EXIT_FAILED
        err = capsys.readouterr().err
        assert "job alert_sweep period 2026-11-25T10:00" in err and "failed after 1 attempt(s)" in err
        assert "the rules table is unreadable" in err
        assert await _rows(runtime, JobRun) == []
    finally:
        await runtime.stop()

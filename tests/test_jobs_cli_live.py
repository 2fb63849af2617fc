"""``pacebot jobs run`` against a running ``pacebot serve``: real processes on one database.

The service runs in a subprocess on a temporary SQLite file (or a scratch PostgreSQL database when
PACEBOT_TEST_POSTGRES_URL is set), and the command runs in another, exactly as an admin would run
it on the server. Each period runs once whichever process takes it, the command reports what the
database records, and a replayed ``--now`` is what the run is evaluated as of — also when the
service's worker is the one that processes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.bootstrap import build_runtime
from bot.clock import FrozenClock, SystemClock
from bot.config import load_config
from bot.inbox import conversation_key
from bot.scheduler import JOBS_BY_NAME, period_of, schedule_event
from domain.enums import OutboxStatus
from storage import customers as customer_store
from storage import inbox as inbox_store
from storage import members as member_store
from storage.db import create_engine, session_factory
from storage.models import Alert, InboxItem, JobRun, OutboxItem
from tests.conftest import ORG_SMALL, SHANGHAI
from tests.pg import database_on

# Real processes that mostly wait: one xdist worker runs them one after another while the
# others run the rest (scripts/test.sh starts one worker more than there are CPUs). Not the
# "processes" group of the fault tests: nothing here depends on how soon a process is up, so
# another worker may run these meanwhile.
pytestmark = pytest.mark.xdist_group("processes-jobs")

PACEBOT = Path(sys.executable).with_name("pacebot")
DEADLINE_SECONDS = 60.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request, tmp_path: Path) -> AsyncIterator[str]:
    async with database_on(request.param, tmp_path) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Live:
    """A config file, a seeded database and a ``pacebot serve`` process on them."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.config_path = tmp_path / "pacebot.toml"
        self.config_path.write_text(
            f'[storage]\nurl = "{url}"\ndata_dir = "{tmp_path}/data"\n'
            f'[org]\ndirectory = "{ORG_SMALL}"\n'
            # No timers: only the runs the test asks for. Quick polling: the test waits less.
            "[scheduler]\nenabled = false\n[inbox]\npoll_seconds = 0.05\n[outbox]\npoll_seconds = 0.05\n",
            encoding="utf-8",
        )
        self.config = load_config(self.config_path)
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    async def seed_lead(self, created: dt.datetime) -> None:
        runtime = await build_runtime(self.config, clock=FrozenClock(created))
        try:
            async with runtime.sessions() as session, session.begin():
                rep = await member_store.member_by_code(session, "rep.li")
                assert rep is not None
                await customer_store.create_lead(session, owner_id=rep.id, name="华东建材", now=created)
        finally:
            await runtime.stop()

    def _start(self) -> subprocess.Popen[bytes]:
        with open(self.log, "wb") as log:
            return subprocess.Popen(
                [str(PACEBOT), "--config", str(self.config_path), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp_path,
            )

    async def serve(self) -> None:
        self.process = await asyncio.to_thread(self._start)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_SECONDS
        async with aiohttp.ClientSession() as http:
            while loop.time() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"pacebot serve exited with {self.process.returncode}:\n{self.log.read_text()}")
                try:
                    if (await http.get(f"http://127.0.0.1:{self.port}/healthz")).status == 200:
                        return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"pacebot serve never became healthy:\n{self.log.read_text()}")

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    async def jobs_run(self, *args: str) -> tuple[int, str, str]:
        command = [str(PACEBOT), "--config", str(self.config_path), "jobs", "run", *args]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=self.tmp_path
        )
        out, err = await asyncio.wait_for(process.communicate(), DEADLINE_SECONDS)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        engine = create_engine(self.config.storage.url)
        try:
            async with session_factory(engine)() as session:
                yield session
        finally:
            await engine.dispose()

    async def rows(self, model) -> list:
        async with self.session() as session:
            return list(await session.scalars(select(model).order_by(model.id)))


@pytest.fixture
async def live(tmp_path: Path, database_url: str) -> AsyncIterator[Live]:
    bot = Live(tmp_path, database_url)
    try:
        yield bot
    finally:
        await bot.stop()


def lead_created() -> dt.datetime:
    """10:00 a month ago: every instant the tests replay is past, in working hours, and the lead is cold now."""
    day = SystemClock().now().astimezone(SHANGHAI).date() - dt.timedelta(days=30)
    return dt.datetime.combine(day, dt.time(10, 0), tzinfo=SHANGHAI)


def schedule_items(items: list[InboxItem]) -> list[str]:
    return [item.platform_msg_id for item in items if item.platform == "schedule"]


async def test_jobs_run_while_the_service_runs_runs_each_period_once_as_of_now(live: Live) -> None:
    created = lead_created()
    await live.seed_lead(created)
    await live.serve()

    # An hour after the lead was created nothing is cold, although it is by the service's clock.
    early = created + dt.timedelta(hours=1)
    code, out, err = await live.jobs_run("alert_sweep", "--now", early.isoformat())
    assert code == 0, err
    early_key = early.strftime("%Y-%m-%dT%H:%M")
    assert f"job alert_sweep period {early_key} (as of {early.isoformat()}): queued as inbox item" in out
    assert f"(as of {early.isoformat()}): done" in out and "raised: none" in out and "messages: 0 sent" in out
    assert await live.rows(Alert) == []

    # Four days later it is cold: one alert, raised and notified as of that instant, one message sent.
    later = created + dt.timedelta(days=4)
    code, out, err = await live.jobs_run("alert_sweep", "--now", later.isoformat())
    assert code == 0, err
    assert f"(as of {later.isoformat()}): done" in out and "raised: cold 1" in out and "messages: 1 sent" in out
    [alert] = await live.rows(Alert)
    assert alert.rule == "cold" and alert.raised_at == later and alert.notified_at == later
    [message] = await live.rows(OutboxItem)
    assert message.status == OutboxStatus.SENT and message.target == "rep.li" and message.attempts == 1

    # The admin runs it again: told it already ran, nothing stored or sent again.
    code, out, err = await live.jobs_run("alert_sweep", "--now", later.isoformat())
    assert code == 0, err
    assert "already ran" in out and "raised: cold 1" in out and "--force" in out
    later_key = later.strftime("%Y-%m-%dT%H:%M")
    assert schedule_items(await live.rows(InboxItem)) == [f"alert_sweep:{early_key}", f"alert_sweep:{later_key}"]
    assert sorted(run.period for run in await live.rows(JobRun)) == [early_key, later_key]
    assert len(await live.rows(OutboxItem)) == 1
    assert live.process is not None and live.process.poll() is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the hand-over is the same on PostgreSQL
async def test_a_run_held_by_another_process_is_reported_still_queued_and_the_service_runs_it_as_of_now(
    live: Live,
) -> None:
    created = lead_created()
    await live.seed_lead(created)
    await live.serve()

    # A replica took the period's run (a `jobs run --now` stored it) and holds its lease.
    later = created + dt.timedelta(days=4)
    period = period_of(JOBS_BY_NAME["alert_sweep"], live.config, later)
    event = schedule_event(period, now=later)
    async with live.session() as session, session.begin():
        now = SystemClock().now()
        inbox_id, is_new = await inbox_store.store_incoming(
            session, platform=event.platform, platform_msg_id=event.platform_msg_id,
            conversation_key=conversation_key(event), payload=event.to_json(), now=now,
        )
        assert is_new and await inbox_store.claim(session, inbox_id, now, dt.timedelta(minutes=10))

    code, out, err = await live.jobs_run("alert_sweep", "--now", later.isoformat(), "--timeout", "0.5")
    assert code == 3, (out, err)
    assert f"already queued as inbox item {inbox_id}" in out and "being processed by another process" in out
    assert f"still being processed or waiting for a retry as inbox item {inbox_id}" in err
    assert "not failed" in err and "pacebot jobs list" in err

    # That attempt fails (the replica died): the service takes the run over and evaluates it as of the
    # --now the event carries.
    async with live.session() as session, session.begin():
        assert await inbox_store.record_failure(session, inbox_id, 1, "replica died", give_up=False,
                                                retry_at=SystemClock().now())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    for _ in itertools.count():
        runs = await live.rows(JobRun)
        if runs or loop.time() >= deadline:
            break
        await asyncio.sleep(0.2)
    [run] = runs
    assert run.period == period.key and run.as_of == period.fire and "raised: cold 1" in run.summary
    [alert] = await live.rows(Alert)
    assert alert.raised_at == later

    code, out, err = await live.jobs_run("alert_sweep", "--now", later.isoformat())
    assert code == 0 and "already ran" in out, (out, err)
    assert schedule_items(await live.rows(InboxItem)) == [event.platform_msg_id]
    assert len(await live.rows(JobRun)) == 1

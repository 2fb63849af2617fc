"""The digest and the calibration report through the fake WeCom group robot: markdown within the
robot's 4,096 bytes, the chart as base64 + md5, a robot error retried through the outbox, and
nothing sent twice."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from bot import scheduler
from bot.app import RUNTIME, create_app
from bot.clock import FrozenClock, ShiftableClock
from bot.config import config_from_dict
from domain import charts
from domain.enums import OutboxStatus
from storage.models import InboxItem, OutboxItem
from tests.conftest import ORG_SMALL, START, Console
from tests.fakes import wecom as fakes
from tests.metrics_support import local
from tests.test_metrics import build_org

ROBOT_KEY = "east-robot-0001"


@pytest.fixture
async def fake():
    server = fakes.FakeWeCom(robot_keys={ROBOT_KEY})
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def console(aiohttp_client, tmp_path: Path, fake) -> Console:
    org = ORG_SMALL.read_text(encoding="utf-8").replace(
        'manager = "mgr.wang"', f'manager = "mgr.wang"\ngroup_chat = {{ wecom_webhook = "{ROBOT_KEY}" }}', 1
    )
    (tmp_path / "org.toml").write_text(org, encoding="utf-8")
    config = config_from_dict({
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/t.db", "data_dir": str(tmp_path / "data")},
        "org": {"directory": str(tmp_path / "org.toml")},
        "inbox": {"poll_seconds": 0.2},
        "outbox": {"poll_seconds": 0.2, "backoff_base_seconds": 0.2},
        "scheduler": {"enabled": False},
        "wecom": fakes.wecom_config(fake.base_url),
    })
    app = create_app(config, clock=ShiftableClock(base=FrozenClock(START)))
    return Console(await aiohttp_client(app))


async def until(predicate, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def run_job(console: Console, job: str, at) -> None:
    runtime = console.client.server.app[RUNTIME]
    runtime.clock.set_now(at)
    accepted, _ = await scheduler.accept_job(runtime, job)
    await runtime.inbox.wait_processed(accepted.inbox_id)
    async with runtime.sessions() as session:
        item = await session.get(InboxItem, accepted.inbox_id)
        assert item is not None and item.status == "done", item.error if item else "missing"


def robot(fake: fakes.FakeWeCom) -> list[dict[str, Any]]:
    return fake.robot_messages[ROBOT_KEY]


async def test_the_digest_reaches_the_group_robot_as_markdown_and_a_png(console: Console, fake) -> None:
    await build_org(console)
    await run_job(console, "digest", local("2026-11-26", "09:00"))
    await until(lambda: len(robot(fake)) >= 2)
    markdown, image = robot(fake)
    assert markdown["msgtype"] == "markdown"
    content = markdown["markdown"]["content"]
    assert "华东一组 晨会速览 11月26日" in content and len(content.encode()) <= 4096
    raw = base64.b64decode(image["image"]["base64"])
    assert hashlib.md5(raw).hexdigest() == image["image"]["md5"] and len(raw) < 2 * 1024 * 1024
    with Image.open(io.BytesIO(raw)) as png:
        assert png.format == "PNG" and png.size == (charts.WIDTH, charts.HEIGHT)
    # south has no group address on WeCom: its digest goes to the console's group feed.
    assert [item["kind"] for item in await console.feed(team="south")] == ["markdown", "image"]


async def test_a_robot_error_is_retried_through_the_outbox_and_nothing_is_sent_twice(console: Console, fake) -> None:
    await build_org(console)
    fake.inject("webhook/send", errcode=-1, times=1)  # 系统繁忙 on the first call
    await run_job(console, "digest", local("2026-11-26", "09:00"))
    runtime = console.client.server.app[RUNTIME]
    await until(lambda: len(fake.calls("webhook/send")) >= 1)
    # The failure is recorded (with its retry time) after the platform answered: wait for it, so
    # the clock moves past the back-off rather than before it is set.
    for _ in range(400):
        async with runtime.sessions() as session:
            retrying = await session.scalar(select(OutboxItem.id).where(OutboxItem.attempts == 1,
                                                                       OutboxItem.status == OutboxStatus.PENDING,
                                                                       OutboxItem.last_error.is_not(None)))
        if retrying is not None:
            break
        await asyncio.sleep(0.05)
    runtime.clock.set_now(local("2026-11-26", "09:01"))  # the retry's back-off has passed
    runtime.outbox.wake()
    await until(lambda: len(robot(fake)) >= 2)
    await run_job(console, "digest", local("2026-11-26", "09:15"))
    await asyncio.sleep(1.0)  # room for a wrong second delivery to show up
    assert sorted(m["msgtype"] for m in robot(fake)) == ["image", "markdown"]
    assert len(fake.calls("webhook/send")) == 3  # the failed try, then one each
    async with runtime.sessions() as session:
        rows = list(await session.execute(
            select(OutboxItem.kind, OutboxItem.status, OutboxItem.attempts).where(OutboxItem.platform == "wecom")
        ))
    assert sorted((kind, status) for kind, status, _ in rows) == [("image", OutboxStatus.SENT), ("markdown", OutboxStatus.SENT)]
    assert max(attempts for _, _, attempts in rows) == 2


async def test_the_calibration_report_reaches_the_group_robot_within_limits(console: Console, fake) -> None:
    await build_org(console)
    await run_job(console, "calibration", local("2026-11-27", "15:00"))
    await until(lambda: len(robot(fake)) >= 1)
    (report,) = robot(fake)
    content = report["markdown"]["content"]
    assert "华东一组 动作校准会" in content and "等待其他部门支持的障碍" in content
    assert len(content.encode()) <= 4096

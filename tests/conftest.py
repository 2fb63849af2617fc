"""Shared fixtures: a configured app driven through the console API, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app import RUNTIME, create_app
from bot.clock import FrozenClock, ShiftableClock
from bot.config import Config, config_from_dict
from domain.enums import OutboxStatus
from storage import inbox as inbox_store
from storage import outbox as outbox_store
from storage.models import OutboxItem
from tests import migrated, sqlcache

# Every fresh database gets a copy of one migrated template instead of running Alembic again.
migrated.install()
# Every engine of a dialect shares one compiled-SQL cache, as a service's single engine would.
sqlcache.install()

FIXTURES = Path(__file__).parent / "fixtures"
ORG_SMALL = FIXTURES / "org_small.toml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Wednesday morning in Shanghai.
START = dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)

POSTGRES_URL = os.environ.get("PACEBOT_TEST_POSTGRES_URL", "")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    migrated.cleanup()


def make_config(tmp_path: Path, **sections: dict[str, Any]) -> Config:
    raw: dict[str, Any] = {
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/pacebot.db", "data_dir": str(tmp_path / "data")},
        "org": {"directory": str(ORG_SMALL)},
        "console": {"clock_control": True},
        "inbox": {"poll_seconds": 0.2},
        "outbox": {"poll_seconds": 0.2},
        "scheduler": {"enabled": False},  # no real timers in tests; scheduler tests turn it on
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return config_from_dict(raw)


@pytest.fixture
def clock() -> ShiftableClock:
    return ShiftableClock(base=FrozenClock(START))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


class Console:
    """Drives the bot through the console JSON API, like the page does."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def runtime(self) -> Any:
        return self.client.server.app[RUNTIME]

    async def send(self, member: str, text: str, msg_id: str | None = None, status: int = 200) -> dict[str, Any]:
        body: dict[str, Any] = {"member": member, "text": text}
        if msg_id:
            body["msg_id"] = msg_id
        response = await self.client.post("/console/api/messages", json=body)
        assert response.status == status, await response.text()
        return await response.json()

    async def upload(
        self, member: str, data: bytes, filename: str, kind: str = "photo", content_type: str = "image/jpeg"
    ) -> dict[str, Any]:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("member", member)
        form.add_field("kind", kind)
        form.add_field("file", data, filename=filename, content_type=content_type)
        response = await self.client.post("/console/api/messages", data=form)
        assert response.status == 200, await response.text()
        return await response.json()

    async def click(self, member: str, card: dict[str, Any], label: str, status: int = 200) -> dict[str, Any]:
        buttons = {b["label"]: b["action"] for b in card["buttons"]}
        assert label in buttons, f"no button {label!r} in {list(buttons)}"
        response = await self.client.post(
            "/console/api/actions", json={"member": member, "task_id": card["task_id"], "action": buttons[label]}
        )
        assert response.status == status, await response.text()
        return await response.json()

    async def feed(self, **query: str) -> list[dict[str, Any]]:
        response = await self.client.get("/console/api/feed", params=query)
        assert response.status == 200, await response.text()
        return (await response.json())["items"]

    async def set_clock(self, instant: dt.datetime) -> None:
        response = await self.client.post("/console/api/clock", json={"now": instant.isoformat()})
        assert response.status == 200, await response.text()


def texts_of(reply: dict[str, Any]) -> list[str]:
    """Every human-readable text in a console response's replies."""
    out = []
    for item in reply["replies"]:
        payload = item["payload"]
        if "card" in payload:
            out.append(item["fallback"])
        else:
            out.append(payload.get("text", ""))
    return out


def cards_of(reply: dict[str, Any]) -> list[dict[str, Any]]:
    return [item["payload"]["card"] for item in reply["replies"] if item["kind"] == "card"]


@pytest.fixture
async def console(aiohttp_client: Any, config: Config, clock: ShiftableClock) -> AsyncIterator[Console]:
    client = await aiohttp_client(create_app(config, clock=clock))
    yield Console(client)


async def settle(runtime: Any, timeout: float = 15.0) -> None:
    """Return once the running workers are idle: no inbox item due, no outbox item due or being sent.

    For a test that must show something did *not* happen ("one reply, not two"): instead of
    sleeping "long enough", wait until everything due now has been handled. A retry scheduled for
    later is not due and not waited for. Call it after the inbox items the test sent were
    processed (``runtime.inbox.wait_processed``).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        now = runtime.clock.now()
        async with runtime.sessions() as session:
            inbox_due = await inbox_store.due_items(session, now, limit=1)
            outbox_due = await outbox_store.due_items(session, list(runtime.platforms), now, limit=1)
            sending = await session.scalar(
                select(func.count()).select_from(OutboxItem).where(OutboxItem.status == OutboxStatus.SENDING)
            )
        if not inbox_due and not outbox_due and not sending:
            return
        if loop.time() > deadline:
            raise AssertionError(f"workers not idle after {timeout}s: inbox {inbox_due}, outbox {outbox_due}, sending {sending}")
        runtime.inbox.poller.wake()
        runtime.outbox.wake()
        await asyncio.sleep(0.01)


def unique_id() -> str:
    return uuid.uuid4().hex

"""Helpers for the DingTalk tests: an org with DingTalk accounts, an app wired to the fake, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.app import RUNTIME
from bot.config import Config, config_from_dict
from storage.models import InboxItem
from tests.fakes import dingtalk as fakes

REP = "0110"  # 李明's staffId
MANAGER = "0100"  # 王静
ADMIN = "0900"  # 何敏

ORG = f"""
[[teams]]
key = "east"
name = "华东一组"
manager = "mgr.wang"
group_chat = {{ dingtalk_webhook = "https://oapi.dingtalk.com/robot/send?access_token={fakes.ROBOT_TOKEN}", dingtalk_secret = "{fakes.ROBOT_SECRET}", dingtalk_conversation_id = "{fakes.GROUP_CID}" }}

[[members]]
code = "mgr.wang"
name = "王静"
role = "manager"
team = "east"
dingtalk_staff_id = "{MANAGER}"

[[members]]
code = "rep.li"
name = "李明"
role = "rep"
team = "east"
dingtalk_staff_id = "{REP}"

[[members]]
code = "admin.he"
name = "何敏"
role = "admin"
dingtalk_staff_id = "{ADMIN}"
"""


def app_config(tmp_path: Path, base_url: str, **dingtalk: Any) -> Config:
    org = tmp_path / "org_dingtalk.toml"
    org.write_text(ORG, encoding="utf-8")
    return config_from_dict({
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/t.db", "data_dir": str(tmp_path / "data")},
        "org": {"directory": str(org)},
        "inbox": {"poll_seconds": 0.2},
        "outbox": {"poll_seconds": 0.2},
        "scheduler": {"enabled": False},
        "dingtalk": fakes.dingtalk_config(base_url, **dingtalk),
    })


def runtime(client: Any) -> Any:
    return client.server.app[RUNTIME]


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait (bounded) until something the test expects has happened."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def inbox_ids(client: Any, msg_id: str) -> list[int]:
    async with runtime(client).sessions() as session:
        return list(await session.scalars(
            select(InboxItem.id).where(InboxItem.platform == "dingtalk", InboxItem.platform_msg_id == msg_id)))


async def wait_stored(client: Any, msg_id: str, timeout: float = 20.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (ids := await inbox_ids(client, msg_id)):
        if loop.time() > deadline:
            raise AssertionError(f"{msg_id} not stored in time")
        await asyncio.sleep(0.05)
    assert len(ids) == 1
    return ids[0]


async def processed(client: Any, msg_id: str) -> int:
    inbox_id = await wait_stored(client, msg_id)
    await runtime(client).inbox.wait_processed(inbox_id)
    return inbox_id


async def count(client: Any, model: Any, *where: Any) -> int:
    async with runtime(client).sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

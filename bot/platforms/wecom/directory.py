"""WeCom directory sync (通讯录同步): departments → teams, leaders → managers, users → members.

Reads ``department/list`` and ``user/list`` for every department the app can see, then upserts:

- each department becomes the team ``wecom-<id>`` (its name follows WeCom; group chats, time zone
  and pipeline stay as set in Pacebot);
- each user becomes a member linked by ``wecom_userid`` (a new member's code is the userid, or
  ``wecom-<userid>`` when that code is taken), in the team of their main department; disabled or
  departed users (status 2 / 5) become inactive;
- a department's leader (``department_leader``, else ``is_leader_in_dept``) becomes the team's
  manager and gets the manager role; other users get the rep role.

Roles are only moved between rep and manager, never away from admin or supporter, and never when
an admin locked the role (``Member.role_locked``). Members missing from WeCom are left alone (the
app may simply not see them) and counted in the summary.

All WeCom calls happen before the first database statement, so no transaction is held open
across the network.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import SystemClock
from bot.config import ConfigError
from bot.platforms.wecom.adapter import WeComPlatform
from bot.platforms.wecom.client import WeComClient
from domain.directory import DirectoryDepartment, DirectoryUser
from storage import directory_sync
from storage.directory_sync import SyncReport

log = logging.getLogger(__name__)

_INACTIVE_STATUS = {2, 5}  # disabled, left the company


async def fetch_directory(client: WeComClient) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    departments = [d for d in await client.departments() if isinstance(d.get("id"), int)]
    users: dict[str, dict[str, Any]] = {}
    for department in departments:
        for user in await client.department_users(department["id"]):
            userid = user.get("userid")
            if isinstance(userid, str) and userid:
                # A user in several departments is listed once per department; same record.
                users.setdefault(userid, user)
    return departments, users


async def sync_directory(session: AsyncSession, client: WeComClient, *, now: dt.datetime | None = None) -> SyncReport:
    """Fetch the directory from WeCom and upsert it; the caller commits."""
    departments, users = await fetch_directory(client)
    return await apply_directory(session, departments, users, now=now or SystemClock().now())


async def apply_directory(
    session: AsyncSession,
    departments: list[dict[str, Any]],
    users: dict[str, dict[str, Any]],
    *,
    now: dt.datetime,
) -> SyncReport:
    """WeCom's departments and users as neutral directory values, applied by storage."""
    ids = {department["id"] for department in departments}

    def home(user: dict[str, Any]) -> int | None:
        main = user.get("main_department")
        listed = [d for d in user.get("department") or [] if d in ids]
        return main if main in ids else (listed[0] if listed else None)

    return await directory_sync.apply_directory(
        session,
        "wecom",
        [DirectoryDepartment(d["id"], str(d.get("name") or "")) for d in departments],
        [
            DirectoryUser(userid, str(user.get("name") or ""), home(user), user.get("status") not in _INACTIVE_STATUS)
            for userid, user in users.items()
        ],
        _leaders(departments, users),
        now=now,
    )


def _leaders(departments: list[dict[str, Any]], users: dict[str, dict[str, Any]]) -> dict[int, str]:
    """Department id → the userid of its leader (first listed), where WeCom names one."""
    leaders: dict[int, str] = {}
    for department in departments:
        for userid in department.get("department_leader") or []:
            if userid in users:
                leaders[department["id"]] = userid
                break
    for userid, user in users.items():
        flags = user.get("is_leader_in_dept") or []
        for department_id, flag in zip(user.get("department") or [], flags, strict=False):
            if flag == 1 and department_id not in leaders:
                leaders[department_id] = userid
    return {d: u for d, u in leaders.items() if any(dep["id"] == d for dep in departments)}


async def run_sync(runtime: Any) -> str:
    """``pacebot sync wecom``: sync the directory through the running WeCom platform; one-line summary."""
    platform = runtime.platforms.get("wecom")
    if not isinstance(platform, WeComPlatform):
        raise ConfigError("wecom.enabled: must be true (with corp_id, agent_id and secret) to sync the WeCom directory")
    await platform.client.start()
    async with runtime.sessions() as session:
        report = await sync_directory(session, platform.client, now=runtime.clock.now())
        await session.commit()
    return report.summary()

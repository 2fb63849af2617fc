"""DingTalk directory sync (通讯录同步): departments → teams, managers → managers, users → members.

Walks the department tree from the root (``topapi/v2/department/listsub``), reads each department
(``department/get``, for ``dept_manager_userid_list``) and its users (``topapi/v2/user/list``,
cursor paging), then upserts:

- each department becomes the team ``dingtalk-<dept_id>`` (its name follows DingTalk; group chats,
  time zone and pipeline stay as set in Pacebot);
- each user becomes a member linked by ``dingtalk_staff_id`` (a new member's code is the userid,
  or ``dingtalk-<userid>`` when that code is taken), in the team of the first of their
  departments; users not activated in DingTalk (``active`` false) become inactive;
- a department's first listed manager (else a user flagged ``leader`` in it) becomes the team's
  manager and gets the manager role; other users get the rep role.

Roles are only moved between rep and manager, never away from admin or supporter, and never when
an admin locked the role (``Member.role_locked``). Members missing from DingTalk are left alone
and counted. All DingTalk calls (metered: about 2 per department plus 1 per 100 users) happen
before the first database statement, so no transaction is held open across the network.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import ConfigError
from bot.platforms.dingtalk.adapter import DingTalkPlatform
from bot.platforms.dingtalk.client import DingTalkClient
from domain.directory import DirectoryDepartment, DirectoryUser
from storage import directory_sync
from storage.directory_sync import SyncReport

log = logging.getLogger(__name__)

ROOT_DEPARTMENT = 1
MAX_DEPARTMENTS = 5_000


@dataclass
class Department:
    id: int
    name: str
    managers: list[str]
    users: list[dict[str, Any]]


async def fetch_directory(client: DingTalkClient, *, root: int = ROOT_DEPARTMENT) -> list[Department]:
    departments: list[Department] = []
    queue, seen = [root], {root}
    while queue and len(departments) < MAX_DEPARTMENTS:
        dept_id = queue.pop(0)
        info = await client.department(dept_id)
        users = await client.department_users(dept_id)
        managers = [u for u in info.get("dept_manager_userid_list") or [] if isinstance(u, str)]
        departments.append(Department(dept_id, str(info.get("name") or f"dept {dept_id}"), managers, users))
        for child in await client.sub_departments(dept_id):
            child_id = child.get("dept_id")
            if isinstance(child_id, int) and child_id not in seen:
                seen.add(child_id)
                queue.append(child_id)
    return departments


async def apply_directory(session: AsyncSession, departments: list[Department], *, now: dt.datetime) -> SyncReport:
    """DingTalk's departments and their users as neutral directory values, applied by storage."""
    users: dict[str, dict[str, Any]] = {}
    home: dict[str, int] = {}
    for department in departments:
        for user in department.users:
            userid = user.get("userid")
            if isinstance(userid, str) and userid:
                users.setdefault(userid, user)  # listed once per department: the same record
                home.setdefault(userid, department.id)
    ids = {department.id for department in departments}

    def team_of(userid: str, user: dict[str, Any]) -> int:
        listed = [d for d in user.get("dept_id_list") or [] if d in ids]
        return listed[0] if listed else home[userid]

    return await directory_sync.apply_directory(
        session,
        "dingtalk",
        [DirectoryDepartment(d.id, d.name) for d in departments],
        [
            DirectoryUser(userid, str(user.get("name") or ""), team_of(userid, user), user.get("active", True) is not False)
            for userid, user in users.items()
        ],
        _leaders(departments, users),
        now=now,
    )


def _leaders(departments: list[Department], users: dict[str, dict[str, Any]]) -> dict[int, str]:
    """Department id → the userid of its manager, where DingTalk names one."""
    leaders: dict[int, str] = {}
    for department in departments:
        named = [u for u in department.managers if u in users]
        flagged = [u.get("userid") for u in department.users if u.get("leader") is True and u.get("userid") in users]
        chosen = (named or flagged or [None])[0]
        if isinstance(chosen, str):
            leaders[department.id] = chosen
    return leaders


async def sync_directory(session: AsyncSession, client: DingTalkClient, *, now: dt.datetime) -> SyncReport:
    """Fetch the directory from DingTalk and upsert it; the caller commits."""
    return await apply_directory(session, await fetch_directory(client), now=now)


async def run_sync(runtime: Any) -> str:
    """``pacebot sync dingtalk``: sync the directory through the DingTalk platform; one-line summary."""
    platform = runtime.platforms.get("dingtalk")
    if not isinstance(platform, DingTalkPlatform):
        raise ConfigError("dingtalk.enabled: must be true (with app_key and app_secret) to sync the DingTalk directory")
    await platform.client.start()
    departments = await fetch_directory(platform.client)
    async with runtime.sessions() as session:
        report = await apply_directory(session, departments, now=runtime.clock.now())
        await session.commit()
    return report.summary()

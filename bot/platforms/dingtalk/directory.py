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
from domain.enums import Role
from storage import members as member_store
from storage.models import Member, Team

log = logging.getLogger(__name__)

ROOT_DEPARTMENT = 1
MAX_DEPARTMENTS = 5_000
_SYNCED_ROLES = {Role.REP, Role.MANAGER}


@dataclass
class SyncReport:
    departments: int = 0
    teams_created: int = 0
    users: int = 0
    members_created: int = 0
    members_updated: int = 0
    roles_kept: int = 0
    inactive: int = 0
    not_in_dingtalk: int = 0

    def summary(self) -> str:
        return (
            f"DingTalk directory: {self.departments} departments ({self.teams_created} new teams), "
            f"{self.users} users ({self.members_created} new, {self.members_updated} updated members, "
            f"{self.roles_kept} locked roles kept, {self.inactive} inactive); "
            f"{self.not_in_dingtalk} linked members not visible in DingTalk"
        )


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
    users: dict[str, dict[str, Any]] = {}
    home: dict[str, int] = {}
    for department in departments:
        for user in department.users:
            userid = user.get("userid")
            if isinstance(userid, str) and userid:
                users.setdefault(userid, user)
                home.setdefault(userid, department.id)
    report = SyncReport(departments=len(departments), users=len(users))
    teams = await member_store.teams_by_key(session)
    team_by_department: dict[int, Team] = {}
    for department in departments:
        key = f"dingtalk-{department.id}"
        team = teams.get(key)
        if team is None:
            team = Team(key=key, name="", group_chat={})
            session.add(team)
            teams[key] = team
            report.teams_created += 1
        team.name = department.name[:128]
        team_by_department[department.id] = team
    await session.flush()

    leaders = _leaders(departments, users)
    members = await member_store.members_including_inactive(session)
    by_userid = {m.dingtalk_staff_id: m for m in members if m.dingtalk_staff_id}
    codes = {m.code for m in members}
    for userid, user in users.items():
        member = by_userid.get(userid)
        if member is None:
            code = userid if userid not in codes else f"dingtalk-{userid}"
            member = Member(code=code[:64], name="", role=Role.REP, dingtalk_staff_id=userid, created_at=now)
            session.add(member)
            codes.add(member.code)
            by_userid[userid] = member
            report.members_created += 1
        else:
            report.members_updated += 1
        member.name = str(user.get("name") or userid)[:64]
        listed = [d for d in user.get("dept_id_list") or [] if d in team_by_department]
        department_id = listed[0] if listed else home[userid]
        member.team_id = team_by_department[department_id].id
        member.active = user.get("active", True) is not False
        report.inactive += not member.active
        wanted = Role.MANAGER if userid in leaders.values() else Role.REP
        if member.role_locked:
            report.roles_kept += member.role != wanted
        elif member.role is None or member.role in _SYNCED_ROLES:
            member.role = wanted
    await session.flush()

    for department_id, userid in leaders.items():
        team_by_department[department_id].manager_id = by_userid[userid].id
    report.not_in_dingtalk = sum(1 for userid in by_userid if userid not in users)
    await session.flush()
    log.info("%s", report.summary())
    return report


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

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
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import SystemClock
from bot.config import ConfigError
from bot.platforms.wecom.adapter import WeComPlatform
from bot.platforms.wecom.client import WeComClient
from domain.enums import Role
from storage import members as member_store
from storage.models import Member, Team

log = logging.getLogger(__name__)

_INACTIVE_STATUS = {2, 5}  # disabled, left the company
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
    not_in_wecom: int = 0

    def summary(self) -> str:
        return (
            f"WeCom directory: {self.departments} departments ({self.teams_created} new teams), "
            f"{self.users} users ({self.members_created} new, {self.members_updated} updated members, "
            f"{self.roles_kept} locked roles kept, {self.inactive} inactive); "
            f"{self.not_in_wecom} linked members not visible in WeCom"
        )


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
    report = SyncReport(departments=len(departments), users=len(users))
    teams = await member_store.teams_by_key(session)
    team_by_department: dict[int, Team] = {}
    for department in departments:
        key = f"wecom-{department['id']}"
        team = teams.get(key)
        if team is None:
            team = Team(key=key, name="", group_chat={})
            session.add(team)
            teams[key] = team
            report.teams_created += 1
        team.name = str(department.get("name") or key)[:128]
        team_by_department[department["id"]] = team
    await session.flush()

    leaders = _leaders(departments, users)
    members = await member_store.members_including_inactive(session)
    by_userid = {m.wecom_userid: m for m in members if m.wecom_userid}
    codes = {m.code for m in members}
    for userid, user in users.items():
        member = by_userid.get(userid)
        if member is None:
            code = userid if userid not in codes else f"wecom-{userid}"
            member = Member(code=code[:64], name="", role=Role.REP, wecom_userid=userid, created_at=now)
            session.add(member)
            codes.add(member.code)
            by_userid[userid] = member
            report.members_created += 1
        else:
            report.members_updated += 1
        member.name = str(user.get("name") or userid)[:64]
        main = user.get("main_department")
        listed = [d for d in user.get("department") or [] if d in team_by_department]
        department_id = main if main in team_by_department else (listed[0] if listed else None)
        if department_id is not None:
            member.team_id = team_by_department[department_id].id
        member.active = user.get("status") not in _INACTIVE_STATUS
        report.inactive += not member.active
        wanted = Role.MANAGER if userid in leaders.values() else Role.REP
        if member.role_locked:
            report.roles_kept += member.role != wanted
        elif member.role is None or member.role in _SYNCED_ROLES:
            member.role = wanted
    await session.flush()

    for department_id, userid in leaders.items():
        team_by_department[department_id].manager_id = by_userid[userid].id
    report.not_in_wecom = sum(1 for userid in by_userid if userid not in users)
    await session.flush()
    log.info("%s", report.summary())
    return report


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

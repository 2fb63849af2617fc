"""Applying a chat platform's directory: departments become teams, users members, leaders managers.

The platform adapters fetch and translate their own payloads into ``domain.directory`` values; the
upsert is the same for every platform. Roles an admin locked are kept; only rep/manager roles are
set from the directory.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from domain.directory import DirectoryDepartment, DirectoryUser
from domain.enums import Role
from storage import members as member_store
from storage import ownership
from storage.models import Member, Team

log = logging.getLogger(__name__)

Platform = Literal["wecom", "dingtalk"]
_LABELS = {"wecom": "WeCom", "dingtalk": "DingTalk"}
_SYNCED_ROLES = {Role.REP, Role.MANAGER}


@dataclass
class SyncReport:
    platform: Platform
    departments: int = 0
    teams_created: int = 0
    users: int = 0
    members_created: int = 0
    members_updated: int = 0
    roles_kept: int = 0
    inactive: int = 0
    not_in_directory: int = 0  # linked members the platform no longer shows

    def summary(self) -> str:
        label = _LABELS[self.platform]
        return (
            f"{label} directory: {self.departments} departments ({self.teams_created} new teams), "
            f"{self.users} users ({self.members_created} new, {self.members_updated} updated members, "
            f"{self.roles_kept} locked roles kept, {self.inactive} inactive); "
            f"{self.not_in_directory} linked members not visible in {label}"
        )


def _platform_id(member: Member, platform: Platform) -> str | None:
    return member.wecom_userid if platform == "wecom" else member.dingtalk_staff_id


async def apply_directory(
    session: AsyncSession,
    platform: Platform,
    departments: Sequence[DirectoryDepartment],
    users: Sequence[DirectoryUser],
    leaders: Mapping[int, str],
    *,
    now: dt.datetime,
) -> SyncReport:
    """Upsert teams and members from the directory (``leaders``: department id → userid); the
    caller commits."""
    report = SyncReport(platform, departments=len(departments), users=len(users))
    teams = await member_store.teams_by_key(session)
    team_by_department: dict[int, Team] = {}
    for department in departments:
        key = f"{platform}-{department.id}"
        team = teams.get(key)
        if team is None:
            team = Team(key=key, name="", group_chat={})
            session.add(team)
            teams[key] = team
            report.teams_created += 1
        team.name = (department.name or key)[:128]
        team_by_department[department.id] = team
    await session.flush()

    members = await member_store.members_including_inactive(session)
    by_userid = {pid: m for m in members if (pid := _platform_id(m, platform))}
    codes = {m.code for m in members}
    managers = set(leaders.values())
    for user in users:
        member = by_userid.get(user.userid)
        if member is None:
            code = user.userid if user.userid not in codes else f"{platform}-{user.userid}"
            member = Member(code=code[:64], name="", role=Role.REP, created_at=now)
            if platform == "wecom":
                member.wecom_userid = user.userid
            else:
                member.dingtalk_staff_id = user.userid
            session.add(member)
            codes.add(member.code)
            by_userid[user.userid] = member
            report.members_created += 1
        else:
            report.members_updated += 1
        member.name = (user.name or user.userid)[:64]
        if user.department_id in team_by_department:
            await ownership.record_team_change(session, member, team_by_department[user.department_id].id, now=now)
            member.team_id = team_by_department[user.department_id].id
        member.active = user.active
        report.inactive += not member.active
        wanted = Role.MANAGER if user.userid in managers else Role.REP
        if member.role_locked:
            report.roles_kept += member.role != wanted
        elif member.role is None or member.role in _SYNCED_ROLES:
            member.role = wanted
    await session.flush()

    for department_id, userid in leaders.items():
        if department_id in team_by_department and userid in by_userid:
            team_by_department[department_id].manager_id = by_userid[userid].id
    listed = {user.userid for user in users}
    report.not_in_directory = sum(1 for userid in by_userid if userid not in listed)
    await session.flush()
    log.info("%s", report.summary())
    return report

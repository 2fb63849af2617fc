"""The org directory: teams, managers, members and roles, from a TOML file.

    [[teams]]
    key = "east"            # stable id used by members below
    name = "华东一组"
    manager = "wang.jing"    # a member code
    group_chat = { wecom_webhook = "...", dingtalk_webhook = "..." }

    [[members]]
    code = "li.ming"        # stable id; the console logs in with it
    name = "李明"
    role = "rep"            # rep | manager | supporter | admin
    team = "east"
    wecom_userid = "LiMing"
    dingtalk_staff_id = "0123"

Loading is an upsert keyed on team key and member code: re-loading updates, never duplicates.
A member whose role an admin set by hand (``role_locked``) keeps that role.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, Role, Team
from storage.pipelines import ensure_templates


class DirectoryError(ValueError):
    """The directory file is invalid; the message says where and why."""


_MEMBER_KEYS = {"code", "name", "role", "team", "wecom_userid", "dingtalk_staff_id", "active"}
_TEAM_KEYS = {"key", "name", "manager", "group_chat", "timezone"}


def parse_directory(raw: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    teams = raw.get("teams", [])
    members = raw.get("members", [])
    if not isinstance(teams, list) or not isinstance(members, list):
        raise DirectoryError("teams and members must be arrays of tables ([[teams]], [[members]])")
    team_keys: set[str] = set()
    for i, team in enumerate(teams, 1):
        where = f"teams #{i}"
        _check_keys(team, _TEAM_KEYS, where)
        for required in ("key", "name"):
            if not isinstance(team.get(required), str) or not team[required].strip():
                raise DirectoryError(f"{where}: {required} is required")
        if team["key"] in team_keys:
            raise DirectoryError(f"{where}: duplicate team key {team['key']!r}")
        team_keys.add(team["key"])
    codes: set[str] = set()
    for i, member in enumerate(members, 1):
        where = f"members #{i}"
        _check_keys(member, _MEMBER_KEYS, where)
        for required in ("code", "name"):
            if not isinstance(member.get(required), str) or not member[required].strip():
                raise DirectoryError(f"{where}: {required} is required")
        where = f"members #{i} ({member['code']})"
        if member["code"] in codes:
            raise DirectoryError(f"{where}: duplicate code")
        codes.add(member["code"])
        role = member.get("role", "rep")
        if role not in {r.value for r in Role}:
            raise DirectoryError(f"{where}: unknown role {role!r} (rep, manager, supporter, admin)")
        if member.get("team") and member["team"] not in team_keys:
            raise DirectoryError(f"{where}: unknown team {member['team']!r}")
    for team in teams:
        if team.get("manager") and team["manager"] not in codes:
            raise DirectoryError(f"team {team['key']}: manager {team['manager']!r} is not a member code")
    return teams, members


def _check_keys(entry: Any, allowed: set[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise DirectoryError(f"{where}: must be a table")
    unknown = set(entry) - allowed
    if unknown:
        raise DirectoryError(f"{where}: unknown keys {sorted(unknown)}")


async def load_directory_file(session: AsyncSession, path: str | Path, *, now: dt.datetime) -> None:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DirectoryError(f"org directory file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DirectoryError(f"{path}: not valid TOML: {exc}") from exc
    await load_directory(session, raw, now=now)


async def load_directory(session: AsyncSession, raw: dict[str, Any], *, now: dt.datetime) -> None:
    teams, members = parse_directory(raw)
    await ensure_templates(session)
    team_rows: dict[str, Team] = {t.key: t for t in await session.scalars(select(Team))}
    for team in teams:
        row = team_rows.get(team["key"])
        if row is None:
            row = Team(key=team["key"], name=team["name"], group_chat={})
            session.add(row)
            team_rows[team["key"]] = row
        row.name = team["name"]
        row.group_chat = dict(team.get("group_chat", {}))
        row.timezone = team.get("timezone", "Asia/Shanghai")
    await session.flush()
    member_rows: dict[str, Member] = {m.code: m for m in await session.scalars(select(Member))}
    for member in members:
        row = member_rows.get(member["code"])
        if row is None:
            row = Member(code=member["code"], name=member["name"], created_at=now)
            session.add(row)
            member_rows[member["code"]] = row
        row.name = member["name"]
        if not row.role_locked or row.role is None:
            row.role = Role(member.get("role", "rep"))
        row.team_id = team_rows[member["team"]].id if member.get("team") else None
        row.wecom_userid = member.get("wecom_userid") or None
        row.dingtalk_staff_id = member.get("dingtalk_staff_id") or None
        row.active = bool(member.get("active", True))
    await session.flush()
    for team in teams:
        if team.get("manager"):
            team_rows[team["key"]].manager_id = member_rows[team["manager"]].id
    await session.flush()

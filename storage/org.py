"""The org directory: teams, managers, members and roles, from a TOML file.

    [[teams]]
    key = "east"            # stable id used by members below
    name = "华东一组"
    manager = "wang.jing"    # a member code
    group_chat = { wecom_webhook = "...", dingtalk_webhook = "..." }

    pipeline = "hospital"   # optional: new leads of this team start in this pipeline

    [[pipelines]]           # optional: admin-defined pipelines (the templates b2b, hospital, store ship)
    key = "project"
    name = "工程项目销售"
    obstacle_options = ["决策链不清晰", "技术适配存疑", "预算审批未启动", "合同条款分歧"]
    crossing = ["立项", "投标"]   # optional: the two stages its 阶段穿越率 measures
    stages = [
      { name = "立项", limit_days = 5 },
      { name = "投标", limit_days = 10, working = true, deliverables = ["投标文件"],
        overdue = [{ push = "投标应答话术包" }, { notify = "manager" }] },
    ]

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
import logging
import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Role
from storage import ownership
from storage.models import Member, Team
from storage.pipelines import ensure_templates, pipeline_by_key, upsert_pipeline

log = logging.getLogger(__name__)


class DirectoryError(ValueError):
    """The directory file is invalid; the message says where and why."""


_MEMBER_KEYS = {"code", "name", "role", "team", "wecom_userid", "dingtalk_staff_id", "active"}
_TEAM_KEYS = {"key", "name", "manager", "group_chat", "timezone", "pipeline"}
_PIPELINE_KEYS = {"key", "name", "obstacle_options", "stages", "crossing"}
_STAGE_KEYS = {"name", "limit_days", "working", "deliverables", "overdue"}
_BUILT_IN_PIPELINES = {"b2b", "hospital", "store"}


def parse_pipelines(raw: Any) -> list[dict[str, Any]]:
    """Validate ``[[pipelines]]``; every error names the pipeline, the stage and the reason."""
    if not isinstance(raw, list):
        raise DirectoryError("pipelines must be an array of tables ([[pipelines]])")
    keys: set[str] = set()
    for i, pipeline in enumerate(raw, 1):
        where = f"pipelines #{i}"
        _check_keys(pipeline, _PIPELINE_KEYS, where)
        _require_texts(pipeline, ("key", "name"), where)
        where = f"pipelines #{i} ({pipeline['key']})"
        if pipeline["key"] in keys:
            raise DirectoryError(f"{where}: duplicate key")
        keys.add(pipeline["key"])
        options = pipeline.get("obstacle_options", [])
        if not isinstance(options, list) or not all(isinstance(o, str) and o.strip() for o in options):
            raise DirectoryError(f"{where}: obstacle_options must be a list of texts")
        stages = pipeline.get("stages")
        if not isinstance(stages, list) or not stages:
            raise DirectoryError(f"{where}: stages must list at least one stage")
        names: set[str] = set()
        for j, stage in enumerate(stages, 1):
            at = f"{where} stage #{j}"
            _check_keys(stage, _STAGE_KEYS, at)
            if not isinstance(stage.get("name"), str) or not stage["name"].strip():
                raise DirectoryError(f"{at}: name is required")
            if stage["name"] in names:
                raise DirectoryError(f"{at}: duplicate stage name {stage['name']!r}")
            names.add(stage["name"])
            limit = stage.get("limit_days")
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise DirectoryError(f"{at} ({stage['name']}): limit_days must be a whole number of days ≥ 1")
            if not isinstance(stage.get("working", False), bool):
                raise DirectoryError(f"{at} ({stage['name']}): working must be true or false")
            deliverables = stage.get("deliverables", [])
            if not isinstance(deliverables, list) or not all(isinstance(d, str) and d for d in deliverables):
                raise DirectoryError(f"{at} ({stage['name']}): deliverables must be a list of texts")
            for action in stage.get("overdue", []):
                if not isinstance(action, dict) or not (
                    (set(action) == {"push"} and isinstance(action["push"], str) and action["push"])
                    or action == {"notify": "manager"}
                ):
                    raise DirectoryError(
                        f"{at} ({stage['name']}): each overdue action is {{ push = \"pack title\" }} "
                        f"or {{ notify = \"manager\" }}, got {action!r}"
                    )
        crossing = pipeline.get("crossing")
        if crossing is not None and (
            not isinstance(crossing, list) or len(crossing) != 2 or not all(c in names for c in crossing)
            or [s["name"] for s in stages].index(crossing[0]) >= [s["name"] for s in stages].index(crossing[1])
        ):
            raise DirectoryError(f"{where}: crossing must name two of its stages, the earlier one first")
    return raw


def parse_directory(raw: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    unknown = set(raw) - {"teams", "members", "pipelines"}
    if unknown:
        raise DirectoryError(f"unknown sections {sorted(unknown)} (teams, members, pipelines)")
    pipeline_keys = {p["key"] for p in parse_pipelines(raw.get("pipelines", []))} | _BUILT_IN_PIPELINES
    teams = raw.get("teams", [])
    members = raw.get("members", [])
    if not isinstance(teams, list) or not isinstance(members, list):
        raise DirectoryError("teams and members must be arrays of tables ([[teams]], [[members]])")
    team_keys: set[str] = set()
    for i, team in enumerate(teams, 1):
        where = f"teams #{i}"
        _check_keys(team, _TEAM_KEYS, where)
        _require_texts(team, ("key", "name"), where)
        if team["key"] in team_keys:
            raise DirectoryError(f"{where}: duplicate team key {team['key']!r}")
        if team.get("pipeline") is not None and team["pipeline"] not in pipeline_keys:
            raise DirectoryError(
                f"{where}: unknown pipeline {team['pipeline']!r} (known: {', '.join(sorted(pipeline_keys))})"
            )
        team_keys.add(team["key"])
    codes: set[str] = set()
    for i, member in enumerate(members, 1):
        where = f"members #{i}"
        _check_keys(member, _MEMBER_KEYS, where)
        _require_texts(member, ("code", "name"), where)
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


def _require_texts(entry: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise DirectoryError(f"{where}: {key} is required")


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
    for template in raw.get("pipelines", []):
        _, kept = await upsert_pipeline(session, template)
        if kept:
            log.warning("pipeline %s: stages %s are no longer listed; kept for the customers in them",
                        template["key"], kept)
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
        pipeline = await pipeline_by_key(session, team["pipeline"]) if team.get("pipeline") else None
        row.pipeline_id = pipeline.id if pipeline else None
    await session.flush()
    member_rows: dict[str, Member] = {m.code: m for m in await session.scalars(select(Member))}
    new_members: list[dict[str, Any]] = []
    for member in members:
        member_row = member_rows.get(member["code"])
        if member_row is None:
            # New members are inserted together below (one statement, not one per member).
            new_members.append({
                "code": member["code"],
                "name": member["name"],
                "created_at": now,
                "role": Role(member.get("role", "rep")),
                "team_id": team_rows[member["team"]].id if member.get("team") else None,
                "wecom_userid": member.get("wecom_userid") or None,
                "dingtalk_staff_id": member.get("dingtalk_staff_id") or None,
                "active": bool(member.get("active", True)),
            })
            continue
        member_row.name = member["name"]
        if not member_row.role_locked or member_row.role is None:
            member_row.role = Role(member.get("role", "rep"))
        team_id = team_rows[member["team"]].id if member.get("team") else None
        await ownership.record_team_change(session, member_row, team_id, now=now)
        member_row.team_id = team_id
        member_row.wecom_userid = member.get("wecom_userid") or None
        member_row.dingtalk_staff_id = member.get("dingtalk_staff_id") or None
        member_row.active = bool(member.get("active", True))
    await session.flush()
    if new_members:
        await session.execute(insert(Member).execution_options(render_nulls=True), new_members)
        member_rows = {m.code: m for m in await session.scalars(select(Member))}
    for team in teams:
        if team.get("manager"):
            team_rows[team["key"]].manager_id = member_rows[team["manager"]].id
    await session.flush()

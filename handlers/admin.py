"""The admin surface (SPEC §9): /成员 (list, roles, teams, 转交) and /规则 设置.

Admin-only; every change writes an audit row with who, what, before, after and when, and
``/导出`` includes them. Thresholds set in chat are stored and laid over the configured ones for
every event (``effective_config``), so rules, sweeps and /规则 all see the same values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.context import Ctx
from bot.errors import UserError
from bot.replies import Markdown, Reply, Text, ToMember
from bot.router import Router
from domain.enums import Role
from domain.rules.rule_settings import (
    SETTINGS,
    RuleSettingError,
    current_value,
    find_setting,
    parse_value,
    with_overrides,
)
from handlers import texts_admin as texts
from storage import admin as admin_store
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage.models import Member

router = Router("admin")

_ROLE_ACTIONS = ("角色", "设角色", "role")
_TEAM_ACTIONS = ("调组", "团队", "team")
_TRANSFER_ACTIONS = ("转交", "transfer")


async def effective_config(session: AsyncSession, config: Config) -> Config:
    """The configuration with the thresholds admins set in chat laid over the file's."""
    stored = await admin_store.rule_overrides(session)
    values = stored.get("values") or {}
    if not values:
        return config
    return dataclasses.replace(config, rules=with_overrides(config.rules, values))


def _role_name(role: Role) -> str:
    return texts.ROLE_NAMES[role.value]


async def _member(ctx: Ctx, code: str) -> Member:
    member = await member_store.member_by_code(ctx.session, code)
    if member is None:
        raise UserError(texts.MEMBER_UNKNOWN.format(code=code[:32]))
    return member


@router.command("/成员", "/members", roles=[Role.ADMIN], summary="成员:列表、设角色、调组、转交客户")
async def members_command(ctx: Ctx) -> list[Reply]:
    args = ctx.event.text.strip().split()[1:]
    if not args:
        return [await _list(ctx)]
    action, rest = args[0], args[1:]
    if action in _ROLE_ACTIONS and len(rest) == 2:
        return await _set_role(ctx, rest[0], rest[1])
    if action in _TEAM_ACTIONS and len(rest) == 2:
        return await _move_team(ctx, rest[0], rest[1])
    if action in _TRANSFER_ACTIONS and len(rest) == 2:
        return await _transfer(ctx, rest[0], rest[1])
    return [Text(texts.MEMBERS_USAGE)]


async def _list(ctx: Ctx) -> Reply:
    members = await member_store.all_members(ctx.session)
    teams = {team.id: team for team in await member_store.all_teams(ctx.session)}
    by_team: dict[int | None, list[Member]] = defaultdict(list)
    for member in members:
        by_team[member.team_id].append(member)
    lines = [f"### {texts.MEMBERS_TITLE.format(count=len(members))}"]
    for team_id in [*teams, None]:
        people = by_team.get(team_id)
        if not people:
            continue
        lines.append(texts.MEMBERS_TEAM.format(team=teams[team_id].name) if team_id is not None else texts.MEMBERS_NO_TEAM)
        for member in people:
            count = await admin_store.customer_count(ctx.session, member.id) if member.role in (Role.REP, Role.MANAGER) else 0
            lines.append(texts.MEMBERS_LINE.format(
                code=member.code, name=member.name, role=_role_name(member.role),
                customers=texts.MEMBERS_CUSTOMERS.format(count=count) if count else "",
            ))
    lines += ["", texts.MEMBERS_USAGE]
    return Markdown(texts.MEMBERS_TITLE.format(count=len(members)), "\n".join(lines))


async def _set_role(ctx: Ctx, code: str, role_text: str) -> list[Reply]:
    member = await _member(ctx, code)
    role_value = texts.ROLE_WORDS.get(role_text)
    if role_value is None:
        raise UserError(texts.ROLE_UNKNOWN.format(role=role_text[:16]))
    role = Role(role_value)
    if member.role is role:
        return [Text(texts.ROLE_SAME.format(name=member.name, code=member.code, role=_role_name(role)))]
    if member.role is Role.ADMIN and len(await member_store.admins(ctx.session)) <= 1:
        raise UserError(texts.ROLE_LAST_ADMIN.format(name=member.name))
    before = member.role
    await admin_store.set_role(ctx.session, member, role, actor_id=ctx.acting.id, now=ctx.now())
    return [Text(texts.ROLE_SET.format(name=member.name, code=member.code, before=_role_name(before), after=_role_name(role)))]


async def _move_team(ctx: Ctx, code: str, team_text: str) -> list[Reply]:
    member = await _member(ctx, code)
    team = await admin_store.team_by_key_or_name(ctx.session, team_text)
    if team is None:
        raise UserError(texts.TEAM_UNKNOWN.format(team=team_text[:32]))
    if member.team_id == team.id:
        return [Text(texts.TEAM_SAME.format(name=member.name, code=member.code, team=team.name))]
    old = await member_store.get_team(ctx.session, member.team_id) if member.team_id is not None else None
    await admin_store.move_team(ctx.session, member, team, actor_id=ctx.acting.id, now=ctx.now())
    return [Text(texts.TEAM_MOVED.format(name=member.name, code=member.code, before=old.name if old else "未分组",
                                         after=team.name))]


async def _transfer(ctx: Ctx, source_code: str, target_code: str) -> list[Reply]:
    source, target = await _member(ctx, source_code), await _member(ctx, target_code)
    if source.id == target.id:
        raise UserError(texts.TRANSFER_SAME)
    if source.role not in (Role.REP, Role.MANAGER):
        raise UserError(texts.TRANSFER_NOT_OWNER_ROLE.format(name=source.name, role=_role_name(source.role)))
    if target.role is not source.role:
        raise UserError(texts.TRANSFER_ROLE.format(
            source=source.name, source_role=_role_name(source.role), target=target.name,
            target_role=_role_name(target.role),
        ))
    if not target.active:
        raise UserError(texts.TRANSFER_INACTIVE.format(name=target.name))
    clashes = await admin_store.clashing_names(ctx.session, source.id, target.id)
    if clashes:
        raise UserError(texts.TRANSFER_CLASH.format(target=target.name, names="、".join(clashes[:10])))
    count = await admin_store.transfer_customers(ctx.session, source, target, actor_id=ctx.acting.id, now=ctx.now())
    if not count:
        return [Text(texts.TRANSFER_NOTHING.format(name=source.name, code=source.code))]
    replies: list[Reply] = [
        Text(texts.TRANSFER_DONE.format(source=source.name, target=target.name, count=count)),
        Text(texts.TRANSFER_TO_SOURCE.format(target=target.name, count=count), to=ToMember(source.id)),
        Text(texts.TRANSFER_TO_TARGET.format(source=source.name, count=count), to=ToMember(target.id)),
    ]
    told = {ctx.acting.id, source.id, target.id}
    for team_id in dict.fromkeys(t for t in (source.team_id, target.team_id) if t is not None):
        team = await member_store.get_team(ctx.session, team_id)
        if team is not None and team.manager_id is not None and team.manager_id not in told:
            told.add(team.manager_id)
            replies.append(Text(texts.TRANSFER_TO_MANAGER.format(source=source.name, target=target.name, count=count),
                                to=ToMember(team.manager_id)))
    return replies


# -- /规则 设置 (called by handlers.alerts' /规则 command) ----------------------------------------------


SET_WORDS = ("设置", "设定", "修改", "set")


def _shown(value: object) -> str:
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{round(value * 100)}%"
    return str(value)


async def set_rule(ctx: Ctx, tokens: list[str]) -> list[Reply]:
    """``/规则 设置 冷却小时 48``: validate, store, audit; a bad value changes nothing."""
    if len(tokens) < 2:
        return [Text(await _settable(ctx))]
    name, raw = tokens[0], " ".join(tokens[1:])
    try:
        setting = find_setting(name)
        value = parse_value(setting, raw)
    except RuleSettingError as exc:
        raise UserError(_rule_error(exc), detail=f"rule setting refused: {exc.code} {name}={raw[:40]}") from exc
    if setting.field == "quote_stage" and value not in set((await pipeline_store.stage_names(ctx.session)).values()):
        raise UserError(texts.RULE_ERRORS["unknown_stage"].format(value=value))
    before = current_value(ctx.config.rules, setting)
    if before == value:
        return [Text(texts.RULE_SET_SAME.format(label=setting.label, value=_shown(value), unit=setting.unit))]
    await admin_store.set_rule(ctx.session, setting.field, value, before, actor=ctx.acting, now=ctx.now())
    return [Text(texts.RULE_SET_DONE.format(label=setting.label, before=_shown(before), after=_shown(value),
                                           unit=setting.unit))]


def _rule_error(exc: RuleSettingError) -> str:
    setting = exc.setting
    if exc.code == "out_of_range" and setting is not None and setting.kind == "ratio":
        return texts.RATIO_RANGE.format(label=setting.label, value=exc.value)
    return texts.RULE_ERRORS[exc.code].format(
        label=setting.label if setting else "", value=exc.value[:32],
        low=int(setting.low) if setting else 0, high=int(setting.high) if setting else 0,
        unit=setting.unit if setting else "",
    )


async def _settable(ctx: Ctx) -> str:
    changed = (await admin_store.rule_overrides(ctx.session)).get("changed", {})
    lines = []
    for setting in SETTINGS:
        note = changed.get(setting.field)
        when = ""
        if note:
            at = dt.datetime.fromisoformat(note["at"]).astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M")
            when = texts.RULE_CHANGED_BY.format(name=note.get("name") or note.get("by"), at=at)
        lines.append(texts.RULE_SET_LINE.format(
            label=setting.label, value=_shown(current_value(ctx.config.rules, setting)),
            unit=setting.unit if setting.kind == "int" else "", changed=when,
        ))
    return texts.RULE_SET_USAGE.format(lines="\n".join(lines))

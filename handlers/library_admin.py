"""Admins keep the libraries (SPEC §9): /话术, /应答库 and /竞品库 — list, add, edit, retire, restore.

``/话术`` is also how reps ask for a pack (handlers/playbooks); its admin words (列表, 新增, 修改,
停用, 启用) are handled here first. Edits and retirements survive upgrades: the shipped seed
only inserts what is missing, and a retired entry is kept, only no longer offered.
"""

from __future__ import annotations

from bot.context import Ctx
from bot.errors import NotPermitted, UserError
from bot.replies import Markdown, Reply, Text
from bot.router import Router
from domain.enums import Role
from handlers import texts_admin as texts
from storage import library_admin as store

router = Router("library_admin")

ACTIONS = {
    "列表": "list", "全部": "list", "新增": "add", "添加": "add", "修改": "edit", "编辑": "edit",
    "停用": "retire", "下架": "retire", "删除": "retire", "启用": "restore", "恢复": "restore", "别名": "aliases",
}
MAX_TEXT = 4000
MAX_KEY = 64
MAX_LISTED = 60


def _usage(kind: str) -> str:
    usage = texts.LIBRARY_USAGE.format(command=texts.LIBRARY_COMMANDS[kind], key_name=texts.LIBRARY_KEY_NAMES[kind])
    return usage + (texts.LIBRARY_ALIAS_USAGE if kind == "competitor" else "")


async def library_command(ctx: Ctx, kind: str, text: str) -> list[Reply] | None:
    """An admin action on library ``kind``; None when ``text`` is not one (e.g. a rep's search)."""
    parts = text.strip().split(maxsplit=2)
    action = ACTIONS.get(parts[0]) if parts else None
    if action is None:
        return None
    library = texts.LIBRARY_NAMES[kind]
    if ctx.acting.role is not Role.ADMIN:
        raise NotPermitted(texts.LIBRARY_NOT_ADMIN.format(library=library))
    if action == "list":
        return [await _list(ctx, kind)]
    if len(parts) < 2:
        return [Text(_usage(kind))]
    key = parts[1].strip("《》")[:MAX_KEY]
    body = parts[2].strip() if len(parts) > 2 else ""
    if len(body) > MAX_TEXT:
        raise UserError(texts.LIBRARY_TOO_LONG.format(limit=MAX_TEXT))
    row = await store.entry(ctx.session, kind, key)
    _model, _key, text_column = store.LIBRARIES[kind]
    if action == "add":
        if row is not None:
            raise UserError(texts.LIBRARY_EXISTS.format(library=library, key=key))
        if not body:
            raise UserError(texts.LIBRARY_NEEDS_TEXT.format(command=texts.LIBRARY_COMMANDS[kind], action=parts[0], key=key))
        await store.add(ctx.session, kind, key, body, actor_id=ctx.acting.id, now=ctx.now())
        return [Text(texts.LIBRARY_ADDED.format(library=library, key=key))]
    if row is None:
        raise UserError(texts.LIBRARY_MISSING.format(library=library, key=key))
    if action == "edit":
        if not body:
            raise UserError(texts.LIBRARY_NEEDS_TEXT.format(command=texts.LIBRARY_COMMANDS[kind], action=parts[0], key=key))
        await store.change(ctx.session, kind, row, actor_id=ctx.acting.id, now=ctx.now(), action="edit",
                           **{text_column: body})
        return [Text(texts.LIBRARY_EDITED.format(library=library, key=key))]
    if action == "retire":
        await store.change(ctx.session, kind, row, actor_id=ctx.acting.id, now=ctx.now(), action="retire",
                           retired_at=ctx.now())
        return [Text(texts.LIBRARY_RETIRED.format(library=library, key=key))]
    if action == "restore":
        await store.change(ctx.session, kind, row, actor_id=ctx.acting.id, now=ctx.now(), action="restore",
                           retired_at=None)
        return [Text(texts.LIBRARY_RESTORED.format(library=library, key=key))]
    if action == "aliases" and kind == "competitor":
        aliases = [a[:32] for a in body.replace(",", "、").replace(",", "、").split("、") if a.strip()]
        await store.change(ctx.session, kind, row, actor_id=ctx.acting.id, now=ctx.now(), action="aliases",
                           aliases=aliases)
        return [Text(texts.LIBRARY_ALIASES_SET.format(key=key, aliases="、".join(aliases) or "-"))]
    return [Text(_usage(kind))]


async def _list(ctx: Ctx, kind: str) -> Reply:
    rows = await store.entries(ctx.session, kind)
    _model, key, text_column = store.LIBRARIES[kind]
    retired = sum(1 for r in rows if r.retired_at is not None)
    title = texts.LIBRARY_TITLE.format(library=texts.LIBRARY_NAMES[kind], count=len(rows), retired=retired)
    lines = [f"### {title}"]
    for row in rows[:MAX_LISTED]:
        snippet = " ".join(str(getattr(row, text_column) or "").split())[:30]
        lines.append(texts.LIBRARY_LINE.format(
            key=getattr(row, key), retired=texts.LIBRARY_RETIRED_MARK if row.retired_at is not None else "", text=snippet,
        ))
    lines += ["", _usage(kind)]
    return Markdown(title, "\n".join(lines))


@router.command("/应答库", "/responses", roles=[Role.ADMIN], summary="常见障碍应答库:查看、新增、修改、停用")
async def responses_command(ctx: Ctx) -> list[Reply]:
    args = ctx.event.text.strip().split(maxsplit=1)
    rest = args[1] if len(args) > 1 else "列表"
    return await library_command(ctx, "response", rest) or [Text(_usage("response"))]


@router.command("/竞品库", "/competitors", roles=[Role.ADMIN], summary="竞品库:查看、新增、修改、停用")
async def competitors_command(ctx: Ctx) -> list[Reply]:
    args = ctx.event.text.strip().split(maxsplit=1)
    rest = args[1] if len(args) > 1 else "列表"
    return await library_command(ctx, "competitor", rest) or [Text(_usage("competitor"))]

"""/帮助: what the bot can do for the asking member's role."""

from __future__ import annotations

from bot.context import Ctx
from bot.replies import Markdown, Reply
from bot.router import Router
from domain.enums import Role
from handlers import texts

router = Router("help")


@router.command("/帮助", "/help", summary="帮助")
async def show_help(ctx: Ctx) -> list[Reply]:
    body = texts.HELP_REP
    if ctx.acting.role is Role.MANAGER:
        body += texts.HELP_MANAGER
    elif ctx.acting.role is Role.ADMIN:
        body += texts.HELP_ADMIN
    return [Markdown(texts.HELP_TITLE, f"### {texts.HELP_TITLE}\n{body}")]

"""/帮助: what the bot can do for the asking member's role.

The command list is generated from the registered commands (their ``summary`` and ``usage``), so
it never drifts from what the dispatcher routes, and it shows only what the member's role may use.
"""

from __future__ import annotations

from bot.context import CommandInfo, Ctx
from bot.replies import Markdown, Reply
from bot.router import Router
from domain.enums import Role
from handlers import texts

router = Router("help")


def help_text(commands: list[CommandInfo], role: Role) -> str:
    """The help body for ``role``: how to talk to the bot, its commands, what else the role does."""
    lines = [texts.HELP_INTRO]
    lines += [
        texts.HELP_COMMAND_LINE.format(
            name=command.names[0], usage=f" {command.usage}" if command.usage else "", summary=command.summary
        )
        for command in commands
        if command.allows(role)
    ]
    if note := texts.HELP_ROLE_NOTES.get(role.value):
        lines += ["", note]
    return "\n".join(lines)


@router.command("/帮助", "/help", summary=texts.CMD_HELP)
async def show_help(ctx: Ctx) -> list[Reply]:
    body = help_text(list(ctx.commands), ctx.acting.role)
    return [Markdown(texts.HELP_TITLE, f"### {texts.HELP_TITLE}\n{body}")]

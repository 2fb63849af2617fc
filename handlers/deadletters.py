"""死信 (admins): the messages that failed for good, listed with their reasons, and sent again.

A failed inbox event (processing gave up) or a dead outbox message (delivery gave up) is reported
to the admins once by the outbox worker's sweep, in one notice per admin (``notice_text``);
``/死信`` lists them newest first and numbered, ``/死信 重发 N`` puts number N back in its queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import Markdown, Reply, Text
from bot.router import Router
from domain.enums import Role
from handlers import texts_deadletters as texts
from storage import audit
from storage import deadletters as dead_store

router = Router("deadletters")

LISTED = 20
NOTICE_LISTED = 10
REDRIVE_WORDS = ("重发", "redrive", "resend")
_REASON_CHARS = 120
_TEXT_CHARS = 30


@router.command("/死信", "/deadletters", roles=[Role.ADMIN], summary=texts.SUMMARY, usage=texts.USAGE)
async def dead_letters_command(ctx: Ctx) -> list[Reply]:
    args = ctx.event.text.strip().split()[1:]
    if not args:
        return [await _list(ctx)]
    if args[0] in REDRIVE_WORDS:
        return [await _redrive(ctx, args[1] if len(args) == 2 else "")]
    return [Text(texts.USAGE)]


async def _list(ctx: Ctx) -> Reply:
    letters = await dead_store.dead_letters(ctx.session)
    if not letters:
        return Text(texts.EMPTY)
    tz = ctx.config.tz
    lines = [f"### {texts.TITLE.format(count=len(letters))}"]
    lines += [describe(n, letter, tz) for n, letter in enumerate(letters[:LISTED], start=1)]
    if len(letters) > LISTED:
        lines.append(texts.MORE.format(count=len(letters) - LISTED))
    lines += ["", texts.FOOTER]
    return Markdown(texts.TITLE.format(count=len(letters)), "\n".join(lines))


async def _redrive(ctx: Ctx, number: str) -> Reply:
    if not number.isdigit() or int(number) < 1:
        raise UserError(texts.NUMBER_BAD)
    n = int(number)
    letters = await dead_store.dead_letters(ctx.session)
    if n > len(letters):
        raise UserError(texts.NUMBER_UNKNOWN.format(n=n, count=len(letters)))
    letter = letters[n - 1]
    now = ctx.clock.now()
    if not await dead_store.redrive(ctx.session, letter, now):
        raise UserError(texts.NUMBER_UNKNOWN.format(n=n, count=len(letters) - 1))
    await audit.record(
        ctx.session, member_id=ctx.member.id if ctx.member else None, action="dead_letter.redrive",
        subject=f"{letter.kind}:{letter.id}", before={"reason": letter.reason[:500]}, after={"status": "pending"},
        now=now,
    )
    template = texts.REDRIVEN_OUTBOX if letter.kind == "outbox" else texts.REDRIVEN_INBOX
    return Text(template.format(n=n, party=letter.party or "?"))


def describe(n: int, letter: dead_store.DeadLetter, tz: dt.tzinfo | None = None) -> str:
    """One numbered line of the list or the notice."""
    at = letter.failed_at.astimezone(tz) if tz else letter.failed_at
    text = letter.text.replace("\n", " ")
    quoted = texts.QUOTE.format(text=text[:_TEXT_CHARS] + ("…" if len(text) > _TEXT_CHARS else "")) if text else ""
    reason = letter.reason.replace("\n", " ")[:_REASON_CHARS] or "?"
    template = texts.LINE_OUTBOX if letter.kind == "outbox" else texts.LINE_INBOX
    return template.format(
        n=n, party=letter.party or "?", platform=letter.platform, at=at.strftime("%m-%d %H:%M"), text=quoted,
        reason=reason,
    )


def notice_text(letters: Sequence[dead_store.DeadLetter], tz: dt.tzinfo | None = None, total: int | None = None) -> str:
    """The one message an admin gets for what newly failed since the last sweep (and how many are listed)."""
    title = texts.NOTICE_TITLE if total is None else texts.NOTICE_TITLE_TOTAL
    lines = [title.format(count=len(letters), total=total)]
    lines += [describe(n, letter, tz) for n, letter in enumerate(letters[:NOTICE_LISTED], start=1)]
    if len(letters) > NOTICE_LISTED:
        lines.append(texts.MORE.format(count=len(letters) - NOTICE_LISTED))
    lines.append(texts.NOTICE_FOOTER)
    return "\n".join(lines)


def is_notice(letter: dead_store.DeadLetter) -> bool:
    """A notice that itself could not be delivered: listed, but never reported (no chain of notices)."""
    return letter.kind == "outbox" and letter.text.startswith(texts.NOTICE_HEADER)

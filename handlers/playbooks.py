"""话术包 / 物料: pushing script packs to reps (by rules, as rewards, or on request)."""

from __future__ import annotations

from bot.context import Ctx
from bot.dispatcher import Router
from bot.replies import File, Markdown, Reply, ToMember
from storage import libraries

router = Router("playbooks")

PACK_TITLE = "📘《{title}》"
PACK_NOTE = "> {note}\n\n"


async def push_pack(
    ctx: Ctx, *, member_id: int, title: str, cause: str, customer_id: int | None = None, note: str = ""
) -> list[Reply]:
    """Push the pack named ``title`` to a member once per ``cause``; [] if unknown or already sent.

    ``cause`` identifies why (e.g. ``overdue:stage:12:customer:5`` or ``reward:6``): the same
    cause never pushes twice, so sweeps and retries are safe.
    """
    pack = await libraries.pack_by_title(ctx.session, title)
    if pack is None:
        return []
    fresh = await libraries.record_delivery(
        ctx.session, pack_id=pack.id, member_id=member_id, customer_id=customer_id, cause=cause, now=ctx.now()
    )
    if not fresh:
        return []
    heading = PACK_TITLE.format(title=pack.title)
    body = f"### {heading}\n" + (PACK_NOTE.format(note=note) if note else "") + pack.body
    replies: list[Reply] = [Markdown(heading, body, to=ToMember(member_id))]
    if pack.file_sha256:
        replies.append(File(pack.file_sha256, pack.file_name or f"{pack.title}", to=ToMember(member_id)))
    return replies

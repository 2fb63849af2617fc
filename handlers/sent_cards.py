"""Cards sent earlier that a later step closes: every reviewer's copy of an escalation card, an
approval card whose [驳回] reason arrives as a message. (The clicked card is ``ctx.close_card``.)"""

from __future__ import annotations

from bot.context import Ctx
from bot.replies import CardUpdate, ToMember
from cards.model import Card
from storage import cards as card_store


async def close_sent_card(ctx: Ctx, task_id: str, note: str, *, to_holder: bool = False) -> CardUpdate | None:
    """Mark the card answered with ``note`` and return its closed version (None if unknown).

    ``to_holder`` addresses the update to the member the card was sent to rather than the sender
    of the event being handled.
    """
    record = await card_store.get_card(ctx.session, task_id)
    if record is None:
        return None
    await card_store.mark_answered(ctx.session, record.task_id, note, ctx.now())
    to = ToMember(record.member_id) if to_holder and record.member_id is not None else None
    return CardUpdate(Card.from_json(record.payload).closed(note), to=to)

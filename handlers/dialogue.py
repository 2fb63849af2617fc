"""Multi-step dialogues as the handlers use them: saving a state with the configured idle time,
ending it, reading what the clicked card's dialogue holds, and reading a text answer.

The dispatcher loads the member's live dialogue once and puts it on ``ctx.dialogue``; the helpers
here keep that current when a handler saves or ends one, so no handler loads it again.

Every free-text question the bot asks (a touch's missing field, a manager's review advice, a
rejection reason) reads the answer the same way: a cancel word ends the dialogue; an empty answer
or one over the limit is refused and the question stays open.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot.context import Ctx
from bot.replies import Reply, Text
from bot.router import DialogueState
from storage import dialogues

# Words that end any open question (a half-logged touch, review advice, a rejection reason …).
CANCEL_WORDS = frozenset({"取消", "算了", "不记了", "cancel"})


def dialogue_key(ctx: Ctx) -> dialogues.DialogueKey:
    """The acting member's dialogue in this conversation."""
    return dialogues.DialogueKey(ctx.event.platform, ctx.event.conversation, ctx.acting.id)


async def save_state(
    ctx: Ctx, state: DialogueState, data: dict[str, Any], *, idle_minutes: int | None = None
) -> None:
    """Enter (or stay in) ``state``; it expires after ``touch.dialogue_idle_minutes`` unless told otherwise."""
    minutes = ctx.config.touch.dialogue_idle_minutes if idle_minutes is None else idle_minutes
    ctx.dialogue = await dialogues.save_dialogue(
        ctx.session, dialogue_key(ctx), state, data, ctx.now(), dt.timedelta(minutes=minutes)
    )


async def end_dialogue(ctx: Ctx) -> None:
    """End the member's dialogue in this conversation (nothing happens if there is none)."""
    if ctx.dialogue is None and ctx.dialogue_loaded:
        return  # none was stored when the event came, and none was saved since
    await dialogues.clear_dialogue(ctx.session, dialogue_key(ctx))
    ctx.dialogue = None


def dialogue_data(ctx: Ctx, *states: DialogueState) -> dict[str, Any] | None:
    """A copy of the live dialogue's fields if it is in one of ``states``."""
    row = ctx.dialogue
    if row is None or row.state not in states:
        return None
    return dict(row.data)


def data_for_clicked_card(ctx: Ctx, *states: DialogueState) -> dict[str, Any] | None:
    """The dialogue's fields if it waits in one of ``states`` for the clicked card's answer.

    A dialogue that sends a card keeps the card's task id under ``"card"``: a newer message that
    replaced the dialogue must not be acted on by the older card, which may still be open.
    """
    data = dialogue_data(ctx, *states)
    if data is None or ctx.card is None or data.get("card") != ctx.card.task_id:
        return None
    return data


@dataclass(frozen=True)
class AnswerTexts:
    """What a question's refusals say; ``too_long`` has ``{length}`` and ``{limit}``."""

    cancelled: str
    empty: str
    too_long: str


async def read_text_answer(ctx: Ctx, says: AnswerTexts, *, limit: int) -> str | list[Reply]:
    """The answer text, or the replies that end (cancel) or repeat (empty, too long) the question."""
    text = ctx.event.text.strip()
    if text in CANCEL_WORDS:
        await end_dialogue(ctx)
        return [Text(says.cancelled)]
    if not text:
        return [Text(says.empty)]
    if len(text) > limit:
        return [Text(says.too_long.format(length=len(text), limit=limit))]
    return text

"""Multi-step dialogues as the handlers use them: the member's dialogue key, saving a state with
the configured idle time, and reading a text answer.

Every free-text question the bot asks (a touch's missing field, a manager's review advice, a
rejection reason) reads the answer the same way: a cancel word ends the dialogue; an empty answer
or one over the limit is refused and the question stays open.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from bot.context import Ctx
from bot.replies import Reply, Text
from storage import dialogues

CANCEL_WORDS = frozenset({"取消", "算了", "cancel"})


def dialogue_key(ctx: Ctx) -> dialogues.DialogueKey:
    """The acting member's dialogue in this conversation."""
    return dialogues.DialogueKey(ctx.event.platform, ctx.event.conversation, ctx.acting.id)


async def save_state(ctx: Ctx, state: str, data: dict[str, Any], *, idle_minutes: int | None = None) -> None:
    """Enter (or stay in) ``state``; it expires after ``touch.dialogue_idle_minutes`` unless told otherwise."""
    minutes = ctx.config.touch.dialogue_idle_minutes if idle_minutes is None else idle_minutes
    await dialogues.save_dialogue(ctx.session, dialogue_key(ctx), state, data, ctx.now(), dt.timedelta(minutes=minutes))


@dataclass(frozen=True)
class AnswerTexts:
    """What a question's refusals say; ``too_long`` has ``{length}`` and ``{limit}``."""

    cancelled: str
    empty: str
    too_long: str


async def read_text_answer(
    ctx: Ctx, says: AnswerTexts, *, limit: int, cancel_words: Collection[str] = CANCEL_WORDS
) -> str | list[Reply]:
    """The answer text, or the replies that end (cancel) or repeat (empty, too long) the question."""
    text = ctx.event.text.strip()
    if text in cancel_words:
        await dialogues.clear_dialogue(ctx.session, dialogue_key(ctx))
        return [Text(says.cancelled)]
    if not text:
        return [Text(says.empty)]
    if len(text) > limit:
        return [Text(says.too_long.format(length=len(text), limit=limit))]
    return text

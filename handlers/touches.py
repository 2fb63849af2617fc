"""接触记录: logging a customer touch from one plain-Chinese message (SPEC §3.1).

The message is parsed; a missing customer is resolved by a card (several candidates, or an
offer to create a lead); missing fields are asked for in a short dialogue; once complete the
touch is saved at once and confirmed with an [撤销] button — no confirm-before-save round trip.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import CardReply, CardUpdate, Reply, Text
from bot.router import Router
from cards.model import ActionPayload, Button, ButtonStyle, Card, CardField, action, new_task_id
from domain.enums import Channel
from domain.parsing.customers import CustomerName, match_customer
from domain.parsing.touch import parse_next_action, parse_touch
from domain.rules.effective import EffectiveThresholds, shortfall
from handlers import directory, texts
from handlers.dialogue import AnswerTexts, dialogue_key, read_text_answer, save_state
from handlers.format import format_due
from storage import cards as card_store
from storage import customers as customer_store
from storage import dialogues
from storage import pipelines as pipeline_store
from storage import touches as touch_store
from storage.models import Customer

router = Router("touches")

STATE_CUSTOMER = "touch.customer"
STATE_NEW_LEAD = "touch.new_lead"
STATE_SUMMARY = "touch.summary"
STATE_NEXT = "touch.next"
CANCEL_WORDS = frozenset({"取消", "算了", "不记了", "cancel"})
MAX_CANDIDATES = 5
_ANSWER = AnswerTexts(cancelled=texts.CANCELLED, empty=texts.EMPTY_MESSAGE, too_long=texts.TOO_LONG)


def thresholds(ctx: Ctx) -> EffectiveThresholds:
    return EffectiveThresholds(
        phone_minutes=ctx.config.touch.phone_effective_minutes,
        visit_minutes=ctx.config.touch.visit_effective_minutes,
    )


async def _draft_of_clicked_card(ctx: Ctx, *states: str) -> dict[str, Any] | None:
    """The draft the clicked card was sent for, if it still waits in one of ``states``.

    A newer message replaces the draft while an older card may still be open: that card must not
    act on the newer draft (create its lead, pick its customer, or cancel it).
    """
    row = await dialogues.load_dialogue(ctx.session, dialogue_key(ctx))
    if row is None or row.state not in states or row.expires_at <= ctx.now():
        return None
    draft = dict(row.data)
    return draft if draft.pop("card", None) == ctx.event.task_id else None


def _customer_names(customers: list[Customer]) -> list[CustomerName]:
    return [
        CustomerName(c.id, c.name, tuple(c.aliases or ()), tuple(c.contacts or ())) for c in customers
    ]


@router.text
async def log_touch(ctx: Ctx) -> list[Reply]:
    text = ctx.event.text.strip()
    if not text:
        return [Text(texts.EMPTY_MESSAGE)]
    limit = ctx.config.touch.max_message_chars
    if len(text) > limit:
        return [Text(texts.TOO_LONG.format(length=len(text), limit=limit))]
    today = ctx.today()
    customers = await customer_store.owned_by(ctx.session, ctx.acting.id)
    match = match_customer(text, _customer_names(customers))
    parsed = parse_touch(text, today, match.span if match.status == "matched" else None)
    draft: dict[str, Any] = {
        "raw_text": text,
        "channel": parsed.channel.value if parsed.channel else None,
        "duration": parsed.duration_minutes,
        "summary": parsed.summary,
        "next_action": parsed.next_action,
        "next_due": parsed.next_due.isoformat() if parsed.next_due else None,
        "proposal": parsed.proposal,
    }
    if match.status == "matched":
        draft["customer_id"] = match.customer_id
        return await _continue(ctx, draft)
    if match.status == "ambiguous":
        by_id = {c.id: c for c in customers}
        draft["candidates"] = list(match.candidates[:MAX_CANDIDATES])
        card = _choose_customer_card(text, [by_id[i] for i in draft["candidates"]])
        await save_state(ctx, STATE_CUSTOMER, {**draft, "card": card.task_id})
        return [CardReply(card)]
    if not match.guessed_name:
        return [Text(texts.NO_CUSTOMER_NAME)]
    draft["lead_name"] = match.guessed_name
    # The name itself is not part of what was done today.
    if draft["summary"].startswith(match.guessed_name):
        draft["summary"] = draft["summary"][len(match.guessed_name) :].strip(" ,,。")  # noqa: B005 (a set of characters)
    if (clash := await directory.clash_replies(ctx, match.guessed_name)) is not None:
        return clash  # 撞单: another rep's customer is never created again silently
    card = _new_lead_card(match.guessed_name)
    await save_state(ctx, STATE_NEW_LEAD, {**draft, "card": card.task_id})
    return [CardReply(card)]


def _choose_customer_card(text: str, candidates: list[Customer]) -> Card:
    buttons = [Button(c.name, action("tc", c.id), ButtonStyle.PRIMARY if i == 0 else ButtonStyle.DEFAULT)
               for i, c in enumerate(candidates)]
    buttons.append(Button(texts.CANCEL_BUTTON, action("tx")))
    return Card(
        task_id=new_task_id("pick"),
        title=texts.CHOOSE_CUSTOMER_TITLE,
        body=texts.CHOOSE_CUSTOMER_BODY.format(text=text[:40]),
        buttons=tuple(buttons),
    )


def _new_lead_card(name: str) -> Card:
    return Card(
        task_id=new_task_id("lead"),
        title=texts.NEW_LEAD_TITLE,
        body=texts.NEW_LEAD_BODY.format(name=name),
        buttons=(
            Button(texts.NEW_LEAD_BUTTON.format(name=name), action("tl"), ButtonStyle.PRIMARY),
            Button(texts.CANCEL_BUTTON, action("tx")),
        ),
    )


@router.action("tc")
async def choose_customer(ctx: Ctx, payload: ActionPayload) -> list[Reply]:
    draft = await _draft_of_clicked_card(ctx, STATE_CUSTOMER)
    customer_id = int(payload.args[0]) if payload.args and payload.args[0].isdigit() else -1
    if draft is None or customer_id not in draft.get("candidates", []):
        return [Text(texts.CHOICE_GONE)]
    customer = await customer_store.get_customer(ctx.session, customer_id)
    if customer is None or customer.owner_id != ctx.acting.id:
        return [Text(texts.CHOICE_GONE)]
    draft["customer_id"] = customer_id
    draft.pop("candidates", None)
    return [await _close_clicked_card(ctx, customer.name), *await _continue(ctx, draft)]


@router.action("tl")
async def create_lead(ctx: Ctx, payload: ActionPayload) -> list[Reply]:
    draft = await _draft_of_clicked_card(ctx, STATE_NEW_LEAD)
    if draft is None:
        return [Text(texts.CHOICE_GONE)]
    name = draft.pop("lead_name")
    existing = await customer_store.find_by_name(ctx.session, ctx.acting.id, name)
    if existing is None and (clash := await directory.clash_replies(ctx, name)) is not None:
        return [await _close_clicked_card(ctx, texts.CANCEL_BUTTON), *clash]
    customer = existing or await customer_store.create_lead(
        ctx.session, owner_id=ctx.acting.id, name=name, now=ctx.now()
    )
    draft["customer_id"] = customer.id
    stage_names = await pipeline_store.stage_names(ctx.session)
    replies: list[Reply] = [
        await _close_clicked_card(ctx, texts.NEW_LEAD_CREATED.format(name=name, stage=stage_names[customer.stage_id]))
    ]
    return replies + await _continue(ctx, draft)


@router.action("tx")
async def cancel_from_card(ctx: Ctx, payload: ActionPayload) -> list[Reply]:
    if await _draft_of_clicked_card(ctx, STATE_CUSTOMER, STATE_NEW_LEAD) is not None:
        await dialogues.clear_dialogue(ctx.session, dialogue_key(ctx))
    # An older card's draft is gone already: closing the card is all there is to do.
    return [await _close_clicked_card(ctx, texts.CANCELLED)]


async def _close_clicked_card(ctx: Ctx, note: str) -> Reply:
    record = await card_store.get_card(ctx.session, ctx.event.task_id or "")
    assert record is not None  # the dispatcher checked it
    return CardUpdate(Card.from_json(record.payload).closed(note))


@router.dialogue(STATE_CUSTOMER, STATE_NEW_LEAD)
async def answer_while_card_open(ctx: Ctx) -> list[Reply]:
    """Text while a customer card is open: cancel, a candidate's number, or a fresh message."""
    text = ctx.event.text.strip()
    if text in CANCEL_WORDS:
        await dialogues.clear_dialogue(ctx.session, dialogue_key(ctx))
        return [Text(texts.CANCELLED)]
    row = await dialogues.load_dialogue(ctx.session, dialogue_key(ctx))
    assert row is not None  # the dispatcher routed here by its state
    draft = dict(row.data)
    if row.state == STATE_CUSTOMER and text.isdigit() and 1 <= int(text) <= len(draft.get("candidates", [])):
        draft.pop("card", None)
        draft["customer_id"] = draft.pop("candidates")[int(text) - 1]
        return await _continue(ctx, draft)
    await dialogues.clear_dialogue(ctx.session, dialogue_key(ctx))
    return await log_touch(ctx)


@router.dialogue(STATE_SUMMARY, STATE_NEXT)
async def answer_missing_field(ctx: Ctx) -> list[Reply]:
    text = await read_text_answer(ctx, _ANSWER, limit=ctx.config.touch.max_message_chars, cancel_words=CANCEL_WORDS)
    if isinstance(text, list):
        return text
    row = await dialogues.load_dialogue(ctx.session, dialogue_key(ctx))
    assert row is not None
    draft, state = dict(row.data), row.state
    if state == STATE_SUMMARY:
        parsed = parse_touch(text, ctx.today())
        draft["summary"] = parsed.summary or text
        draft["channel"] = draft.get("channel") or (parsed.channel.value if parsed.channel else None)
        draft["duration"] = draft.get("duration") or parsed.duration_minutes
        draft["proposal"] = draft.get("proposal") or parsed.proposal
        draft["next_action"] = draft.get("next_action") or parsed.next_action
        if parsed.next_due and not draft.get("next_due"):
            draft["next_due"] = parsed.next_due.isoformat()
    else:
        action_text, due = parse_next_action(text, ctx.today())
        if action_text:
            draft["next_action"] = action_text
        if due:
            draft["next_due"] = due.date.isoformat()
        elif draft.get("next_due") and dt.date.fromisoformat(draft["next_due"]) < ctx.today():
            draft["next_due"] = None  # the rejected past date must be replaced
    return await _continue(ctx, draft)


async def _continue(ctx: Ctx, draft: dict[str, Any]) -> list[Reply]:
    """Ask for the next missing field, or save the touch when nothing is missing."""
    customer = await customer_store.get_customer(ctx.session, draft["customer_id"])
    if customer is None or customer.owner_id != ctx.acting.id:
        # Transferred or deleted meanwhile: the draft can never be saved, so the dialogue ends
        # (were it kept, every message would get this answer until it expired).
        await dialogues.clear_dialogue(ctx.session, dialogue_key(ctx))
        return [Text(texts.CHOICE_GONE)]
    if not draft.get("summary"):
        await save_state(ctx, STATE_SUMMARY, draft)
        return [Text(texts.ASK_SUMMARY.format(customer=customer.name) + texts.DIALOGUE_HINT)]
    due = dt.date.fromisoformat(draft["next_due"]) if draft.get("next_due") else None
    if due is not None and due < ctx.today():
        await save_state(ctx, STATE_NEXT, draft)
        return [Text(texts.PAST_DATE.format(date=format_due(due, ctx.today())) + texts.DIALOGUE_HINT)]
    if not draft.get("next_action") and due is None:
        await save_state(ctx, STATE_NEXT, draft)
        return [Text(texts.ASK_NEXT + texts.DIALOGUE_HINT)]
    if due is None:
        await save_state(ctx, STATE_NEXT, draft)
        return [Text(texts.ASK_NEXT_DATE.format(action=draft["next_action"]) + texts.DIALOGUE_HINT)]
    if not draft.get("next_action"):
        await save_state(ctx, STATE_NEXT, draft)
        return [Text(texts.ASK_NEXT_ACTION.format(date=format_due(due, ctx.today())) + texts.DIALOGUE_HINT)]
    await dialogues.clear_dialogue(ctx.session, dialogue_key(ctx))
    return await _save(ctx, customer, draft, due)


async def _save(ctx: Ctx, customer: Customer, draft: dict[str, Any], due: dt.date) -> list[Reply]:
    channel = Channel(draft["channel"]) if draft.get("channel") else Channel.OTHER
    touch = await touch_store.record_touch(
        ctx.session,
        customer=customer,
        member_id=ctx.acting.id,
        channel=channel,
        duration_minutes=draft.get("duration"),
        summary=draft["summary"][:2000],
        raw_text=draft["raw_text"],
        next_action=draft["next_action"][:256],
        next_due=due,
        proposal=bool(draft.get("proposal")),
        occurred_at=ctx.now(),
        source_event_id=ctx.inbox_id,
    )
    channel_text = channel.value + (f" · {touch.duration_minutes}分钟" if touch.duration_minutes else "")
    reason = shortfall(channel, touch.duration_minutes, touch.proposal, thresholds(ctx))
    card = Card(
        task_id=new_task_id("touch"),
        title=texts.CONFIRM_TITLE.format(customer=customer.name),
        fields=(
            CardField(texts.FIELD_CHANNEL, channel_text),
            CardField(texts.FIELD_TODAY, touch.summary),
            CardField(texts.FIELD_NEXT, f"{touch.next_action}({format_due(due, ctx.today())})"),
            CardField(
                texts.FIELD_EVIDENCE,
                texts.EVIDENCE_PENDING.format(minutes=ctx.config.touch.evidence_window_minutes),
            ),
            CardField(
                texts.FIELD_EFFECTIVE,
                texts.EFFECTIVE_NO.format(reason=reason) if reason else texts.EFFECTIVE_WAITING,
            ),
        ),
        buttons=(Button(texts.UNDO_BUTTON, action("undo", touch.id), ButtonStyle.DANGER),),
    )
    return [CardReply(card), *await ctx.hooks.touch_logged(ctx, touch, customer)]


@router.action("undo")
async def undo(ctx: Ctx, payload: ActionPayload) -> list[Reply]:
    touch_id = int(payload.args[0]) if payload.args and payload.args[0].isdigit() else -1
    touch = await touch_store.get_touch(ctx.session, touch_id)
    if touch is None:
        raise UserError(texts.UNDO_MISSING)
    if touch.member_id != ctx.acting.id:
        raise UserError(texts.UNDO_NOT_YOURS)
    if touch.undone_at is not None:
        raise UserError(texts.UNDO_ALREADY)
    await touch_store.undo_touch(ctx.session, touch, ctx.now())
    customer = await customer_store.get_customer(ctx.session, touch.customer_id)
    assert customer is not None
    return [
        await _close_clicked_card(ctx, texts.UNDONE_NOTE),
        Text(texts.UNDONE.format(customer=customer.name)),
        *await ctx.hooks.touch_undone(ctx, touch, customer),
    ]




"""接触记录: logging a customer touch from one plain-Chinese message (SPEC §3.1).

The message is parsed; a missing customer is resolved by a card (several candidates, or an
offer to create a lead); missing fields are asked for in a short dialogue; once complete the
touch is saved at once and confirmed with an [撤销] button — no confirm-before-save round trip.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import CardReply, CardUpdate, Reply, Text
from bot.router import DialogueState, Router
from cards.model import Button, ButtonStyle, Card, CardAction, CardField, new_task_id
from domain.enums import Channel, Role
from domain.parsing.chitchat import is_chit_chat, is_greeting
from domain.parsing.customers import match_customer
from domain.parsing.questions import confirmations_for
from domain.parsing.touch import parse_next_action, parse_touch
from domain.rules.effective import EffectiveThresholds, shortfall
from domain.rules.workdays import WorkCalendar
from domain.text import has_visible_content, visible_text
from handlers import directory, texts, texts_touch
from handlers import touch_questions as questions
from handlers.customers import customer_names
from handlers.dialogue import (
    CANCEL_WORDS,
    AnswerTexts,
    data_for_clicked_card,
    end_dialogue,
    read_text_answer,
    save_state,
)
from handlers.format import format_due
from storage import calendar as calendar_store
from storage import customers as customer_store
from storage import pipelines as pipeline_store
from storage import touches as touch_store
from storage.models import Customer

router = Router("touches")



class TouchState(DialogueState):
    CUSTOMER = "touch.customer"  # a card asks which of several customers was meant
    NEW_LEAD = "touch.new_lead"  # a card offers to create the named customer as a lead
    SUMMARY = "touch.summary"  # asked what was done
    NEXT = "touch.next"  # asked for the next action or its date


@dataclass(frozen=True)
class PickCustomer(CardAction, prefix="tc"):
    """One of several candidate customers was chosen for the draft touch."""

    customer_id: int


@dataclass(frozen=True)
class CreateLead(CardAction, prefix="tl"):
    """The customer the draft names does not exist: create it as a lead."""


@dataclass(frozen=True)
class CancelDraft(CardAction, prefix="tx"):
    """Drop the draft touch the card was sent for."""


@dataclass(frozen=True)
class UndoTouch(CardAction, prefix="undo"):
    """Withdraw a touch just logged (the confirmation card's [撤销])."""

    touch_id: int


@dataclass(frozen=True)
class ChooseAnswer(CardAction, prefix="tq"):
    """A likely answer clicked on a question's card ([下周三(12月9日)], [明天], [不确定])."""

    index: int  # into the draft's choices


@dataclass(frozen=True)
class ConfirmReading(CardAction, prefix="tk"):
    """[对的] on a saved touch's card: the customer or date read with low confidence was right."""

    touch_id: int


MAX_CANDIDATES = 5
WORKDAY_WORD = "工作日"
_ANSWER = AnswerTexts(cancelled=texts.CANCELLED, empty=texts.EMPTY_MESSAGE, too_long=texts.TOO_LONG)


def thresholds(ctx: Ctx) -> EffectiveThresholds:
    return EffectiveThresholds(
        phone_minutes=ctx.config.touch.phone_effective_minutes,
        visit_minutes=ctx.config.touch.visit_effective_minutes,
    )


def _draft_of_clicked_card(ctx: Ctx, *states: TouchState) -> dict[str, Any] | None:
    """The draft the clicked card was sent for, if it still waits in one of ``states``.

    A newer message replaces the draft while an older card may still be open: that card must not
    act on the newer draft (create its lead, pick its customer, or cancel it).
    """
    draft = data_for_clicked_card(ctx, *states)
    if draft is not None:
        draft.pop("card")
    return draft


async def _calendar_for(ctx: Ctx, text: str) -> WorkCalendar | None:
    """The team's working-day calendar when the text counts working days ("3个工作日后").

    Building it reads the admin-declared days; other messages need no calendar.
    """
    if WORKDAY_WORD not in text:
        return None
    return await calendar_store.work_calendar(ctx.session, ctx.config.rules)


def _chit_chat_reply(text: str) -> list[Reply]:
    """"你好", "谢谢", "好的": a brief answer."""
    return [Text(texts_touch.CHIT_CHAT_GREETING if is_greeting(text) else texts_touch.CHIT_CHAT_ACK)]


@router.text
async def log_touch(ctx: Ctx) -> list[Reply]:
    text = ctx.event.text.strip()
    if not has_visible_content(text):  # empty, or only zero-width / control characters
        return [Text(texts.EMPTY_MESSAGE)]
    limit = ctx.config.touch.max_message_chars
    if len(text) > limit:
        return [Text(texts.TOO_LONG.format(length=len(text), limit=limit))]
    if is_chit_chat(text):
        return _chit_chat_reply(text)  # never a customer to create
    if ctx.acting.role is Role.SUPPORTER:
        # Least privilege: supporters own no customers, so they log no touches and create no leads.
        return [Text(texts.SUPPORTER_NO_TOUCHES)]
    today = ctx.today()
    customers = await customer_store.owned_by(ctx.session, ctx.acting.id)
    match = match_customer(text, customer_names(customers))
    calendar = await _calendar_for(ctx, text)
    parsed = parse_touch(text, today, match.span if match.status == "matched" else None, calendar)
    draft: dict[str, Any] = {
        "raw_text": text,
        "channel": parsed.channel.value if parsed.channel else None,
        "duration": parsed.duration_minutes,
        "summary": parsed.summary,
        # the part of the day is the due time: kept with the action ("下午 去现场")
        "next_action": questions.with_part_of_day(parsed.next_action, parsed.next_due_part),
        "next_due": parsed.next_due.isoformat() if parsed.next_due else None,
        "proposal": parsed.proposal,
        # a vague date ("下周") is a range: asked with its likely days as buttons
        "next_due_latest": parsed.next_due_latest.isoformat() if parsed.next_due_latest else None,
        "next_due_expression": parsed.next_due_expression,
        "next_due_part": parsed.next_due_part,
        # fields read with low confidence, confirmed on the saved card
        "confirm": [str(c) for c in confirmations_for(match, parsed)],
    }
    if match.status == "matched":
        draft["customer_id"] = match.customer_id
        return await _continue(ctx, draft)
    if match.status == "ambiguous":
        by_id = {c.id: c for c in customers}
        draft["candidates"] = list(match.candidates[:MAX_CANDIDATES])
        card = _choose_customer_card(text, [by_id[i] for i in draft["candidates"]])
        await save_state(ctx, TouchState.CUSTOMER, {**draft, "card": card.task_id})
        return [CardReply(card)]
    if not match.guessed_name or not has_visible_content(match.guessed_name):
        return [Text(texts.NO_CUSTOMER_NAME)]
    draft["lead_name"] = visible_text(match.guessed_name)
    # The name itself is not part of what was done today.
    if draft["summary"].startswith(match.guessed_name):
        draft["summary"] = draft["summary"][len(match.guessed_name) :].strip(" ,,。")  # noqa: B005 (a set of characters)
    if (clash := await directory.clash_replies(ctx, draft["lead_name"])) is not None:
        return clash  # 撞单: another rep's customer is never created again silently
    card = _new_lead_card(draft["lead_name"])
    await save_state(ctx, TouchState.NEW_LEAD, {**draft, "card": card.task_id})
    return [CardReply(card)]


def _choose_customer_card(text: str, candidates: list[Customer]) -> Card:
    buttons = [Button(c.name, PickCustomer(c.id).pack(), ButtonStyle.PRIMARY if i == 0 else ButtonStyle.DEFAULT)
               for i, c in enumerate(candidates)]
    buttons.append(Button(texts.CANCEL_BUTTON, CancelDraft().pack()))
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
            Button(texts.NEW_LEAD_BUTTON.format(name=name), CreateLead().pack(), ButtonStyle.PRIMARY),
            Button(texts.CANCEL_BUTTON, CancelDraft().pack()),
        ),
    )


@router.action(PickCustomer)
async def choose_customer(ctx: Ctx, payload: PickCustomer) -> list[Reply]:
    draft = _draft_of_clicked_card(ctx, TouchState.CUSTOMER)
    customer_id = payload.customer_id
    if draft is None or customer_id not in draft.get("candidates", []):
        return [Text(texts.CHOICE_GONE)]
    customer = await customer_store.get_customer(ctx.session, customer_id)
    if customer is None or customer.owner_id != ctx.acting.id:
        # Transferred or deleted since the card was sent: refused, the card stays open for the others.
        raise UserError(texts.CHOICE_GONE, detail=f"customer {customer_id} is not the member's")
    draft["customer_id"] = customer_id
    draft.pop("candidates", None)
    return [ctx.close_card(customer.name), *await _continue(ctx, draft)]


@router.action(CreateLead)
async def create_lead(ctx: Ctx, payload: CreateLead) -> list[Reply]:
    if ctx.acting.role is Role.SUPPORTER:  # e.g. a draft begun before the member became a supporter
        raise UserError(texts.SUPPORTER_NO_TOUCHES, detail="supporters create no leads")
    draft = _draft_of_clicked_card(ctx, TouchState.NEW_LEAD)
    if draft is None:
        return [Text(texts.CHOICE_GONE)]
    # A name is what a reader sees: zero-width and control characters never make a customer.
    name = visible_text(draft.pop("lead_name"))
    if not name:
        await end_dialogue(ctx)
        return [ctx.close_card(texts.CANCELLED), Text(texts.EMPTY_MESSAGE)]
    existing = await customer_store.find_by_name(ctx.session, ctx.acting.id, name)
    if existing is None and (clash := await directory.clash_replies(ctx, name)) is not None:
        return [ctx.close_card(texts.CANCEL_BUTTON), *clash]
    customer = existing or await customer_store.create_lead(
        ctx.session, owner_id=ctx.acting.id, name=name, now=ctx.now()
    )
    draft["customer_id"] = customer.id
    stage_names = await pipeline_store.stage_names(ctx.session)
    replies: list[Reply] = [
        ctx.close_card(texts.NEW_LEAD_CREATED.format(name=name, stage=stage_names[customer.stage_id]))
    ]
    return replies + await _continue(ctx, draft)


@router.action(CancelDraft)
async def cancel_from_card(ctx: Ctx, payload: CancelDraft) -> list[Reply]:
    if _draft_of_clicked_card(ctx, TouchState.CUSTOMER, TouchState.NEW_LEAD) is not None:
        await end_dialogue(ctx)
    # An older card's draft is gone already: closing the card is all there is to do.
    return [ctx.close_card(texts.CANCELLED)]


@router.dialogue(TouchState.CUSTOMER, TouchState.NEW_LEAD)
async def answer_while_card_open(ctx: Ctx) -> list[Reply]:
    """Text while a customer card is open: cancel, a candidate's number, or a fresh message."""
    text = ctx.event.text.strip()
    if is_chit_chat(text):
        return _chit_chat_reply(text)  # "好的", "谢谢": the card stays open, the draft kept
    if text in CANCEL_WORDS:
        await end_dialogue(ctx)
        return [Text(texts.CANCELLED)]
    assert ctx.dialogue is not None  # the dispatcher routed here by its state
    draft = dict(ctx.dialogue.data)
    if ctx.dialogue.state == TouchState.CUSTOMER and text.isdigit() and 1 <= int(text) <= len(draft.get("candidates", [])):
        draft.pop("card", None)
        draft["customer_id"] = draft.pop("candidates")[int(text) - 1]
        return await _continue(ctx, draft)
    await end_dialogue(ctx)
    return await log_touch(ctx)


@router.dialogue(TouchState.SUMMARY, TouchState.NEXT)
async def answer_missing_field(ctx: Ctx) -> list[Reply]:
    text = await read_text_answer(ctx, _ANSWER, limit=ctx.config.touch.max_message_chars)
    if isinstance(text, list):
        return text
    if is_chit_chat(text):
        return _chit_chat_reply(text)  # "好的" is no summary or next action: the question stays open
    assert ctx.dialogue is not None  # the dispatcher routed here by its state
    draft, state = dict(ctx.dialogue.data), ctx.dialogue.state
    if state == TouchState.SUMMARY:
        parsed = parse_touch(text, ctx.today(), calendar=await _calendar_for(ctx, text))
        draft["summary"] = parsed.summary or text
        draft["channel"] = draft.get("channel") or (parsed.channel.value if parsed.channel else None)
        draft["duration"] = draft.get("duration") or parsed.duration_minutes
        draft["proposal"] = draft.get("proposal") or parsed.proposal
        draft["next_action"] = draft.get("next_action") or parsed.next_action
        if parsed.next_due and not draft.get("next_due"):
            draft["next_due"] = parsed.next_due.isoformat()
    else:
        draft.pop("card", None)  # a typed answer: the choices card is left behind
        draft.pop("choices", None)
        if text == texts_touch.UNSURE_BUTTON and draft.get("next_due_latest"):
            return await _choose_day(ctx, draft, {"due": draft["next_due_latest"], "unsure": True})
        action_text, due = parse_next_action(text, ctx.today(), await _calendar_for(ctx, text))
        if action_text:
            draft["next_action"] = action_text
        if due:
            draft["next_due"] = due.date.isoformat()
            draft["next_due_latest"] = due.latest.isoformat() if due.vague and due.latest else None
            draft["next_due_expression"] = due.expression
            _confirmed(draft, "date")  # the rep just said it
        elif draft.get("next_due") and dt.date.fromisoformat(draft["next_due"]) < ctx.today():
            draft["next_due"] = None  # the rejected past date must be replaced
    return await _continue(ctx, draft)


async def _continue(ctx: Ctx, draft: dict[str, Any]) -> list[Reply]:
    """Ask for the next missing field, or save the touch when nothing is missing."""
    customer = await customer_store.get_customer(ctx.session, draft["customer_id"])
    if customer is None or customer.owner_id != ctx.acting.id:
        # Transferred or deleted meanwhile: the draft can never be saved, so the dialogue ends
        # (were it kept, every message would get this answer until it expired).
        await end_dialogue(ctx)
        return [Text(texts.CHOICE_GONE)]
    if not draft.get("summary"):
        await save_state(ctx, TouchState.SUMMARY, draft)
        return [Text(texts.ASK_SUMMARY.format(customer=customer.name) + texts.DIALOGUE_HINT)]
    today = ctx.today()
    due = dt.date.fromisoformat(draft["next_due"]) if draft.get("next_due") else None
    if due is not None and due < today:
        question = texts.PAST_DATE.format(date=format_due(due, today)) + texts.DIALOGUE_HINT
        return await _ask(ctx, draft, question, questions.past_date_body(draft["raw_text"]), questions.when_choices(today))
    if not draft.get("next_action") and due is None:
        return await _ask(ctx, draft, texts.ASK_NEXT + texts.DIALOGUE_HINT)
    if due is None:
        question = texts.ASK_NEXT_DATE.format(action=draft["next_action"]) + texts.DIALOGUE_HINT
        return await _ask(ctx, draft, question, questions.when_body(draft["next_action"]), questions.when_choices(today))
    if draft.get("next_due_latest"):
        # "下周再联系": which day of the week — never silently its Monday
        latest = dt.date.fromisoformat(draft["next_due_latest"])
        body = questions.which_day_body(draft["raw_text"], draft.get("next_due_expression") or "")
        return await _ask(ctx, draft, None, body, questions.which_day_choices(due, latest, today))
    if not draft.get("next_action"):
        question = texts.ASK_NEXT_ACTION.format(date=format_due(due, today)) + texts.DIALOGUE_HINT
        body = texts_touch.ASK_ACTION_BODY.format(date=format_due(due, today))
        return await _ask(ctx, draft, question, body, questions.action_choices(due))
    await end_dialogue(ctx)
    return await _save(ctx, customer, draft, due)


async def _ask(
    ctx: Ctx,
    draft: dict[str, Any],
    question: str | None,
    body: str = "",
    choices: list[dict[str, Any]] | None = None,
) -> list[Reply]:
    """Ask for a field (the answer may be typed); likely answers follow as buttons on a card."""
    replies: list[Reply] = [Text(question)] if question else []
    draft = {k: v for k, v in draft.items() if k not in ("card", "choices")}
    if choices:
        card = questions.choices_card(body, choices, lambda i: ChooseAnswer(i).pack())
        draft.update(card=card.task_id, choices=choices)
        replies.append(CardReply(card))
    await save_state(ctx, TouchState.NEXT, draft)
    return replies


def _confirmed(draft: dict[str, Any], field: str) -> None:
    draft["confirm"] = [c for c in draft.get("confirm") or () if c != field]


@router.action(ChooseAnswer)
async def choose_answer(ctx: Ctx, payload: ChooseAnswer) -> list[Reply]:
    """A likely answer clicked on a question's card: [下周三(12月9日)], [明天], [不确定] ..."""
    draft = _draft_of_clicked_card(ctx, TouchState.NEXT)
    choices = draft.pop("choices", []) if draft is not None else []
    if draft is None or not 0 <= payload.index < len(choices):
        return [Text(texts.CHOICE_GONE)]
    choice = choices[payload.index]
    return [ctx.close_card(choice["label"]), *await _choose_day(ctx, draft, choice)]


async def _choose_day(ctx: Ctx, draft: dict[str, Any], choice: dict[str, Any]) -> list[Reply]:
    latest = draft.pop("next_due_latest", None)
    if choice.get("unsure") and latest:
        # Not sure which day: the range is kept, due by its last day ("下周内").
        first = dt.date.fromisoformat(draft["next_due"])
        note = questions.unsure_due_label(first, dt.date.fromisoformat(latest))
        draft["next_action"] = f"{draft.get('next_action') or texts_touch.DEFAULT_NEXT_ACTION}({note})"
    draft["next_due"] = choice["due"]
    if choice.get("action") and not draft.get("next_action"):
        draft["next_action"] = choice["action"]
    draft.pop("choices", None)
    _confirmed(draft, "date")
    return await _continue(ctx, draft)


@router.action(ConfirmReading)
async def confirm_reading(ctx: Ctx, payload: ConfirmReading) -> list[Reply]:
    """[对的] on a saved touch's card: the low-confidence customer or date was right."""
    assert ctx.card is not None  # the dispatcher loaded the clicked card
    undo = Button(texts.UNDO_BUTTON, UndoTouch(payload.touch_id).pack(), ButtonStyle.DANGER)
    return [CardUpdate(questions.without_confirmation(ctx.card, undo))]


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
    undo = Button(texts.UNDO_BUTTON, UndoTouch(touch.id).pack(), ButtonStyle.DANGER)
    confirm = questions.confirmation_field(draft.get("confirm") or [], customer.name, due, ctx.today())
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
            *((confirm,) if confirm else ()),
        ),
        buttons=questions.confirm_buttons(ConfirmReading(touch.id).pack(), undo) if confirm else (undo,),
    )
    return [CardReply(card), *await ctx.hooks.touch_logged(ctx, touch, customer)]


@router.action(UndoTouch)
async def undo(ctx: Ctx, payload: UndoTouch) -> list[Reply]:
    touch = await touch_store.get_touch(ctx.session, payload.touch_id)
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
        ctx.close_card(texts.UNDONE_NOTE),
        Text(texts.UNDONE.format(customer=customer.name)),
        *await ctx.hooks.touch_undone(ctx, touch, customer),
    ]

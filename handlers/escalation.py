"""进度停滞必干预 (SPEC §3.2): stall detection on every touch, escalation to the manager, and
the manager's three answers on the escalation card — [已复盘] with advice, [转交], [暂缓].

After each logged touch the touch is marked *no progress* when its text carries a stall phrase
and, since the customer's previous touch, neither a stage advanced nor a deliverable arrived.
When the last two counted touches both made no progress the customer is flagged 复盘中 and the
team's manager (else the admins) gets the 障碍分析清单 and a card to act on. Touches that count
are those not withdrawn and logged after the customer last came back from a review, so the same
two stalls never escalate twice.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from bot.context import Ctx
from bot.errors import NotPermitted, UserError
from bot.replies import CardReply, Markdown, Reply, Text, ToMember
from bot.router import DialogueState, Router
from cards.model import Button, ButtonStyle, Card, CardAction, CardField, ChoiceMode, new_task_id
from domain.enums import CustomerStatus, EscalationStatus, Role
from domain.parsing.dates import find_due_date
from domain.rules import checklist as checklist_rules
from domain.rules.checklist import ObstacleChecklist, build_checklist, obstacle_key
from domain.rules.stall import ESCALATE_AFTER, find_stall_phrases, is_no_progress, should_escalate
from handlers import texts_escalation as texts
from handlers.dialogue import (
    CANCEL_WORDS,
    AnswerTexts,
    dialogue_data,
    end_dialogue,
    read_text_answer,
    save_state,
)
from handlers.format import evidence_kind_name, month_day
from handlers.sent_cards import close_sent_card
from storage import customers as customer_store
from storage import escalations as store
from storage import libraries, ownership
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage.models import Customer, Escalation, Member, Touch

router = Router("escalation")



class EscalationState(DialogueState):
    ADVICE = "escalation.advice"  # [已复盘]: waiting for the manager's advice
    SNOOZE = "escalation.snooze"  # [暂缓]: waiting for a reason and a resume date


@dataclass(frozen=True)
class StartReview(CardAction, prefix="esc_rv"):
    """[已复盘]: ask the manager for the review's advice."""

    escalation_id: int


@dataclass(frozen=True)
class ChooseNewOwner(CardAction, prefix="esc_tr"):
    """[转交]: offer the team's other reps as the customer's new owner."""

    escalation_id: int


@dataclass(frozen=True)
class TransferTo(CardAction, prefix="esc_to"):
    """Transfer the customer to ``member_id`` (a button), or to the option chosen (a choice card)."""

    escalation_id: int
    member_id: int | None = None


@dataclass(frozen=True)
class CancelTransfer(CardAction, prefix="esc_tx"):
    """Close the new-owner picker without transferring."""


@dataclass(frozen=True)
class StartSnooze(CardAction, prefix="esc_sn"):
    """[暂缓]: ask for a reason and a date to resume."""

    escalation_id: int
MAX_ADVICE_CHARS = 1000
_ADVICE_ANSWER = AnswerTexts(
    cancelled=texts.DIALOGUE_CANCELLED, empty=texts.ADVICE_EMPTY, too_long=texts.ADVICE_TOO_LONG
)
MAX_TRANSFER_BUTTONS = 5  # plus [取消]: WeCom shows at most six buttons


# ------------------------------------------------------------------------------ stall detection


@router.after_touch
async def evaluate_touch(ctx: Ctx, touch: Touch, customer: Customer) -> list[Reply]:
    """Mark the touch's progress; escalate when it completes a run of stalls."""
    await _mark_progress(ctx, touch, customer)
    if not touch.no_progress:
        return []
    return await _maybe_escalate(ctx, touch, customer)


async def _mark_progress(ctx: Ctx, touch: Touch, customer: Customer) -> None:
    """Set the touch's stall phrases and whether it made no progress since the touch before it."""
    phrases = _stall_phrases(touch, ctx.config.rules.stall_phrases)
    no_progress = False
    if phrases:
        previous = await store.previous_touch(ctx.session, touch)
        since = previous.occurred_at if previous is not None else customer.created_at
        no_progress = is_no_progress(
            phrases,
            stage_advanced=await store.stage_advanced_between(ctx.session, customer.id, since, touch.occurred_at),
            milestone_completed=await store.milestone_completed_between(
                ctx.session, customer.id, since, touch.occurred_at
            ),
        )
    if phrases != touch.stall_phrases or no_progress != touch.no_progress:  # most touches: nothing to write
        touch.stall_phrases = phrases
        touch.no_progress = no_progress
        await ctx.session.flush()


@router.after_undo
async def withdraw_on_undo(ctx: Ctx, touch: Touch, customer: Customer) -> list[Reply]:
    """A stall touch was undone while its escalation still waits: the escalation is withdrawn."""
    latest = await store.latest_escalation(ctx.session, customer.id)
    if latest is None or latest.status is not EscalationStatus.OPEN:
        return []
    if touch.id not in (latest.checklist or {}).get("touch_ids", []):
        return []
    store.close_escalation(latest, customer, status=EscalationStatus.WITHDRAWN, by=ctx.acting.id, now=ctx.now())
    return [
        *await _close_cards(ctx, latest, texts.WITHDRAWN_NOTE),
        Text(texts.WITHDRAWN_REP.format(customer=customer.name)),
    ]


def _stall_phrases(touch: Touch, configured: tuple[str, ...]) -> list[str]:
    # Each part on its own, so that words are never joined across the boundary of two fields.
    found: list[str] = []
    for part in (touch.raw_text, touch.summary, touch.next_action):
        found += find_stall_phrases(part or "", configured)
    return list(dict.fromkeys(found))


async def _maybe_escalate(ctx: Ctx, touch: Touch, customer: Customer) -> list[Reply]:
    if customer.status is CustomerStatus.CLOSED:
        return []
    if customer.snoozed_until is not None and ctx.today() < customer.snoozed_until:
        return []  # 暂缓: the manager already decided to wait
    latest = await store.latest_escalation(ctx.session, customer.id)
    if latest is not None and latest.status is EscalationStatus.OPEN:
        return []
    counted = await store.counted_touches(
        ctx.session, customer.id, after=_back_from_review(ctx, latest, customer), limit=ESCALATE_AFTER
    )
    # An earlier touch was judged against the touch before it at the time; if that one has been
    # withdrawn since, judge it again against the touches that still stand.
    for earlier in counted[1:]:
        await _mark_progress(ctx, earlier, customer)
    if not should_escalate([t.no_progress for t in counted]):
        return []
    return await _escalate(ctx, customer, counted, touch)


def _back_from_review(ctx: Ctx, latest: Escalation | None, customer: Customer) -> dt.datetime | None:
    """When the customer last came back from a review: only touches after it count."""
    if latest is None:
        return None
    since = latest.resolved_at or latest.raised_at
    if latest.status is EscalationStatus.SNOOZED and customer.snoozed_until is not None:
        resume = dt.datetime.combine(customer.snoozed_until, dt.time(), tzinfo=ctx.tz)
        since = max(since, resume)
    return since


async def _escalate(ctx: Ctx, customer: Customer, counted: list[Touch], touch: Touch) -> list[Reply]:
    owner = await member_store.get_member(ctx.session, customer.owner_id)
    assert owner is not None
    reviewers = await store.reviewers_for(ctx.session, owner)
    sheet = await _checklist(ctx, customer, owner)
    task_ids = [new_task_id("esc") for _ in reviewers]
    record: dict[str, Any] = sheet.to_dict()
    record["touch_ids"] = [t.id for t in counted]
    record["card_task_ids"] = task_ids
    escalation = await store.raise_escalation(
        ctx.session,
        customer=customer,
        manager_id=reviewers[0].id if reviewers else None,
        checklist=record,
        task_id=task_ids[0] if task_ids else None,
        now=ctx.now(),
    )
    run_phrases = dict.fromkeys(p for t in reversed(counted) for p in t.stall_phrases or ())
    phrases = texts.LIST_SEPARATOR.join(run_phrases) or texts.NONE
    replies: list[Reply] = []
    for reviewer, task_id in zip(reviewers, task_ids, strict=True):
        to = ToMember(reviewer.id)
        title = texts.CHECKLIST_TITLE.format(customer=customer.name)
        replies.append(Markdown(title, f"### {title}\n" + checklist_markdown(sheet), to=to))
        replies.append(CardReply(_escalation_card(task_id, escalation.id, sheet), to=to))
    if reviewers:
        note = texts.ESCALATED_REP.format(
            customer=customer.name, phrases=phrases, reviewer=texts.LIST_SEPARATOR.join(r.name for r in reviewers)
        )
    else:
        note = texts.ESCALATED_REP_NO_REVIEWER.format(customer=customer.name, phrases=phrases)
    replies.append(Text(note, to=ToMember(touch.member_id)))
    return replies


# ------------------------------------------------------------------------------ the checklist


async def _checklist(ctx: Ctx, customer: Customer, owner: Member) -> ObstacleChecklist:
    stage_names = await pipeline_store.stage_names(ctx.session)
    touches = await store.counted_touches(ctx.session, customer.id, after=None, limit=checklist_rules.MAX_TOUCHES)
    obstacles = await store.obstacles_of(ctx.session, customer.id)
    alerts = await store.open_alerts_of(ctx.session, customer.id)
    library: dict[str, checklist_rules.LibraryEntry] = {}
    for option in {o.option for o, _e, _s in obstacles} | ({customer.key_obstacle} if customer.key_obstacle else set()):
        entry = await libraries.obstacle_response(ctx.session, option)
        if entry is None and obstacle_key(option) != option:
            entry = await libraries.obstacle_response(ctx.session, obstacle_key(option))
        if entry is not None:
            library[obstacle_key(option)] = checklist_rules.LibraryEntry(
                obstacle=entry.obstacle,
                guidance=entry.guidance,
                review_questions=tuple(str(q) for q in entry.review_questions or ()),
            )
    return build_checklist(
        checklist_rules.ChecklistInput(
            customer=customer.name,
            owner=owner.name,
            stage=stage_names.get(customer.stage_id, ""),
            stage_entered_on=ctx.local_date(customer.stage_entered_at),
            today=ctx.today(),
            touches=[
                checklist_rules.TouchItem(
                    occurred_on=ctx.local_date(t.occurred_at),
                    channel=t.channel.value,
                    summary=t.summary,
                    stall_phrases=tuple(t.stall_phrases or ()),
                    no_progress=t.no_progress,
                )
                for t in touches
            ],
            obstacles=[
                checklist_rules.ObstacleItem(
                    option=o.option,
                    status=o.status.value,
                    answered_on=ctx.local_date(o.answered_at),
                    required_evidence=o.required_evidence,
                    evidence=(
                        (checklist_rules.EvidenceItem(e.kind.value, ctx.local_date(e.created_at), e.filename),)
                        if e is not None
                        else ()
                    ),
                    needs_support=s is not None,
                    support_answered=s is not None and s.first_reply_at is not None,
                )
                for o, e, s in obstacles
            ],
            alerts=[
                checklist_rules.AlertItem(
                    rule=a.rule,
                    severity=a.severity,
                    raised_on=ctx.local_date(a.raised_at),
                    text=str((a.details or {}).get("title") or (a.details or {}).get("text") or ""),
                )
                for a in alerts
            ],
            library=library,
            default_questions=texts.DEFAULT_QUESTIONS,
            key_obstacle=customer.key_obstacle or "",
        )
    )


def _touch_lines(sheet: ObstacleChecklist) -> list[str]:
    lines = []
    for t in sheet.touches:
        line = texts.TOUCH_LINE.format(date=month_day(t.occurred_on), channel=t.channel, summary=t.summary[:60])
        if t.no_progress and t.stall_phrases:
            line += texts.TOUCH_STALL_MARK.format(phrases=texts.LIST_SEPARATOR.join(t.stall_phrases))
        lines.append(line)
    return lines or [texts.NONE]


def _obstacle_lines(sheet: ObstacleChecklist) -> list[str]:
    lines = []
    for o in sheet.obstacles:
        status = texts.OBSTACLE_STATUS.get(o.status, o.status).format(required=o.required_evidence or "凭证")
        if o.needs_support:
            status += texts.OBSTACLE_SUPPORT_ANSWERED if o.support_answered else texts.OBSTACLE_SUPPORT_WAITING
        evidence = texts.LIST_SEPARATOR.join(
            texts.EVIDENCE_LINE.format(
                kind=evidence_kind_name(e.kind),
                date=month_day(e.created_on),
                filename=f" {e.filename}" if e.filename else "",
            )
            for e in o.evidence
        )
        lines.append(texts.OBSTACLE_LINE.format(option=o.option, status=status, evidence=evidence or texts.NONE))
    return lines or [texts.NONE]


def _alert_lines(sheet: ObstacleChecklist) -> list[str]:
    return [
        texts.ALERT_LINE.format(
            name=a.text or texts.ALERT_RULE_NAMES.get(a.rule, a.rule),
            severity=texts.ALERT_SEVERITY.get(a.severity, a.severity),
            date=month_day(a.raised_on),
        )
        for a in sheet.alerts
    ] or [texts.NONE]


def checklist_markdown(sheet: ObstacleChecklist) -> str:
    """The whole 障碍分析清单 as markdown (readable on every platform, whatever its card limits)."""

    def section(label: str, lines: list[str], numbered: bool = False) -> list[str]:
        items = [f"{i}. {line}" if numbered else f"- {line}" for i, line in enumerate(lines, 1)]
        return ["", f"**{label}**", *items]

    out = [
        f"- {texts.FIELD_CUSTOMER}:{sheet.customer}({texts.FIELD_OWNER}:{sheet.owner})",
        f"- {texts.FIELD_STAGE}:{texts.STAGE_VALUE.format(stage=sheet.stage, days=sheet.days_in_stage)}",
        f"- {texts.FIELD_STALL}:{texts.LIST_SEPARATOR.join(sheet.stall_phrases) or texts.NONE}",
    ]
    out += section(texts.FIELD_TOUCHES, _touch_lines(sheet))
    out += section(texts.FIELD_OBSTACLES, _obstacle_lines(sheet))
    out += section(texts.FIELD_ALERTS, _alert_lines(sheet))
    if sheet.guidance:
        out += section(
            texts.FIELD_GUIDANCE,
            [texts.GUIDANCE_LINE.format(obstacle=g.obstacle, guidance=g.guidance) for g in sheet.guidance if g.guidance],
        )
    out += section(texts.FIELD_QUESTIONS, list(sheet.questions), numbered=True)
    return "\n".join(out)


def _escalation_card(task_id: str, escalation_id: int, sheet: ObstacleChecklist) -> Card:
    # Short fields first: platforms with tight card layouts show those and fold the rest.
    fields = [
        CardField(texts.FIELD_CUSTOMER, sheet.customer),
        CardField(texts.FIELD_OWNER, sheet.owner),
        CardField(texts.FIELD_STAGE, texts.STAGE_VALUE.format(stage=sheet.stage, days=sheet.days_in_stage)),
        CardField(texts.FIELD_STALL, texts.LIST_SEPARATOR.join(sheet.stall_phrases) or texts.NONE),
        CardField(texts.FIELD_ALERTS, texts.LIST_SEPARATOR.join(_alert_lines(sheet))),
        CardField(texts.FIELD_TOUCHES, "\n".join(_touch_lines(sheet))),
        CardField(texts.FIELD_OBSTACLES, "\n".join(_obstacle_lines(sheet))),
        CardField(texts.FIELD_QUESTIONS, "\n".join(f"{i}. {q}" for i, q in enumerate(sheet.questions, 1))),
    ]
    return Card(
        task_id=task_id,
        title=texts.CARD_TITLE.format(customer=sheet.customer),
        body=texts.CARD_BODY.format(owner=sheet.owner, customer=sheet.customer),
        fields=tuple(fields),
        buttons=(
            Button(texts.BUTTON_REVIEWED, StartReview(escalation_id).pack(), ButtonStyle.PRIMARY),
            Button(texts.BUTTON_TRANSFER, ChooseNewOwner(escalation_id).pack()),
            Button(texts.BUTTON_SNOOZE, StartSnooze(escalation_id).pack()),
        ),
    )


# ------------------------------------------------------------------------------ manager actions


@dataclass
class _Case:
    escalation: Escalation
    customer: Customer
    owner: Member


async def _open_case(ctx: Ctx, escalation_id: int) -> _Case:
    """The escalation, if it is still open and the acting member may handle it."""
    escalation = await store.get_escalation(ctx.session, escalation_id)
    customer = await customer_store.get_customer(ctx.session, escalation.customer_id) if escalation else None
    owner = await member_store.get_member(ctx.session, customer.owner_id) if customer else None
    if escalation is None or customer is None or owner is None:
        raise UserError(texts.ESCALATION_GONE)
    if not await store.may_review(ctx.session, ctx.acting, owner):
        refusal = texts.NOT_PERMITTED_OWN if owner.id == ctx.acting.id else texts.NOT_PERMITTED
        raise NotPermitted(refusal.format(customer=customer.name))
    if escalation.status is not EscalationStatus.OPEN:
        raise UserError(texts.ALREADY_HANDLED.format(status=texts.STATUS_NAMES[escalation.status.value]))
    return _Case(escalation, customer, owner)


async def _close_cards(ctx: Ctx, escalation: Escalation, note: str) -> list[Reply]:
    """Close every card sent for the escalation (one per reviewer) with what was decided."""
    updates: list[Reply] = []
    for task_id in (escalation.checklist or {}).get("card_task_ids") or [escalation.task_id]:
        if (update := await close_sent_card(ctx, task_id or "", note, to_holder=True)) is not None:
            updates.append(update)
    return updates


@router.action(StartReview, closes_card=False)
async def start_review(ctx: Ctx, payload: StartReview) -> list[Reply]:
    case = await _open_case(ctx, payload.escalation_id)
    await save_state(ctx, EscalationState.ADVICE, {"escalation_id": case.escalation.id})
    return [Text(texts.ASK_ADVICE.format(owner=case.owner.name))]


@router.dialogue(EscalationState.ADVICE)
async def receive_advice(ctx: Ctx) -> list[Reply]:
    text = await read_text_answer(ctx, _ADVICE_ANSWER, limit=MAX_ADVICE_CHARS)
    if isinstance(text, list):
        return text
    case = await _case_of_dialogue(ctx)
    if isinstance(case, list):
        return case
    store.close_escalation(
        case.escalation, case.customer, status=EscalationStatus.REVIEWED, by=ctx.acting.id, now=ctx.now(), advice=text
    )
    await end_dialogue(ctx)
    return [
        *await _close_cards(ctx, case.escalation, texts.CLOSED_REVIEWED),
        Text(texts.ADVICE_DONE.format(owner=case.owner.name, customer=case.customer.name)),
        Text(
            texts.ADVICE_TO_REP.format(manager=ctx.acting.name, customer=case.customer.name, advice=text),
            to=ToMember(case.owner.id),
        ),
    ]


async def _case_of_dialogue(ctx: Ctx) -> _Case | list[Reply]:
    """The open escalation a dialogue is about; if it is gone or settled, end the dialogue."""
    data = dialogue_data(ctx, *EscalationState) or {}
    try:
        return await _open_case(ctx, int(data.get("escalation_id", -1)))
    except UserError as exc:
        await end_dialogue(ctx)
        return [Text(exc.message)]


@router.action(ChooseNewOwner, closes_card=False)
async def choose_new_owner(ctx: Ctx, payload: ChooseNewOwner) -> list[Reply]:
    case = await _open_case(ctx, payload.escalation_id)
    candidates = [m for m in await store.team_reps(ctx.session, case.owner.team_id) if m.id != case.owner.id]
    if not candidates:
        raise UserError(texts.TRANSFER_NO_ONE.format(customer=case.customer.name))
    escalation_id = case.escalation.id
    title = texts.TRANSFER_TITLE.format(customer=case.customer.name)
    body = texts.TRANSFER_BODY.format(owner=case.owner.name)
    if len(candidates) <= MAX_TRANSFER_BUTTONS:
        card = Card(
            task_id=new_task_id("esct"),
            title=title,
            body=body,
            buttons=tuple(Button(m.name, TransferTo(escalation_id, m.id).pack()) for m in candidates)
            + (Button(texts.BUTTON_CANCEL, CancelTransfer().pack()),),
        )
    else:
        card = Card(
            task_id=new_task_id("esct"),
            title=title,
            body=body,
            choice_mode=ChoiceMode.SINGLE,
            options=tuple(Button(m.name, str(m.id)) for m in candidates),
            submit=Button(texts.TRANSFER_SUBMIT, TransferTo(escalation_id).pack(), ButtonStyle.PRIMARY),
        )
    return [CardReply(card)]


@router.action(TransferTo)
async def transfer(ctx: Ctx, payload: TransferTo) -> list[Reply]:
    case = await _open_case(ctx, payload.escalation_id)
    chosen = str(payload.member_id) if payload.member_id is not None else next(iter(ctx.chosen), "")
    new_owner = await member_store.get_member(ctx.session, int(chosen)) if chosen.isdigit() else None
    if (
        new_owner is None
        or not new_owner.active
        or new_owner.role is not Role.REP
        or new_owner.id == case.owner.id
        or (case.owner.team_id is not None and new_owner.team_id != case.owner.team_id)
    ):
        raise UserError(texts.TRANSFER_INVALID)
    customer = case.customer
    if await store.owner_has_customer_named(ctx.session, new_owner.id, customer.name):
        raise UserError(texts.TRANSFER_NAME_TAKEN.format(rep=new_owner.name, customer=customer.name))
    old_owner = case.owner
    await ownership.record_new_owner(ctx.session, customer.id, new_owner.id, now=ctx.now())
    customer.owner_id = new_owner.id  # stage, history, touches and evidence stay with the customer
    store.close_escalation(case.escalation, customer, status=EscalationStatus.TRANSFERRED, by=ctx.acting.id, now=ctx.now())
    stage = (await pipeline_store.stage_names(ctx.session)).get(customer.stage_id, "")
    note = texts.CLOSED_TRANSFERRED.format(new=new_owner.name)
    replies: list[Reply] = [ctx.close_card(note), *await _close_cards(ctx, case.escalation, note)]
    replies += [
        Text(texts.TRANSFER_DONE.format(customer=customer.name, old=old_owner.name, new=new_owner.name)),
        Text(
            texts.TRANSFER_TO_OLD.format(manager=ctx.acting.name, customer=customer.name, new=new_owner.name),
            to=ToMember(old_owner.id),
        ),
        Text(
            texts.TRANSFER_TO_NEW.format(manager=ctx.acting.name, customer=customer.name, stage=stage),
            to=ToMember(new_owner.id),
        ),
    ]
    return replies


@router.action(CancelTransfer)
async def cancel_transfer(ctx: Ctx, payload: CancelTransfer) -> list[Reply]:
    return [ctx.close_card(texts.TRANSFER_CANCELLED)]


@router.action(StartSnooze, closes_card=False)
async def start_snooze(ctx: Ctx, payload: StartSnooze) -> list[Reply]:
    case = await _open_case(ctx, payload.escalation_id)
    await save_state(ctx, EscalationState.SNOOZE, {"escalation_id": case.escalation.id})
    return [Text(texts.ASK_SNOOZE)]


@router.dialogue(EscalationState.SNOOZE)
async def receive_snooze(ctx: Ctx) -> list[Reply]:
    text = ctx.event.text.strip()
    if text in CANCEL_WORDS:
        await end_dialogue(ctx)
        return [Text(texts.DIALOGUE_CANCELLED)]
    today = ctx.today()
    request = parse_snooze(text, today)
    # Refusals keep the question open so the manager can simply answer again.
    if request.resume_on is None:
        raise UserError(texts.SNOOZE_NO_DATE)
    if request.resume_on <= today:
        raise UserError(texts.SNOOZE_NOT_FUTURE.format(date=month_day(request.resume_on)))
    if not request.reason:
        raise UserError(texts.SNOOZE_NO_REASON.format(date=month_day(request.resume_on)))
    case = await _case_of_dialogue(ctx)
    if isinstance(case, list):
        return case
    store.snooze_customer(case.customer, until=request.resume_on, reason=request.reason)
    store.close_escalation(
        case.escalation, case.customer, status=EscalationStatus.SNOOZED, by=ctx.acting.id, now=ctx.now()
    )
    await end_dialogue(ctx)
    date = month_day(request.resume_on)
    return [
        *await _close_cards(ctx, case.escalation, texts.CLOSED_SNOOZED.format(date=date)),
        Text(texts.SNOOZE_DONE.format(customer=case.customer.name, date=date, reason=request.reason, owner=case.owner.name)),
        Text(
            texts.SNOOZE_TO_REP.format(manager=ctx.acting.name, customer=case.customer.name, date=date, reason=request.reason),
            to=ToMember(case.owner.id),
        ),
    ]


# ------------------------------------------------------------------------------ snooze parsing


@dataclass(frozen=True)
class SnoozeRequest:
    reason: str
    resume_on: dt.date | None


_LEADING_RESUME = re.compile(r"^\s*(?:再?恢复跟进|恢复跟进|恢复|重新跟进|再跟进|再跟|再联系|再说|重启|继续跟进)")
_TRAILING_UNTIL = re.compile(r"(?:暂缓到|暂缓至|暂停到|暂停至|等到|直到|到|至)\s*$")
_SEPARATORS = re.compile(r"[\s,,。;;、::!!]+")


def parse_snooze(text: str, today: dt.date) -> SnoozeRequest:
    """Reason and resume date from e.g. "客户出国两周,12月10日恢复" (a past date is kept)."""
    due = find_due_date(text, today)
    if due is None:
        return SnoozeRequest(reason=_clean_reason(text), resume_on=None)
    before = _TRAILING_UNTIL.sub("", text[: due.span[0]])
    after = _LEADING_RESUME.sub("", text[due.span[1] :], count=1)
    return SnoozeRequest(reason=_clean_reason(f"{before},{after}"), resume_on=due.date)


def _clean_reason(text: str) -> str:
    return ",".join(part for part in _SEPARATORS.split(text) if part)[:256]

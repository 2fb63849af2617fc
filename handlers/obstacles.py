"""障碍穿透提问: the mandatory obstacle question at every stage change (SPEC §4.2).

A requested stage change waits for its obstacle card. One tap on an option commits the move and
stores the obstacle; options that demand evidence (② 技术适配存疑, ④ 合同条款分歧) keep it waiting
until that evidence arrives — the next attachment right away, or a later one whose caption names
the customer or the evidence — and a scheduled job reminds the rep. The confirmation card offers
[需跨部门支持] as an optional second tap: a supporter is notified, and their first substantive text
reply is timed and relayed to the rep.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from bot.context import Ctx
from bot.errors import UserError
from bot.events import MEDIA_KINDS
from bot.replies import CardReply, Reply, Text, ToMember
from bot.router import DialogueState, Router
from cards.model import Button, ButtonStyle, Card, CardAction, CardField, new_task_id
from domain.enums import EvidenceKind, ObstacleStatus, Role, StageChangeStatus
from handlers import texts_stages as texts
from handlers.attachments import EVIDENCE_KIND, store_staged
from handlers.customers import find_customer_named
from handlers.dialogue import dialogue_data, end_dialogue, save_state
from handlers.format import evidence_kind_name
from storage import customers as customer_store
from storage import libraries
from storage import members as member_store
from storage import obstacles as obstacle_store
from storage import stages as stage_store
from storage import touches as touch_store
from storage.media import StoredMedia
from storage.models import Customer, Evidence, Obstacle, Stage, StageChange

router = Router("obstacles")



class ObstacleState(DialogueState):
    EVIDENCE = "obstacle.evidence"  # the next attachment is the evidence an answered obstacle demands


@dataclass(frozen=True)
class AnswerObstacle(CardAction, prefix="ob"):
    """The obstacle card's option ``option`` (its index) was chosen: commit the stage change."""

    change_id: int
    option: int


@dataclass(frozen=True)
class WithdrawChange(CardAction, prefix="obx"):
    """Withdraw the pending stage change the obstacle card was sent for."""

    change_id: int


@dataclass(frozen=True)
class AskSupport(CardAction, prefix="obs"):
    """需跨部门支持: hand the obstacle to a supporter."""

    obstacle_id: int

# Obstacle options that demand evidence before the obstacle counts as open (option text → evidence).
REQUIRED_EVIDENCE: dict[str, str] = {
    "技术适配存疑": "技术对接会议纪要",
    "合同条款分歧": "合同争议条款截图",
}
# Words in a caption that name each kind of evidence.
EVIDENCE_WORDS: dict[str, tuple[str, ...]] = {
    "技术对接会议纪要": ("技术对接会议纪要", "会议纪要", "对接纪要", "纪要"),
    "合同争议条款截图": ("合同争议条款截图", "争议条款", "条款截图", "合同截图", "合同条款"),
}
# "Later" answers while the bot waits for evidence: stop waiting, remind later.
LATER_WORDS = frozenset({"稍后", "晚点", "晚点发", "稍后发", "稍后补", "待会", "待会发", "等会", "等会发", "取消", "跳过", "算了"})
# Supporter replies that acknowledge without answering: they do not stop the resolution clock.
ACKNOWLEDGEMENTS = (
    "好的收到", "收到了", "收到", "好的", "好滴", "好嘞", "好", "okay", "ok", "嗯嗯", "嗯", "哦", "噢", "了解", "明白",
    "知道了", "知道", "行", "可以", "没问题", "稍等", "马上看", "马上", "我看看", "看看", "在看", "谢谢", "多谢",
    "👌", "👍", "🙏", "哈", "啦", "呀", "的", "了", "1",
)  # fmt: skip
_ACK_NOISE_RE = re.compile(r"[\s,.;:!?~、。,;:!?…~\-—()()\[\]【】\"'“”‘’]+")


def evidence_named(caption: str) -> set[str]:
    """Which demanded evidence kinds a caption names."""
    return {evidence for evidence, words in EVIDENCE_WORDS.items() if any(word in caption for word in words)}


def is_substantive(text: str) -> bool:
    """False for replies that only acknowledge (收到 / 好的 / ok / 嗯 …), True for anything else."""
    rest = _ACK_NOISE_RE.sub("", text.strip().lower())
    while rest:
        for word in ACKNOWLEDGEMENTS:
            if rest.startswith(word):
                rest = rest[len(word) :]
                break
        else:
            return True
    return False


def format_duration(delta: dt.timedelta) -> str:
    """"3天2小时", "5小时20分钟", "20分钟" — coarse, as people say it."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return texts.DURATION_DAYS_HOURS.format(days=days, hours=hours) if hours else texts.DURATION_DAYS.format(days=days)
    if hours:
        return (texts.DURATION_HOURS_MINUTES.format(hours=hours, minutes=mins) if mins
                else texts.DURATION_HOURS.format(hours=hours))
    return texts.DURATION_MINUTES.format(minutes=mins) if mins else texts.DURATION_MOMENT


# --- attachments as evidence (shared with stage deliverables) ------------------------------------------


async def store_attachment(ctx: Ctx) -> tuple[StoredMedia, EvidenceKind]:
    """Verify and store the event's attachment; a rejected file is refused and changes nothing."""
    ref = ctx.event.media
    kind = EVIDENCE_KIND[ctx.event.kind]
    if ref is None or not ref.staged_sha256:
        raise UserError(texts.EVIDENCE_MISSING_FILE, detail="attachment not staged")
    stored = await store_staged(ctx, sha256=ref.staged_sha256, kind=kind, filename=ref.filename, mime=ref.mime)
    return stored, kind


async def save_evidence(
    ctx: Ctx, customer: Customer, stored: StoredMedia, kind: EvidenceKind, attributes: dict[str, Any]
) -> Evidence:
    """Store an attachment as evidence of the customer (not of a touch), with what it is for."""
    return await touch_store.add_media_evidence(
        ctx.session,
        stored=stored,
        kind=kind,
        customer_id=customer.id,
        member_id=ctx.acting.id,
        touch_id=None,
        note=ctx.event.text,
        now=ctx.now(),
        source_event_id=ctx.inbox_id,
        purpose=attributes,
    )


# --- the obstacle card -------------------------------------------------------------------------


def obstacle_card(
    change: StageChange, customer: Customer, from_stage: Stage, to_stage: Stage, options: list[str]
) -> Card:
    """当前最大障碍是? — one button per option (one tap commits), plus withdrawing the change."""
    backwards = to_stage.position < from_stage.position
    direction = texts.DIRECTION_BACKWARD if backwards else texts.DIRECTION_FORWARD
    buttons = [
        Button(
            texts.OPTION_LABEL.format(mark=texts.OPTION_MARKS[i] if i < len(texts.OPTION_MARKS) else f"{i + 1}.",
                                      option=option),
            AnswerObstacle(change.id, i).pack(),
            ButtonStyle.PRIMARY if i == 0 else ButtonStyle.DEFAULT,
        )
        for i, option in enumerate(options)
    ]
    buttons.append(Button(texts.WITHDRAW_BUTTON, WithdrawChange(change.id).pack(), ButtonStyle.DANGER))
    fields = [
        CardField(texts.FIELD_CUSTOMER, customer.name),
        CardField(texts.FIELD_CHANGE, texts.CHANGE_LINE.format(from_stage=from_stage.name, to_stage=to_stage.name)),
    ]
    if change.reason:
        fields.append(CardField(texts.FIELD_REASON if backwards else texts.FIELD_NOTE, change.reason))
    return Card(
        task_id=change.task_id or new_task_id("obst"),
        title=texts.OBSTACLE_TITLE,
        body=texts.OBSTACLE_BODY.format(
            customer=customer.name, from_stage=from_stage.name, direction=direction, to_stage=to_stage.name
        ),
        fields=tuple(fields),
        buttons=tuple(buttons),
    )


async def _pending_change_for_click(ctx: Ctx, change_id: int) -> tuple[StageChange, Customer]:
    change = await stage_store.get_change(ctx.session, change_id)
    if change is None or change.member_id != ctx.acting.id or change.status is not StageChangeStatus.AWAITING_OBSTACLE:
        raise UserError(texts.CHANGE_GONE, detail="stage change missing, not the actor's, or not pending")
    customer = await customer_store.get_customer(ctx.session, change.customer_id)
    if customer is None:
        raise UserError(texts.CHANGE_GONE, detail="customer of the stage change vanished")
    return change, customer


async def _may_move(ctx: Ctx, customer: Customer) -> bool:
    """Least privilege, checked again on the answer: the member's own customer, a customer of the
    team they manage, or any customer for an admin (as ``customers_visible_to``)."""
    member = ctx.acting
    if customer.owner_id == member.id or member.role is Role.ADMIN:
        return True
    if member.role is not Role.MANAGER or member.team_id is None:
        return False
    owner = await member_store.get_member(ctx.session, customer.owner_id)
    return owner is not None and owner.team_id == member.team_id


@router.action(AnswerObstacle)
async def answer_obstacle(ctx: Ctx, payload: AnswerObstacle) -> list[Reply]:
    """The obstacle card was answered: commit the move, store the obstacle, ask for its evidence."""
    change, customer = await _pending_change_for_click(ctx, payload.change_id)
    if not await _may_move(ctx, customer):
        # Transferred to someone outside the member's scope since the request: it no longer applies.
        await stage_store.cancel_change(ctx.session, change)
        return [ctx.close_card(texts.CHANGE_STALE_NOTE),
                Text(texts.CHANGE_NOT_YOURS.format(customer=customer.name))]
    if customer.stage_id != change.from_stage_id:
        # Someone else moved the customer meanwhile: this request no longer applies.
        await stage_store.cancel_change(ctx.session, change)
        current = await stage_store.get_stage(ctx.session, customer.stage_id)
        name = current.name if current else "-"
        return [ctx.close_card(texts.CHANGE_STALE_NOTE),
                Text(texts.CHANGE_STALE.format(customer=customer.name, stage=name))]
    options = stage_store.obstacle_options(await stage_store.get_pipeline(ctx.session, customer.pipeline_id))
    index = payload.option
    if not 0 <= index < len(options):
        raise UserError(texts.OPTION_GONE, detail=f"obstacle option {index} out of range")
    option = options[index]
    from_stage = await stage_store.get_stage(ctx.session, change.from_stage_id)
    to_stage = await stage_store.get_stage(ctx.session, change.to_stage_id)
    assert from_stage is not None and to_stage is not None
    now = ctx.now()
    if not await stage_store.commit_change(ctx.session, change, customer, now):
        raise UserError(texts.CHANGE_GONE, detail="stage change committed concurrently")
    required = REQUIRED_EVIDENCE.get(option)
    obstacle = await obstacle_store.record_obstacle(
        ctx.session,
        customer_id=customer.id,
        stage_id=to_stage.id,
        stage_change_id=change.id,
        member_id=ctx.acting.id,
        option=option,
        required_evidence=required,
        now=now,
    )
    await obstacle_store.resolve_open_obstacles(ctx.session, customer.id, now, keep=obstacle.id)
    direction = texts.DIRECTION_BACKWARD if to_stage.position < from_stage.position else texts.DIRECTION_FORWARD
    replies: list[Reply] = [
        ctx.close_card(texts.ANSWERED_NOTE.format(option=option)),
        CardReply(await _moved_card(ctx, customer, from_stage, to_stage, obstacle, direction)),
    ]
    if required:
        replies.append(Text(texts.ASK_EVIDENCE.format(
            option=option, customer=customer.name, evidence=required, hours=ctx.config.rules.obstacle_reminder_hours
        )))
        await _wait_for_evidence(ctx, obstacle)
    if customer.owner_id != ctx.acting.id:
        replies.append(Text(
            texts.OWNER_NOTIFIED.format(actor=ctx.acting.name, customer=customer.name, direction=direction,
                                        stage=to_stage.name, option=option),
            to=ToMember(customer.owner_id),
        ))
    return replies


async def _moved_card(
    ctx: Ctx, customer: Customer, from_stage: Stage, to_stage: Stage, obstacle: Obstacle, direction: str
) -> Card:
    fields = [
        CardField(texts.FIELD_CHANGE, texts.CHANGE_LINE.format(from_stage=from_stage.name, to_stage=to_stage.name)),
        CardField(texts.FIELD_OBSTACLE, obstacle.option),
    ]
    if obstacle.required_evidence:
        fields.append(CardField(texts.FIELD_EVIDENCE_NEEDED, obstacle.required_evidence))
    guidance = await libraries.obstacle_response(ctx.session, obstacle.option)
    if guidance is not None and guidance.guidance.strip():
        fields.append(CardField(texts.FIELD_GUIDANCE, guidance.guidance.strip()[:200]))
    return Card(
        task_id=new_task_id("moved"),
        title=texts.MOVED_TITLE.format(direction=direction, stage=to_stage.name, customer=customer.name),
        body=texts.MOVED_BODY,
        fields=tuple(fields),
        buttons=(Button(texts.SUPPORT_BUTTON, AskSupport(obstacle.id).pack()),),
    )


async def _wait_for_evidence(ctx: Ctx, obstacle: Obstacle) -> None:
    """Take the rep's next attachment as the evidence — unless another dialogue is in progress."""
    if ctx.dialogue is not None and ctx.dialogue.state != ObstacleState.EVIDENCE:
        return  # never break off, say, a half-logged touch; the caption path still works
    await save_state(
        ctx, ObstacleState.EVIDENCE, {"obstacle_id": obstacle.id},
        idle_minutes=ctx.config.touch.evidence_window_minutes,
    )


@router.action(WithdrawChange)
async def withdraw_change(ctx: Ctx, payload: WithdrawChange) -> list[Reply]:
    change, customer = await _pending_change_for_click(ctx, payload.change_id)
    await stage_store.cancel_change(ctx.session, change)
    return [ctx.close_card(texts.WITHDRAWN_NOTE), Text(await withdrawn_text(ctx, change, customer))]


async def withdrawn_text(ctx: Ctx, change: StageChange, customer: Customer) -> str:
    from_stage = await stage_store.get_stage(ctx.session, change.from_stage_id)
    to_stage = await stage_store.get_stage(ctx.session, change.to_stage_id)
    return texts.WITHDRAWN.format(
        customer=customer.name, from_stage=from_stage.name if from_stage else "-",
        to_stage=to_stage.name if to_stage else "-",
    )


# --- the demanded evidence ----------------------------------------------------------------------


async def _link(ctx: Ctx, obstacle: Obstacle, customer: Customer) -> list[Reply]:
    stored, kind = await store_attachment(ctx)
    evidence = await save_evidence(
        ctx, customer, stored, kind, {"obstacle_id": obstacle.id, "evidence": obstacle.required_evidence}
    )
    if not await obstacle_store.attach_evidence(ctx.session, obstacle, evidence.id):
        raise UserError(texts.CHANGE_GONE, detail="obstacle no longer awaiting evidence")
    return [Text(texts.EVIDENCE_LINKED.format(
        kind=evidence_kind_name(kind), customer=customer.name,
        evidence=obstacle.required_evidence, option=obstacle.option,
    ))]


@router.dialogue(ObstacleState.EVIDENCE, media=True)
async def evidence_follow_up(ctx: Ctx) -> list[Reply] | None:
    """Right after ②/④: the next attachment is the evidence; "稍后" defers; other text passes on."""
    data = dialogue_data(ctx, ObstacleState.EVIDENCE) or {}
    obstacle = await obstacle_store.get_obstacle(ctx.session, int(data.get("obstacle_id", -1)))
    await end_dialogue(ctx)
    if obstacle is None or obstacle.status is not ObstacleStatus.AWAITING_EVIDENCE:
        return None  # not the evidence: the dispatcher routes it as usual
    customer = await customer_store.get_customer(ctx.session, obstacle.customer_id)
    assert customer is not None
    if ctx.event.kind in MEDIA_KINDS:
        if await _names_another_customer(ctx, customer):
            return None  # not the evidence: the dispatcher routes it as usual
        return await _link(ctx, obstacle, customer)
    if ctx.event.text.strip() in LATER_WORDS:
        return [Text(texts.EVIDENCE_LATER.format(customer=customer.name, evidence=obstacle.required_evidence))]
    return None  # not the evidence: the dispatcher routes it as usual


async def _names_another_customer(ctx: Ctx, customer: Customer) -> bool:
    caption = ctx.event.text.strip()
    if not caption:
        return False
    named = (await find_customer_named(ctx, caption)).customer
    return named is not None and named.id != customer.id


@router.claim_media
async def later_evidence(ctx: Ctx) -> list[Reply] | None:
    """An attachment whose caption names a customer or evidence that an obstacle is waiting for."""
    caption = ctx.event.text.strip()
    if not caption:
        return None
    waiting = await obstacle_store.awaiting_evidence_of(ctx.session, ctx.acting.id)
    if not waiting:
        return None
    customers = {c.id: c for _o, c in waiting}
    customer = (await find_customer_named(ctx, caption, among=list(customers.values()))).customer
    named = evidence_named(caption)
    if customer is not None:
        candidates = [(o, c) for o, c in waiting if c.id == customer.id]
        if named and any(o.required_evidence in named for o, _c in candidates):
            candidates = [(o, c) for o, c in candidates if o.required_evidence in named]
        elif not named and await _is_touch_evidence(ctx, customer.id):
            return None  # a photo of the touch just logged: the evidence capability attaches it
    elif named:
        candidates = [(o, c) for o, c in waiting if o.required_evidence in named]
    else:
        return None
    if not candidates:
        return None
    if len({o.customer_id for o, _c in candidates}) > 1:
        items = "、".join(
            texts.EVIDENCE_ITEM.format(customer=c.name, evidence=o.required_evidence) for o, c in candidates
        )
        raise UserError(texts.EVIDENCE_WHICH.format(items=items))
    obstacle, customer = candidates[0]
    return await _link(ctx, obstacle, customer)


async def _is_touch_evidence(ctx: Ctx, customer_id: int) -> bool:
    window = dt.timedelta(minutes=ctx.config.touch.evidence_window_minutes)
    touch = await touch_store.open_touch(ctx.session, ctx.acting.id, ctx.now() - window)
    return touch is not None and touch.customer_id == customer_id


@router.job("obstacle_reminders")
async def remind_missing_evidence(ctx: Ctx) -> list[Reply]:
    """Remind owners of obstacles still waiting for evidence: one message per rep, each obstacle at
    most once per ``rules.obstacle_reminder_hours``."""
    now = ctx.now()
    cutoff = now - dt.timedelta(hours=ctx.config.rules.obstacle_reminder_hours)
    due = await obstacle_store.obstacles_due_reminder(ctx.session, cutoff, ctx.today())
    lines: dict[int, list[str]] = {}
    for obstacle, customer in due:
        lines.setdefault(customer.owner_id, []).append(texts.REMINDER_LINE.format(
            customer=customer.name, option=obstacle.option, evidence=obstacle.required_evidence,
            age=format_duration(now - obstacle.answered_at),
        ))
    await obstacle_store.mark_reminded(ctx.session, [o.id for o, _c in due], now)
    return [Text(texts.REMINDER.format(lines="\n".join(items)), to=ToMember(owner)) for owner, items in lines.items()]


# --- 需跨部门支持 ------------------------------------------------------------------------------


@router.action(AskSupport)
async def ask_for_support(ctx: Ctx, payload: AskSupport) -> list[Reply]:
    """Hand the obstacle to the least-busy supporter; the clock runs until their first real answer."""
    obstacle = await obstacle_store.get_obstacle(ctx.session, payload.obstacle_id)
    customer = await customer_store.get_customer(ctx.session, obstacle.customer_id) if obstacle else None
    if obstacle is None or customer is None or ctx.acting.id not in (obstacle.member_id, customer.owner_id):
        raise UserError(texts.SUPPORT_OBSTACLE_GONE, detail="obstacle missing or not the actor's")
    existing = await obstacle_store.support_request_for(ctx.session, obstacle.id)
    if existing is not None:
        supporter = await member_store.get_member(ctx.session, existing.supporter_id or 0)
        raise UserError(texts.SUPPORT_ALREADY.format(name=supporter.name if supporter else "-"))
    supporter = await obstacle_store.pick_supporter(ctx.session)
    if supporter is None:
        raise UserError(texts.SUPPORT_NO_SUPPORTER, detail="no active supporter")
    await obstacle_store.create_support_request(
        ctx.session, obstacle=obstacle, requester_id=ctx.acting.id, supporter_id=supporter.id, now=ctx.now()
    )
    stage = await stage_store.get_stage(ctx.session, obstacle.stage_id)
    change = await stage_store.get_change(ctx.session, obstacle.stage_change_id or 0)
    note = change.reason if change and change.reason else texts.NO_NOTE
    card = Card(
        task_id=new_task_id("support"),
        title=texts.SUPPORT_CARD_TITLE.format(customer=customer.name),
        body=texts.SUPPORT_CARD_BODY.format(rep=ctx.acting.name),
        fields=(
            CardField(texts.FIELD_CUSTOMER, customer.name),
            CardField(texts.FIELD_REP, ctx.acting.name),
            CardField(texts.FIELD_STAGE, stage.name if stage else "-"),
            CardField(texts.FIELD_OBSTACLE, obstacle.option),
            CardField(texts.FIELD_SUPPORT_NOTE, note),
        ),
    )
    return [
        ctx.close_card(texts.SUPPORT_SENT_NOTE.format(name=supporter.name)),
        Text(texts.SUPPORT_SENT.format(name=supporter.name, customer=customer.name, option=obstacle.option)),
        CardReply(card, to=ToMember(supporter.id)),
    ]


@router.claim_text
async def supporter_reply(ctx: Ctx) -> list[Reply] | None:
    """A supporter's message while they have unanswered requests: the first real answer is timed
    and relayed to the rep; a bare 收到/好的 is acknowledged but does not count."""
    if ctx.acting.role is not Role.SUPPORTER:
        return None
    text = ctx.event.text.strip()
    if not text:
        return None
    open_requests = await obstacle_store.open_requests_for_supporter(ctx.session, ctx.acting.id)
    if not open_requests:
        return None
    if not is_substantive(text):
        return [Text(texts.SUPPORT_ACK_NOT_COUNTED)]
    chosen = open_requests[0] if len({c.id for _r, _o, c in open_requests}) == 1 else None
    if chosen is None:
        customers = list({c.id: c for _r, _o, c in open_requests}.values())
        named = (await find_customer_named(ctx, text, among=customers)).customer
        if named is None:
            names = "、".join(c.name for c in customers)
            return [Text(texts.SUPPORT_WHICH.format(names=names))]
        chosen = next(item for item in open_requests if item[2].id == named.id)
    request, obstacle, customer = chosen
    now = ctx.now()
    if not await obstacle_store.record_first_reply(ctx.session, request, text[:2000], now):
        return None
    requester = await member_store.get_member(ctx.session, request.requester_id)
    return [
        Text(texts.SUPPORT_RELAY.format(supporter=ctx.acting.name, customer=customer.name, option=obstacle.option,
                                        text=text), to=ToMember(request.requester_id)),
        Text(texts.SUPPORT_RELAYED.format(rep=requester.name if requester else "-",
                                          elapsed=format_duration(now - request.requested_at))),
    ]

"""阶段: moving customers through their pipeline, and showing where they are (SPEC §4.1).

Three ways to ask for a move, all ending in the same request: plain text ("华东建材 进入报价阶段"),
the /阶段 command, and a deliverable photo or file whose caption names the next node. A request
never moves the customer by itself: it is stored as a pending ``StageChange`` and the obstacle
card (handlers.obstacles) commits it. Stage names are matched loosely within the customer's own
pipeline; moving backwards needs a reason; members move only the customers they may see.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from bot.context import Ctx
from bot.errors import NotPermitted, UserError
from bot.replies import CardReply, Markdown, Reply, Text
from bot.router import Router
from cards.model import new_task_id
from domain.enums import ObstacleStatus, Role
from domain.parsing.dates import normalize
from handlers import texts_stages as texts
from handlers.customers import find_customer_named
from handlers.format import evidence_kind_name
from handlers.obstacles import (
    evidence_named,
    format_duration,
    obstacle_card,
    save_evidence,
    store_attachment,
    withdrawn_text,
)
from storage import escalations as review_store
from storage import members as member_store
from storage import obstacles as obstacle_store
from storage import stages as stage_store
from storage.models import Customer, Stage, StageChange

router = Router("stages")

# Verbs that ask for a move when they directly follow the customer's name (longest first).
MOVE_VERBS = (
    "推进到", "推进至", "进入到", "升级到", "调整到", "调整为", "退回到", "退回至", "回退到", "回退至", "返回到",
    "推进", "推到", "推至", "进入", "进到", "转入", "转到", "转至", "移到", "移入", "调到", "改到", "改为",
    "升到", "退回", "退到", "回退", "回到", "返回", "降到", "降为",
)  # fmt: skip
WITHDRAW_WORDS = frozenset({"撤回", "撤销", "取消"})
_SEPARATORS = " \t\r\n\u3000,,。;;!!??、"
_PUNCT = r"\s,,。;;::!!??、"
_MOVE_RE = re.compile(
    rf"^\s*(?P<customer>[^{_PUNCT}]{{1,40}}?)\s*[,,::]?\s*(?:已经|已|要|将|准备|申请)?"
    rf"(?P<verb>{'|'.join(MOVE_VERBS)})\s*(?P<rest>.*)$",
    re.S,
)
_TARGET_RE = re.compile(rf"^(?P<stage>[^{_PUNCT}]+?)(?P<tail>(?:原因|理由|因为).*|[{_PUNCT}].*|)$", re.S)
_REASON_RE = re.compile(r"(?:原因|理由|因为)\s*[::]?\s*")
_STAGE_SUFFIXES = ("这一阶段", "这个阶段", "阶段", "节点", "环节")
_NEXT_WORDS = frozenset({"下一", "下一个", "下个", "下一步"})
_PREVIOUS_WORDS = frozenset({"上一", "上一个", "上个", "上一步"})
_DELIVERABLE_SUFFIXES = ("扫描件", "截图", "照片", "复印件")
FUZZY_STAGE_CUTOFF = 70.0
MAX_OBSTACLES_SHOWN = 5  # in /阶段 <customer>


@dataclass(frozen=True)
class MoveText:
    """A message shaped like "<customer> <verb><stage> [note] [原因:reason]"."""

    customer: str
    stage: str
    note: str = ""
    reason: str = ""

    @property
    def explanation(self) -> str:
        return self.reason or self.note

    def looks_deliberate(self) -> bool:
        """Whether an unmatched stage phrase still reads as a move (to refuse it rather than pass)."""
        return self.stage.endswith(_STAGE_SUFFIXES) or (not self.note and len(self.stage) <= 12)


@dataclass(frozen=True)
class StageMatch:
    stage: Stage | None = None
    candidates: tuple[Stage, ...] = ()


def split_target(rest: str) -> tuple[str, str, str] | None:
    """"需求确认 原因:客户换了对接人" → ("需求确认", note "", reason "客户换了对接人")."""
    found = _TARGET_RE.match(rest.strip())
    if found is None:
        return None
    tail = found.group("tail")
    reason_at = _REASON_RE.search(tail)
    if reason_at is not None:
        note = tail[: reason_at.start()].strip(_SEPARATORS)
        reason = tail[reason_at.end() :].strip(_SEPARATORS)
    else:
        note, reason = tail.strip(_SEPARATORS), ""
    return found.group("stage"), note, reason


def parse_move(text: str) -> MoveText | None:
    """The parts of a stage-move message, or None when the text is not shaped like one."""
    found = _MOVE_RE.match(text)
    if found is None:
        return None
    target = split_target(found.group("rest"))
    if target is None:
        return None
    stage, note, reason = target
    return MoveText(customer=found.group("customer"), stage=stage, note=note[:500], reason=reason[:500])


def _clean_stage_phrase(phrase: str) -> str:
    text = normalize(phrase).strip(_SEPARATORS)
    for prefix in ("到", "至", "为"):
        if text.startswith(prefix) and len(text) > len(prefix) + 1:
            text = text[len(prefix) :]
    for suffix in _STAGE_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return text


def match_stage(phrase: str, stages: Sequence[Stage], current_position: int | None = None) -> StageMatch:
    """The stage of one pipeline that ``phrase`` names: exact, a part ("入院" of "中标/入院"), a
    substring ("报价" of "方案报价"), then a close spelling; 下一阶段 / 上一阶段 relative to now."""
    text = _clean_stage_phrase(phrase)
    if not text:
        return StageMatch()
    ordered = sorted(stages, key=lambda s: s.position)
    if current_position is not None and (text in _NEXT_WORDS or text in _PREVIOUS_WORDS):
        step = 1 if text in _NEXT_WORDS else -1
        wanted = [s for s in ordered if s.position == current_position + step]
        return StageMatch(wanted[0] if wanted else None)
    passes: tuple[Callable[[Stage], bool], ...] = (
        lambda s: normalize(s.name) == text,
        lambda s: text in [normalize(part) for part in s.name.split("/")],
        lambda s: len(text) >= 2 and text in normalize(s.name),
        # "方案报价了": the name plus a particle or two, never a sentence that merely mentions it
        lambda s: len(normalize(s.name)) >= 2 and normalize(s.name) in text and len(text) - len(s.name) <= 2,
    )
    for test in passes:
        hits = [s for s in ordered if test(s)]
        if len(hits) == 1:
            return StageMatch(hits[0])
        if hits:
            return StageMatch(candidates=tuple(hits))
    scored = sorted(((fuzz.ratio(text, normalize(s.name)), s) for s in ordered), key=lambda item: -item[0])
    close = [s for score, s in scored if score >= FUZZY_STAGE_CUTOFF]
    if len(close) == 1:
        return StageMatch(close[0])
    return StageMatch(candidates=tuple(close))


def find_node(caption: str, stages: Sequence[Stage]) -> tuple[Stage, str | None] | None:
    """The node a deliverable caption names: (stage, deliverable named or None) — longest hit wins,
    a deliverable before a stage name of the same length."""
    text = normalize(caption)
    best: tuple[int, int, Stage, str | None] | None = None
    for stage in stages:
        keys: list[tuple[str, str | None, int]] = []
        for deliverable in stage.deliverables or []:
            name = str(deliverable)
            keys.append((name, name, 1))
            core = name
            for suffix in _DELIVERABLE_SUFFIXES:
                core = core.removesuffix(suffix)
            if core != name:
                keys.append((core, name, 1))
        keys.append((stage.name, None, 0))
        keys += [(part, None, 0) for part in stage.name.split("/") if part != stage.name]
        for key, deliverable, weight in keys:
            key_norm = normalize(key)
            if len(key_norm) >= 2 and key_norm in text:
                rank = (len(key_norm), weight)
                if best is None or rank > best[:2]:
                    best = (rank[0], rank[1], stage, deliverable)
    return (best[2], best[3]) if best else None


# --- resolving names ----------------------------------------------------------------------------


async def _resolve_customer(ctx: Ctx, query: str) -> Customer:
    """The customer named ``query`` among those the member may change, or a clear refusal."""
    named = await find_customer_named(ctx, query)
    if named.customer is not None:
        return named.customer
    if named.ambiguous:
        raise UserError(texts.CUSTOMER_AMBIGUOUS.format(name=query, names=named.candidate_names()))
    raise await _unknown_customer(ctx, query)


async def _unknown_customer(ctx: Ctx, name: str) -> UserError:
    """Someone else's customer and a name nobody has get different refusals."""
    if await stage_store.customers_named(ctx.session, name):
        return NotPermitted(texts.CUSTOMER_NOT_YOURS.format(name=name), detail=f"{name!r} belongs to someone else")
    return UserError(texts.CUSTOMER_UNKNOWN.format(name=name))


def _stage_refusal(customer: Customer, pipeline_name: str, phrase: str, found: StageMatch,
                   stages: Sequence[Stage]) -> UserError:
    if found.candidates:
        return UserError(texts.STAGE_AMBIGUOUS.format(stage=phrase, names="、".join(s.name for s in found.candidates)))
    return UserError(texts.STAGE_UNKNOWN.format(
        customer=customer.name, pipeline=pipeline_name, stage=phrase, stages=" → ".join(s.name for s in stages)
    ))


async def _target_stage(ctx: Ctx, customer: Customer, phrase: str) -> Stage:
    stages = await stage_store.pipeline_stages(ctx.session, customer.pipeline_id)
    current = next(s for s in stages if s.id == customer.stage_id)
    found = match_stage(phrase, stages, current.position)
    if found.stage is not None:
        return found.stage
    cleaned = _clean_stage_phrase(phrase)
    if cleaned in _NEXT_WORDS:
        raise UserError(texts.NO_NEXT_STAGE.format(customer=customer.name, stage=current.name))
    if cleaned in _PREVIOUS_WORDS:
        raise UserError(texts.NO_PREVIOUS_STAGE.format(customer=customer.name, stage=current.name))
    pipeline = await stage_store.get_pipeline(ctx.session, customer.pipeline_id)
    raise _stage_refusal(customer, pipeline.name if pipeline else "-", phrase, found, stages)


# --- requesting a move --------------------------------------------------------------------------


async def request_move(ctx: Ctx, customer: Customer, target: Stage, explanation: str) -> list[Reply]:
    """Store the move as pending and send the obstacle card that will commit it."""
    current = await stage_store.get_stage(ctx.session, customer.stage_id)
    assert current is not None
    if target.id == current.id:
        raise UserError(texts.STAGE_SAME.format(customer=customer.name, stage=current.name))
    pending = await stage_store.pending_change(ctx.session, customer.id)
    if pending is not None:
        raise UserError(await _pending_text(ctx, customer, pending))
    if target.position < current.position and not explanation:
        raise UserError(texts.BACKWARD_NEEDS_REASON.format(
            target=target.name, current=current.name, customer=customer.name
        ))
    change = await stage_store.request_change(
        ctx.session, customer=customer, to_stage_id=target.id, member_id=ctx.acting.id,
        reason=explanation, task_id=new_task_id("obst"), now=ctx.now(),
    )
    options = stage_store.obstacle_options(await stage_store.get_pipeline(ctx.session, customer.pipeline_id))
    return [CardReply(obstacle_card(change, customer, current, target, options))]


async def _pending_text(ctx: Ctx, customer: Customer, pending: StageChange) -> str:
    from_stage = await stage_store.get_stage(ctx.session, pending.from_stage_id)
    to_stage = await stage_store.get_stage(ctx.session, pending.to_stage_id)
    return texts.PENDING_EXISTS.format(
        customer=customer.name,
        from_stage=from_stage.name if from_stage else "-",
        to_stage=to_stage.name if to_stage else "-",
        when=pending.requested_at.astimezone(ctx.tz).strftime("%m-%d %H:%M"),
    )


@router.claim_text
async def move_by_text(ctx: Ctx) -> list[Reply] | None:
    """"华东建材 进入报价阶段": claimed only when the verb directly follows a customer's name and
    the rest names a stage (or clearly tries to); everything else is left to touch logging."""
    if ctx.acting.role is Role.SUPPORTER:
        return None  # supporters own no customers; their text is answers to support requests
    move = parse_move(ctx.event.text)
    if move is None:
        return None
    named = await find_customer_named(ctx, move.customer)
    match, customer = named.match, named.customer
    if customer is not None:
        if match.span is None or move.customer[: match.span[0]].strip() or move.customer[match.span[1] :].strip():
            return None  # more than a name before the verb: a touch that happens to say 进入/回到 …
        stages = await stage_store.pipeline_stages(ctx.session, customer.pipeline_id)
        current = next(s for s in stages if s.id == customer.stage_id)
        found = match_stage(move.stage, stages, current.position)
        if found.stage is None and not move.looks_deliberate():
            return None
        target = found.stage or await _target_stage(ctx, customer, move.stage)
        return await request_move(ctx, customer, target, move.explanation)
    # Not one of the member's customers: a stage move only if the phrase names a stage somewhere.
    if not move.looks_deliberate():
        return None
    all_stages = await stage_store.all_stages(ctx.session)
    by_pipeline: dict[int, list[Stage]] = {}
    for stage in all_stages:
        by_pipeline.setdefault(stage.pipeline_id, []).append(stage)
    if not any(match_stage(move.stage, stages).stage for stages in by_pipeline.values()):
        return None
    if match.status == "ambiguous":
        names = "、".join(c.name for c in named.scope.values() if c.id in match.candidates)
        raise UserError(texts.CUSTOMER_AMBIGUOUS.format(name=move.customer, names=names))
    raise await _unknown_customer(ctx, move.customer)


@router.command("/阶段", "/stage", summary=texts.CMD_STAGE, usage=texts.CMD_STAGE_USAGE)
async def stage_command(ctx: Ctx) -> list[Reply]:
    parts = ctx.event.text.strip().split(maxsplit=2)
    if len(parts) < 2:
        return [Text(texts.STAGE_USAGE)]
    customer = await _resolve_customer(ctx, parts[1][:64])
    rest = parts[2].strip() if len(parts) > 2 else ""
    if not rest:
        return [await stage_view(ctx, customer)]
    if rest in WITHDRAW_WORDS:
        return await _withdraw(ctx, customer)
    for verb in MOVE_VERBS:
        if rest.startswith(verb) and len(rest) > len(verb):
            rest = rest[len(verb) :].strip()
            break
    target = split_target(rest)
    if target is None:
        return [Text(texts.STAGE_USAGE)]
    phrase, note, reason = target
    stage = await _target_stage(ctx, customer, phrase)
    return await request_move(ctx, customer, stage, (reason or note)[:500])


async def _withdraw(ctx: Ctx, customer: Customer) -> list[Reply]:
    pending = await stage_store.pending_change(ctx.session, customer.id)
    if pending is None:
        raise UserError(texts.NO_PENDING.format(customer=customer.name))
    await stage_store.cancel_change(ctx.session, pending)
    return [Text(await withdrawn_text(ctx, pending, customer))]


# --- deliverables -------------------------------------------------------------------------------


@router.claim_media
async def deliverable(ctx: Ctx) -> list[Reply] | None:
    """A photo/file whose caption names one of the member's customers and a node or deliverable of
    its pipeline: kept as that node's deliverable; naming the next node also requests the move."""
    caption = ctx.event.text.strip()
    if not caption:
        return None
    named = await find_customer_named(ctx, caption)
    customer, match = named.customer, named.match
    if customer is None:
        return None
    rest = caption if match.span is None else caption[: match.span[0]] + " " + caption[match.span[1] :]
    stages = await stage_store.pipeline_stages(ctx.session, customer.pipeline_id)
    hit = find_node(rest, stages)
    if hit is None:
        return None
    if evidence_named(caption) and any(
        o.customer_id == customer.id for o, _c in await obstacle_store.awaiting_evidence_of(ctx.session, ctx.acting.id)
    ):
        return None  # an obstacle's demanded evidence: handled by the obstacles capability
    stage, named_deliverable = hit
    deliverable_name = named_deliverable or (str(stage.deliverables[0]) if stage.deliverables else stage.name)
    stored, kind = await store_attachment(ctx)
    await save_evidence(ctx, customer, stored, kind, {"deliverable": deliverable_name, "stage_id": stage.id})
    replies: list[Reply] = [Text(texts.DELIVERABLE_SAVED.format(
        kind=evidence_kind_name(kind), customer=customer.name, stage=stage.name,
        deliverable=deliverable_name,
    ))]
    current = next(s for s in stages if s.id == customer.stage_id)
    if stage.position == current.position + 1:
        pending = await stage_store.pending_change(ctx.session, customer.id)
        if pending is not None:
            replies.append(Text(await _pending_text(ctx, customer, pending)))
        else:
            replies += await request_move(ctx, customer, stage, texts.DELIVERABLE_NOTE.format(
                deliverable=deliverable_name))
    return replies


# --- /阶段 <customer> ---------------------------------------------------------------------------


async def stage_view(ctx: Ctx, customer: Customer) -> Reply:
    """The customer's pipeline with the current stage and time in it, history, pending move, obstacles."""
    now = ctx.now()
    stages = await stage_store.pipeline_stages(ctx.session, customer.pipeline_id)
    pipeline = await stage_store.get_pipeline(ctx.session, customer.pipeline_id)
    owner = await member_store.get_member(ctx.session, customer.owner_id)
    history = await stage_store.stage_history(ctx.session, customer.id)
    totals = stage_store.time_in_stage(history, now)
    received = await stage_store.delivered(ctx.session, customer.id)
    lines = [texts.VIEW_HEADER.format(customer=customer.name, pipeline=pipeline.name if pipeline else "-",
                                      owner=owner.name if owner else "-")]
    for n, stage in enumerate(stages, 1):
        if stage.id == customer.stage_id:
            line = texts.VIEW_STAGE_CURRENT.format(
                n=n, name=stage.name, duration=format_duration(stage_store.current_stay(customer, now))
            )
        elif stage.id in totals:
            line = texts.VIEW_STAGE_VISITED.format(n=n, name=stage.name, duration=format_duration(totals[stage.id]))
        else:
            line = texts.VIEW_STAGE_AHEAD.format(n=n, name=stage.name)
        if stage.deliverables:
            got = received.get(stage.id, [])
            items = "、".join(texts.VIEW_DELIVERED.format(name=d) if d in got else str(d) for d in stage.deliverables)
            line += texts.VIEW_DELIVERABLES.format(items=items)
        lines.append(line)
    if history:
        lines += ["", texts.VIEW_HISTORY_HEADER]
        for stay in history:
            template = texts.VIEW_HISTORY_OPEN if stay.left_at is None else texts.VIEW_HISTORY_LEFT
            lines.append(template.format(
                date=stay.entered_at.astimezone(ctx.tz).strftime("%m-%d %H:%M"), stage=stay.stage_name,
                duration=format_duration(stay.duration(now)),
            ))
    pending = await stage_store.pending_change(ctx.session, customer.id)
    if pending is not None:
        names = {s.id: s.name for s in stages}
        lines += ["", texts.VIEW_PENDING.format(from_stage=names.get(pending.from_stage_id, "-"),
                                                to_stage=names.get(pending.to_stage_id, "-"))]
    obstacles = await _obstacle_lines(ctx, customer, {s.id: s.name for s in stages})
    if obstacles:
        lines += ["", texts.VIEW_OBSTACLES_HEADER, *obstacles]
    title = texts.VIEW_TITLE.format(customer=customer.name)
    return Markdown(title, "\n".join(lines))


async def _obstacle_lines(ctx: Ctx, customer: Customer, names: dict[int, str]) -> list[str]:
    # The newest five with their support requests in one go; supporters are few.
    obstacles = await review_store.obstacles_of(ctx.session, customer.id, limit=MAX_OBSTACLES_SHOWN)
    supporters = {
        supporter_id: await member_store.get_member(ctx.session, supporter_id)
        for supporter_id in {r.supporter_id for _o, _e, r in obstacles if r is not None and r.supporter_id}
    }
    lines = []
    for obstacle, _evidence, request in obstacles:
        if obstacle.status is ObstacleStatus.AWAITING_EVIDENCE:
            state = texts.VIEW_OBSTACLE_AWAITING.format(evidence=obstacle.required_evidence)
        elif obstacle.status is ObstacleStatus.RESOLVED:
            state = texts.VIEW_OBSTACLE_RESOLVED
        else:
            state = texts.VIEW_OBSTACLE_EVIDENCED if obstacle.evidence_id else ""
        if request is not None:
            supporter = supporters.get(request.supporter_id or 0)
            template = texts.VIEW_SUPPORT_WAITING if request.first_reply_at is None else texts.VIEW_SUPPORT_ANSWERED
            state += template.format(name=supporter.name if supporter else "-")
        lines.append(texts.VIEW_OBSTACLE_LINE.format(
            date=obstacle.answered_at.astimezone(ctx.tz).strftime("%m-%d"), stage=names.get(obstacle.stage_id, "-"),
            option=obstacle.option, state=state,
        ))
    return lines

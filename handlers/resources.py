"""资源申请必匹配 (SPEC §3.3): /申请 for marketing budget or technical support, gated on evidence.

"/申请 市场费用 5000 华东建材 用于推动临床试用" names a request type (``[resources.types]``), an
amount (optional where the type does not spend money), one of the rep's own customers and a
purpose. The customer's current stage must already hold ``min_effective_touches`` effective
touches with evidence; otherwise the bot says exactly what is missing and stores nothing. An
accepted request goes to the team's manager (else the admins) as an approval card showing stage,
purpose and the evidence list; [驳回] asks for a reason, and the rep hears the outcome either way.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.context import Ctx
from bot.errors import NotPermitted, UserError
from bot.replies import CardReply, Reply, Text, ToMember
from bot.router import DialogueState, Router
from cards.model import Button, ButtonStyle, Card, CardAction, CardField, new_task_id
from domain.enums import ResourceRequestStatus
from domain.parsing.dates import cn_to_int, normalize
from handlers import texts_resources as texts
from handlers.customers import find_customer_named
from handlers.dialogue import AnswerTexts, dialogue_data, end_dialogue, read_text_answer, save_state
from handlers.format import evidence_kind_name, month_day
from handlers.sent_cards import close_sent_card
from storage import cards as card_store
from storage import customers as customer_store
from storage import escalations as review_store
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage import resources as store
from storage.models import Customer, Member, ResourceRequest, Touch

router = Router("resources")



class ResourceState(DialogueState):
    REJECT_REASON = "resources.reject"  # [驳回]: waiting for the reason


@dataclass(frozen=True)
class Approve(CardAction, prefix="res_ok"):
    request_id: int


@dataclass(frozen=True)
class Reject(CardAction, prefix="res_no"):
    """[驳回]: ask for the reason (the card stays open until it is given)."""

    request_id: int

MAX_AMOUNT = 100_000_000  # yuan; anything above is a typo
MAX_REASON_CHARS = 500
MAX_PURPOSE_CHARS = 500
MAX_EVIDENCE_SHOWN = 10
_REASON_ANSWER = AnswerTexts(
    cancelled=texts.DIALOGUE_CANCELLED, empty=texts.REASON_EMPTY, too_long=texts.REASON_TOO_LONG
)


# ------------------------------------------------------------------------------ parsing (pure)


@dataclass(frozen=True)
class ParsedRequest:
    kind: str | None
    amount: int | None
    rest: str  # what remains: the customer and the purpose


_AMOUNT_RE = re.compile(
    r"^(?:金额|预算|费用)?[::]?[¥¥]?"
    r"(?P<number>\d[\d,]*(?:\.\d+)?|[零〇一二两三四五六七八九十百千]+)"
    r"(?P<unit>万|千|k|w)?(?P<yuan>元|块|rmb)?$"
)
_UNITS = {"万": 10_000, "w": 10_000, "千": 1_000, "k": 1_000, None: 1}


def parse_amount(token: str) -> int | None:
    """Yuan from "5000", "5千", "1.2万", "¥8,000", "两万", "3000元"; None if not an amount."""
    m = _AMOUNT_RE.match(normalize(token.strip()))
    if m is None:
        return None
    number, unit = m["number"], m["unit"]
    if number[0].isdigit():
        value = float(number.replace(",", ""))
    else:
        parsed = cn_to_int(number)
        # A bare Chinese numeral ("三") is more likely a word than a sum of money.
        if parsed is None or (unit is None and m["yuan"] is None and parsed < 100):
            return None
        value = float(parsed)
    return round(value * _UNITS[unit])


def parse_request(text: str, kinds: Iterable[str]) -> ParsedRequest:
    """Split "市场费用 5000 华东建材 用于推动临床试用" into kind, amount and the rest."""
    body = text.strip()
    kind, at = None, -1
    for name in sorted(kinds, key=len, reverse=True):
        position = body.find(name)
        if position != -1 and (kind is None or position < at):
            kind, at = name, position
    if kind is not None:
        body = f"{body[:at]} {body[at + len(kind):]}"
    tokens = body.split()
    amount = None
    for i, token in enumerate(tokens):
        amount = parse_amount(token)
        if amount is not None:
            del tokens[i]
            break
    return ParsedRequest(kind=kind, amount=amount, rest=" ".join(tokens))


_PURPOSE_EDGES = " \t,,。;;::、"  # characters trimmed from both ends of the purpose


def _purpose(rest: str, span: tuple[int, int] | None, customer_name: str) -> str:
    if span is not None:
        rest = f"{rest[: span[0]]} {rest[span[1]:]}"
    elif rest.startswith(customer_name):
        rest = rest[len(customer_name) :]
    return rest.strip(_PURPOSE_EDGES)[:MAX_PURPOSE_CHARS]


# ------------------------------------------------------------------------------ /申请


def _amount_text(amount: int | None) -> str:
    return texts.AMOUNT.format(amount=amount) if amount is not None else ""


@router.command("/申请", "/apply", summary=texts.CMD_APPLY, usage=texts.CMD_APPLY_USAGE)
async def request_resource(ctx: Ctx) -> list[Reply]:
    kinds = ctx.config.resources.types
    kind_list = texts.LIST_SEPARATOR.join(kinds)
    parts = ctx.event.text.strip().split(maxsplit=1)
    if len(parts) < 2 or not parts[1].strip():
        return [Text(texts.USAGE.format(types=kind_list))]
    parsed = parse_request(parts[1][:1000], kinds)
    if parsed.kind is None:
        raise UserError(texts.UNKNOWN_KIND.format(types=kind_list))
    kind = parsed.kind

    named = await find_customer_named(ctx, parsed.rest, own_only=True) if parsed.rest else None
    if named is None or (named.match.status == "none" and not named.match.guessed_name):
        raise UserError(texts.NO_CUSTOMER.format(kind=kind))
    if named.ambiguous:
        listed = named.candidate_names(texts.LIST_SEPARATOR)
        raise UserError(texts.AMBIGUOUS_CUSTOMER.format(name=parsed.rest.split()[0], names=listed))
    match, customer = named.match, named.customer
    if customer is None:
        raise UserError(texts.NOT_YOUR_CUSTOMER.format(name=match.guessed_name or parsed.rest.split()[0]))

    spec = kinds[kind]  # [resources.types.<kind>]: requires_amount, min_effective_touches
    if parsed.amount is None and spec.get("requires_amount", False):
        raise UserError(texts.AMOUNT_REQUIRED.format(kind=kind, customer=customer.name))
    if parsed.amount is not None and not 0 < parsed.amount <= MAX_AMOUNT:
        raise UserError(texts.AMOUNT_INVALID.format(limit=MAX_AMOUNT))
    purpose = _purpose(parsed.rest, match.span, customer.name)
    if not purpose:
        amount_hint = f"{parsed.amount} " if parsed.amount is not None else ""
        raise UserError(texts.NO_PURPOSE.format(kind=kind, amount=amount_hint, customer=f"{customer.name} "))

    duplicate = await store.pending_duplicate(ctx.session, customer_id=customer.id, kind=kind, amount=parsed.amount)
    if duplicate is not None:
        approver = await member_store.get_member(ctx.session, await _approver_id(ctx, duplicate))
        details = texts.DUPLICATE_DETAILS.format(date=month_day(ctx.local_date(duplicate.requested_at)), purpose=duplicate.purpose)
        if duplicate.amount is not None:
            details = texts.AMOUNT_VALUE.format(amount=duplicate.amount) + texts.LIST_COMMA + details
        raise UserError(
            texts.DUPLICATE.format(
                customer=customer.name,
                kind=kind,
                details=details,
                approver=approver.name if approver else texts.SOMEONE_APPROVER,
            )
        )
    stage = (await pipeline_store.stage_names(ctx.session)).get(customer.stage_id, "")
    touches = await _require_stage_evidence(ctx, customer, stage, int(spec.get("min_effective_touches", 1)))
    evidence = await store.evidence_of_touches(ctx.session, [t.id for t in touches])

    approvers = await review_store.reviewers_for(ctx.session, ctx.acting)
    if not approvers:
        raise UserError(texts.NO_APPROVER)

    task_ids = [new_task_id("res") for _ in approvers]
    request = await store.create_request(
        ctx.session,
        customer=customer,
        member_id=ctx.acting.id,
        kind=kind,
        amount=parsed.amount,
        purpose=purpose,
        evidence=[
            {
                "evidence_id": e.id,
                "touch_id": e.touch_id,
                "kind": e.kind.value,
                "date": ctx.local_date(e.created_at).isoformat(),
                "filename": e.filename,
            }
            for e in evidence
        ],
        task_id=task_ids[0],
        now=ctx.now(),
    )
    replies: list[Reply] = [
        CardReply(_approval_card(task_id, request, customer, stage, ctx.acting), to=ToMember(approver.id))
        for approver, task_id in zip(approvers, task_ids, strict=True)
    ]
    replies.append(
        Text(
            texts.SUBMITTED.format(
                customer=customer.name,
                kind=kind,
                amount=_amount_text(parsed.amount),
                stage=stage,
                count=len(evidence),
                approver=texts.LIST_SEPARATOR.join(a.name for a in approvers),
            )
        )
    )
    return replies


async def _require_stage_evidence(ctx: Ctx, customer: Customer, stage: str, need: int) -> list[Touch]:
    """The effective touches of the customer's current stage; too few refuse the request."""
    touches = await store.effective_touches_in_stage(ctx.session, customer)
    have = len(touches)
    if have >= need:
        return touches
    if have == 0:
        message = texts.MISSING_NONE.format(customer=customer.name, stage=stage, need=need)
    else:
        message = texts.MISSING_SOME.format(customer=customer.name, stage=stage, have=have, need=need, more=need - have)
    waiting = await store.touches_awaiting_evidence_in_stage(ctx.session, customer)
    if waiting:
        message += texts.MISSING_PENDING_HINT.format(count=waiting)
    raise UserError(message, detail=f"resource request for customer {customer.id}: {have}/{need} effective touches")


async def _approver_id(ctx: Ctx, request: ResourceRequest) -> int:
    record = await card_store.get_card(ctx.session, request.task_id or "")
    return record.member_id if record is not None and record.member_id is not None else -1


def _evidence_lines(request: ResourceRequest) -> list[str]:
    lines = []
    for item in request.evidence[:MAX_EVIDENCE_SHOWN]:
        lines.append(
            texts.EVIDENCE_LINE.format(
                kind=evidence_kind_name(item["kind"]),
                date=month_day(dt.date.fromisoformat(item["date"])),
                filename=item.get("filename") or "-",
            )
        )
    return lines


def _approval_card(task_id: str, request: ResourceRequest, customer: Customer, stage: str, rep: Member) -> Card:
    amount = texts.AMOUNT_VALUE.format(amount=request.amount) if request.amount is not None else texts.NO_AMOUNT
    return Card(
        task_id=task_id,
        title=texts.CARD_TITLE.format(customer=customer.name),
        body=texts.CARD_BODY.format(
            rep=rep.name, kind=request.kind, amount=_amount_text(request.amount), purpose=request.purpose
        ),
        fields=(
            CardField(texts.FIELD_REP, rep.name),
            CardField(texts.FIELD_CUSTOMER, customer.name),
            CardField(texts.FIELD_STAGE, stage),
            CardField(texts.FIELD_KIND, request.kind),
            CardField(texts.FIELD_AMOUNT, amount),
            CardField(texts.FIELD_PURPOSE, request.purpose),
            CardField(texts.FIELD_EVIDENCE, "\n".join(_evidence_lines(request))),
        ),
        buttons=(
            Button(texts.BUTTON_APPROVE, Approve(request.id).pack(), ButtonStyle.PRIMARY),
            Button(texts.BUTTON_REJECT, Reject(request.id).pack(), ButtonStyle.DANGER),
        ),
    )


# ------------------------------------------------------------------------------ approval


@dataclass
class _Pending:
    request: ResourceRequest
    customer: Customer
    rep: Member


async def _pending(ctx: Ctx, request_id: int) -> _Pending:
    """The request, if still pending and the acting member may decide it."""
    request = await store.get_request(ctx.session, request_id)
    customer = await customer_store.get_customer(ctx.session, request.customer_id) if request else None
    rep = await member_store.get_member(ctx.session, request.member_id) if request else None
    if request is None or customer is None or rep is None:
        raise UserError(texts.REQUEST_GONE)
    if not await review_store.may_review(ctx.session, ctx.acting, rep):
        raise NotPermitted(texts.NOT_PERMITTED_OWN if rep.id == ctx.acting.id else texts.NOT_PERMITTED)
    if request.status is not ResourceRequestStatus.PENDING:
        raise UserError(texts.ALREADY_DECIDED.format(status=texts.STATUS_NAMES[request.status.value]))
    return _Pending(request, customer, rep)


@router.action(Approve)
async def approve(ctx: Ctx, payload: Approve) -> list[Reply]:
    case = await _pending(ctx, payload.request_id)
    store.decide(case.request, approved=True, by=ctx.acting.id, now=ctx.now())
    waiting = dialogue_data(ctx, ResourceState.REJECT_REASON)
    if waiting is not None and waiting.get("request_id") == case.request.id:
        await end_dialogue(ctx)  # [驳回] was clicked first, then changed
    return [
        ctx.close_card(texts.CLOSED_APPROVED),
        Text(texts.APPROVED_DONE.format(rep=case.rep.name)),
        _tell_rep(ctx, case, texts.APPROVED_TO_REP),
    ]


@router.action(Reject, closes_card=False)
async def start_reject(ctx: Ctx, payload: Reject) -> list[Reply]:
    case = await _pending(ctx, payload.request_id)
    await save_state(
        ctx, ResourceState.REJECT_REASON, {"request_id": case.request.id, "task_id": ctx.clicked.task_id}
    )
    return [Text(texts.ASK_REJECT_REASON.format(rep=case.rep.name))]


@router.dialogue(ResourceState.REJECT_REASON)
async def receive_reject_reason(ctx: Ctx) -> list[Reply]:
    text = await read_text_answer(ctx, _REASON_ANSWER, limit=MAX_REASON_CHARS)
    if isinstance(text, list):
        return text
    data = dialogue_data(ctx, ResourceState.REJECT_REASON) or {}
    await end_dialogue(ctx)
    try:
        case = await _pending(ctx, int(data.get("request_id", -1)))
    except UserError as exc:
        return [Text(exc.message)]  # settled meanwhile: the dialogue ends either way
    store.decide(case.request, approved=False, by=ctx.acting.id, now=ctx.now(), reason=text)
    replies: list[Reply] = []
    note = texts.CLOSED_REJECTED.format(reason=text[:40])
    if (update := await close_sent_card(ctx, str(data.get("task_id") or ""), note)) is not None:
        replies.append(update)
    return [*replies, Text(texts.REJECTED_DONE.format(rep=case.rep.name)), _tell_rep(ctx, case, texts.REJECTED_TO_REP, reason=text)]


def _tell_rep(ctx: Ctx, case: _Pending, template: str, **extra: str) -> Text:
    """The decision, told to the rep who asked (``template`` has customer, kind, amount, manager)."""
    request = case.request
    return Text(
        template.format(customer=case.customer.name, kind=request.kind, amount=_amount_text(request.amount),
                        manager=ctx.acting.name, **extra),
        to=ToMember(case.rep.id),
    )

"""客户声音 → 销售动作: checked feedback options become actions for the customer's owner (SPEC §7).

Feedback arrives two ways: the ``POST /feedback`` webhook (a form tool; the edge validates it and
feeds a ``customer_feedback`` system event into the inbox), or a multiple-choice card a rep fills
in after ``/反馈 客户``. Either way it is stored once per (source, external id), and every checked
option that matches a ``feedback.rules`` entry pushes that rule's pack to the customer's owner and
sets its flag on the customer. The owner is told in one message: what the customer said, what was
done, and the pushed material.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import CardReply, Markdown, Reply, Text, ToMember
from bot.router import Router
from cards.model import Button, ButtonStyle, Card, CardAction, ChoiceMode, new_task_id
from handlers import texts_library as texts
from handlers.customers import resolve_customer
from handlers.playbooks import push_pack
from storage import customers as customer_store
from storage import feedback as feedback_store
from storage.models import Customer, Member

log = logging.getLogger(__name__)

router = Router("feedback")

JOB = "customer_feedback"
SOURCE_WEBHOOK = "webhook"
SOURCE_CARD = "card"


@dataclass(frozen=True)
class FeedbackOption(CardAction, prefix="fbo"):
    """The key of the feedback card's option ``index`` (a value submitted with ``SubmitFeedback``)."""

    index: int


@dataclass(frozen=True)
class SubmitFeedback(CardAction, prefix="fb"):
    """Submit the feedback card: the options chosen on it are the customer's feedback."""

    customer_id: int


async def apply_feedback(
    ctx: Ctx,
    *,
    customer: Customer,
    source: str,
    external_id: str,
    options: Sequence[str],
    comment: str = "",
    filled_by: Member | None = None,
) -> list[Reply]:
    """Store the feedback and carry out its rules; [] when this feedback was handled before."""
    feedback = await feedback_store.record_feedback(
        ctx.session, customer_id=customer.id, source=source, external_id=external_id, options=list(options),
        now=ctx.now(), comment=comment,
    )
    if feedback is None:
        log.info("feedback %s:%s was already handled", source, external_id)
        return []
    rules = {str(rule["option"]).strip(): rule for rule in ctx.config.feedback.rules}
    actions: list[dict[str, Any]] = []
    done_lines: list[str] = []
    pack_texts: list[str] = []
    extra: list[Reply] = []
    for option in options:
        rule = rules.get(option.strip())
        if rule is None:
            continue
        taken: dict[str, Any] = {"option": option}
        title = str(rule.get("push") or "").strip("《》 ")
        if title:
            pushed = await push_pack(
                ctx, member_id=customer.owner_id, title=title, cause=f"feedback:{feedback.id}:{option}",
                customer_id=customer.id, note=texts.FEEDBACK_PACK_NOTE.format(option=option),
            )
            if pushed:
                taken["push"] = title
                done_lines.append(texts.FEEDBACK_ACTION_PUSH.format(title=title))
                # The pack's text joins the owner's one message; a file attachment follows it.
                pack_texts += [r.text for r in pushed if isinstance(r, Markdown)]
                extra += [r for r in pushed if not isinstance(r, Markdown)]
            else:
                log.warning("feedback rule %r names pack %r, which is not in the library", option, title)
                taken["push_missing"] = title
                done_lines.append(texts.FEEDBACK_ACTION_PUSH_MISSING.format(title=title))
        flag = str(rule.get("flag") or "").strip()
        if flag:
            await feedback_store.add_flag(ctx.session, customer, flag)
            taken["flag"] = flag
            done_lines.append(texts.FEEDBACK_ACTION_FLAG.format(flag=flag))
        actions.append(taken)
    await feedback_store.set_actions(ctx.session, feedback, actions)

    source_text = texts.FEEDBACK_NOTICE_SOURCE[source].format(member=filled_by.name if filled_by else "")
    parts = [
        texts.FEEDBACK_NOTICE_HEAD.format(customer=customer.name, source=source_text, options="、".join(options) or "—")
    ]
    if comment:
        parts.append(texts.FEEDBACK_NOTICE_COMMENT.format(comment=comment))
    parts.append(texts.FEEDBACK_NOTICE_ACTIONS + "\n" + "\n".join(done_lines) if done_lines else texts.FEEDBACK_NO_ACTIONS)
    notice = "\n\n".join(parts + [f"---\n{text}" for text in pack_texts])
    owner = ToMember(customer.owner_id)
    return [Markdown(texts.FEEDBACK_NOTICE_TITLE.format(customer=customer.name), notice, to=owner), *extra]


# --- the webhook's system event ------------------------------------------------------------------


@router.job(JOB)
async def feedback_from_webhook(ctx: Ctx) -> list[Reply]:
    """Carry out a feedback the webhook accepted (its payload was validated at the edge)."""
    args = ctx.event.job_args
    customer = await customer_store.get_customer(ctx.session, int(args["customer_id"]))
    if customer is None:
        log.warning("feedback %s names customer %s, which no longer exists", args.get("id"), args["customer_id"])
        return []
    return await apply_feedback(
        ctx,
        customer=customer,
        source=SOURCE_WEBHOOK,
        external_id=str(args["id"]),
        options=[str(option) for option in args.get("options", [])],
        comment=str(args.get("comment") or ""),
    )


# --- the rep-filled card ---------------------------------------------------------------------------


@router.command("/反馈", "/feedback", summary=texts.CMD_FEEDBACK, usage=texts.CMD_FEEDBACK_USAGE)
async def feedback_card(ctx: Ctx) -> list[Reply]:
    parts = ctx.event.text.strip().split(maxsplit=1)
    query = parts[1].strip()[:64] if len(parts) > 1 else ""
    if not query:
        return [Text(texts.FEEDBACK_USAGE)]
    options = [str(rule["option"]).strip() for rule in ctx.config.feedback.rules]
    if not options:
        return [Text(texts.FEEDBACK_NO_OPTIONS)]
    customer = await resolve_customer(
        ctx, query, ambiguous=texts.FEEDBACK_CUSTOMER_AMBIGUOUS, not_found=texts.FEEDBACK_CUSTOMER_NOT_FOUND
    )
    card = Card(
        task_id=new_task_id("fb"),
        title=texts.FEEDBACK_CARD_TITLE.format(customer=customer.name),
        body=texts.FEEDBACK_CARD_BODY,
        choice_mode=ChoiceMode.MULTIPLE,
        options=tuple(Button(option, FeedbackOption(i).pack()) for i, option in enumerate(options)),
        submit=Button(texts.FEEDBACK_SUBMIT, SubmitFeedback(customer.id).pack(), ButtonStyle.PRIMARY),
    )
    return [CardReply(card)]


@router.action(SubmitFeedback)
async def submit_card(ctx: Ctx, payload: SubmitFeedback) -> list[Reply]:
    card = ctx.clicked
    if card.submit is None or card.submit.action != payload.pack():
        raise UserError(texts.FEEDBACK_CARD_GONE, detail="feedback submit does not belong to this card")
    labels = {option.action: option.label for option in card.options}
    chosen = list(dict.fromkeys(labels[v] for v in ctx.chosen if v in labels))
    if not chosen:
        raise UserError(texts.FEEDBACK_NOTHING_CHOSEN)
    visible = {c.id: c for c in await customer_store.customers_visible_to(ctx.session, ctx.acting)}
    customer = visible.get(payload.customer_id)
    if customer is None:
        raise UserError(texts.FEEDBACK_CARD_GONE, detail="feedback card's customer is gone or no longer visible")
    replies = await apply_feedback(
        ctx, customer=customer, source=SOURCE_CARD, external_id=card.task_id, options=chosen, filled_by=ctx.acting
    )
    if not replies:
        raise UserError(texts.FEEDBACK_ALREADY)
    return [ctx.close_card(texts.FEEDBACK_SUBMITTED.format(options="、".join(chosen))), *replies]

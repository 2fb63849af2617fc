"""凭证: photos, voice, video and files attached to the rep's open touch (SPEC §3.1).

Within the evidence window after a touch, an attachment joins that touch; otherwise the bot
asks which customer it belongs to. Images are verified (real image, pixel cap) before anything
is stored; a rejected file changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import CardReply, Reply, Text
from bot.router import DialogueState, Router
from cards.model import Button, ButtonStyle, Card, CardAction, new_task_id
from domain.enums import EvidenceKind, EvidenceStatus
from domain.rules.effective import is_effective, shortfall
from handlers import texts
from handlers.attachments import EVIDENCE_KIND, store_staged
from handlers.dialogue import data_for_clicked_card, end_dialogue, save_state
from handlers.format import evidence_kind_name, format_ago
from handlers.touches import thresholds
from storage import customers as customer_store
from storage import touches as touch_store
from storage.media import StoredMedia
from storage.models import Customer, Touch

router = Router("evidence")



class EvidenceState(DialogueState):
    CUSTOMER = "evidence.customer"  # an attachment waits for the card that asks whose it is


@dataclass(frozen=True)
class FileUnder(CardAction, prefix="ev"):
    """File the waiting attachment under this customer."""

    customer_id: int


@dataclass(frozen=True)
class DropAttachment(CardAction, prefix="evx"):
    """Do not keep the waiting attachment."""


@router.media
async def receive_attachment(ctx: Ctx) -> list[Reply]:
    ref = ctx.event.media
    kind = EVIDENCE_KIND[ctx.event.kind]
    kind_name = evidence_kind_name(kind)
    if ref is not None and ref.unavailable:
        return [Text(texts.EVIDENCE_UNAVAILABLE)]
    if ref is None or not ref.staged_sha256:
        return [Text(texts.EVIDENCE_TOO_LARGE)]
    minutes = ctx.config.touch.evidence_window_minutes
    touch = await touch_store.open_touch(ctx.session, ctx.acting.id, ctx.now() - dt.timedelta(minutes=minutes))
    # Stored (and so verified) first, so a bad file is refused before anyone is asked anything.
    stored = await store_staged(ctx, sha256=ref.staged_sha256, kind=kind, filename=ref.filename, mime=ref.mime)
    if touch is not None:
        customer = await customer_store.get_customer(ctx.session, touch.customer_id)
        assert customer is not None
        return await _attach(ctx, stored, kind, touch, customer, ctx.inbox_id)
    recent = await touch_store.recently_touched_customers(ctx.session, ctx.acting.id, limit=5)
    if not recent:
        return [Text(texts.EVIDENCE_NO_CUSTOMERS.format(kind=kind_name, minutes=minutes))]
    customers = await customer_store.by_ids(ctx.session, recent)
    card = Card(
        task_id=new_task_id("evid"),
        title=texts.EVIDENCE_WHICH_CUSTOMER_TITLE,
        body=texts.EVIDENCE_WHICH_CUSTOMER_BODY.format(minutes=minutes),
        buttons=tuple(
            Button(customers[i].name, FileUnder(i).pack(), ButtonStyle.PRIMARY if n == 0 else ButtonStyle.DEFAULT)
            for n, i in enumerate(recent)
            if i in customers
        )
        + (Button(texts.CANCEL_BUTTON, DropAttachment().pack()),),
    )
    pending: dict[str, Any] = {
        "sha256": ref.staged_sha256,
        "kind": kind.value,
        "filename": ref.filename,
        "mime": ref.mime,
        "caption": ctx.event.text,
        "source_event_id": ctx.inbox_id,
        "card": card.task_id,  # only this card may file it (a newer attachment replaces it)
    }
    await save_state(ctx, EvidenceState.CUSTOMER, pending)
    return [CardReply(card)]


async def _attach(
    ctx: Ctx, stored: StoredMedia, kind: EvidenceKind, touch: Touch | None, customer: Customer,
    source_event_id: int | None, caption: str | None = None,
) -> list[Reply]:
    await touch_store.add_media_evidence(
        ctx.session,
        stored=stored,
        kind=kind,
        customer_id=customer.id,
        member_id=ctx.acting.id,
        touch_id=touch.id if touch else None,
        note=ctx.event.text if caption is None else caption,
        now=ctx.now(),
        source_event_id=source_event_id,
    )
    kind_name = evidence_kind_name(kind)
    if touch is None:
        return [Text(texts.EVIDENCE_SAVED_TO_CUSTOMER.format(kind=kind_name, customer=customer.name))]
    deadline = touch.occurred_at + dt.timedelta(hours=ctx.config.touch.evidence_deadline_hours)
    follow_ups: list[Reply] = []
    if touch.evidence_status is EvidenceStatus.MISSING or ctx.now() > deadline:
        effective_note = texts.EVIDENCE_LATE
    else:
        was_effective = touch.effective
        touch.evidence_status = EvidenceStatus.PROVIDED
        touch.effective = is_effective(touch.channel, touch.duration_minutes, touch.proposal, 1, thresholds(ctx))
        reason = shortfall(touch.channel, touch.duration_minutes, touch.proposal, thresholds(ctx))
        effective_note = texts.EVIDENCE_EFFECTIVE if touch.effective else texts.EVIDENCE_NOT_EFFECTIVE.format(reason=reason)
        if touch.effective and not was_effective:
            await ctx.session.flush()
            follow_ups = await ctx.hooks.touch_effective(ctx, touch, customer)
    confirmation = Text(
        texts.EVIDENCE_ATTACHED.format(
            kind=kind_name, customer=customer.name, when=format_ago(touch.occurred_at, ctx.now()),
            effective=effective_note,
        )
    )
    return [confirmation, *follow_ups]


@router.action(FileUnder)
async def choose_customer(ctx: Ctx, payload: FileUnder) -> list[Reply]:
    # None if a newer attachment replaced the one the card was sent for.
    pending = data_for_clicked_card(ctx, EvidenceState.CUSTOMER)
    if pending is None:
        raise UserError(texts.CHOICE_GONE)
    customer = await customer_store.get_customer(ctx.session, payload.customer_id)
    if customer is None or customer.owner_id != ctx.acting.id:
        raise UserError(texts.CHOICE_GONE)
    kind = EvidenceKind(pending["kind"])
    stored = await store_staged(
        ctx, sha256=pending["sha256"], kind=kind, filename=pending["filename"], mime=pending["mime"]
    )
    touch = await touch_store.latest_touch_of(ctx.session, customer.id)
    await end_dialogue(ctx)
    replies = await _attach(ctx, stored, kind, touch, customer, pending["source_event_id"], pending["caption"])
    return [ctx.close_card(customer.name), *replies]


@router.action(DropAttachment)
async def cancel(ctx: Ctx, payload: DropAttachment) -> list[Reply]:
    if data_for_clicked_card(ctx, EvidenceState.CUSTOMER) is not None:
        await end_dialogue(ctx)
    return [ctx.close_card(texts.CANCEL_BUTTON), Text(texts.EVIDENCE_CANCELLED)]


@router.job("evidence_deadline")
async def close_evidence_window(ctx: Ctx) -> list[Reply]:
    """Touches still without evidence after the deadline are final: non-effective (SPEC §3.1)."""
    cutoff = ctx.now() - dt.timedelta(hours=ctx.config.touch.evidence_deadline_hours)
    await touch_store.expire_pending_evidence(ctx.session, cutoff)
    return []

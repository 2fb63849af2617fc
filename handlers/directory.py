"""客户名录 (SPEC §9): 撞单 — a rep naming another rep's customer as a new lead — is not created
silently: the rep is told, and the owner's manager decides. (Greetings are answered by touch
logging itself: ``domain.parsing.chitchat``.)

``clash_replies`` is called by touch logging before it offers to create a lead (handlers/touches).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import CardReply, Reply, Text, ToMember
from bot.router import Router
from cards.model import Button, ButtonStyle, Card, CardAction, new_task_id
from domain.enums import Role
from domain.parsing.customers import company_key
from handlers import texts_admin as texts
from handlers.dialogue import end_dialogue
from storage import admin as admin_store
from storage import customers as customer_store
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage.models import Customer, Member

router = Router("directory")

async def owned_elsewhere(ctx: Ctx, name: str) -> Customer | None:
    """Another owner's customer that is the same company as ``name`` (by name or alias)."""
    key = company_key(name)
    if len(key) < 2:
        return None
    for customer in await customer_store.others_named_like(ctx.session, ctx.acting.id, key):
        names = [customer.name, *(customer.aliases or [])]
        if any(company_key(n) == key for n in names):
            return customer
    return None


async def _deciders(ctx: Ctx, owner: Member | None) -> list[Member]:
    if owner is not None and owner.team_id is not None:
        team = await member_store.get_team(ctx.session, owner.team_id)
        if team is not None and team.manager_id is not None:
            manager = await member_store.get_member(ctx.session, team.manager_id)
            if manager is not None:
                return [manager]
    return await member_store.admins(ctx.session)


@dataclass(frozen=True)
class GiveClash(CardAction, prefix="clg"):
    """撞单 card: the customer goes to the rep who asked for it."""

    customer_id: int
    rep_id: int


@dataclass(frozen=True)
class KeepClash(CardAction, prefix="clk"):
    """撞单 card: the customer stays with its owner; the asking rep is told."""

    customer_id: int
    rep_id: int


async def clash_replies(ctx: Ctx, name: str) -> list[Reply] | None:
    """撞单: None when ``name`` is nobody else's customer; else the rep's notice and the decision card."""
    customer = await owned_elsewhere(ctx, name)
    if customer is None:
        return None
    await end_dialogue(ctx)  # the touch draft waits for no card
    owner = await member_store.get_member(ctx.session, customer.owner_id)
    owner_name = owner.name if owner else "-"
    deciders = await _deciders(ctx, owner)
    stage_names = await pipeline_store.stage_names(ctx.session)
    replies: list[Reply] = [Text(texts.CLASH_TO_REP.format(
        name=customer.name, owner=owner_name,
        manager="、".join(m.name for m in deciders) or texts.CLASH_NO_MANAGER,
    ))]
    for decider in deciders:
        card = Card(
            task_id=new_task_id("clash"),
            title=texts.CLASH_TITLE.format(name=customer.name),
            body=texts.CLASH_BODY.format(rep=ctx.acting.name, name=customer.name, owner=owner_name,
                                         stage=stage_names.get(customer.stage_id, "-")),
            buttons=(
                Button(texts.CLASH_GIVE.format(rep=ctx.acting.name), GiveClash(customer.id, ctx.acting.id).pack(),
                       ButtonStyle.PRIMARY),
                Button(texts.CLASH_KEEP.format(owner=owner_name), KeepClash(customer.id, ctx.acting.id).pack()),
            ),
        )
        replies.append(CardReply(card, to=ToMember(decider.id)))
    return replies


async def _decision(ctx: Ctx, payload: GiveClash | KeepClash) -> tuple[Customer, Member, Member]:
    """The customer, its owner and the asking rep, checked: still theirs, and the clicker may decide."""
    customer = await customer_store.get_customer(ctx.session, payload.customer_id)
    rep = await member_store.get_member(ctx.session, payload.rep_id)
    if customer is None or rep is None:
        raise UserError(texts.CLASH_GONE)
    owner = await member_store.get_member(ctx.session, customer.owner_id)
    if owner is None or owner.id == rep.id:
        raise UserError(texts.CLASH_GONE)
    acting = ctx.acting
    may = acting.role is Role.ADMIN or (
        acting.role is Role.MANAGER and owner.team_id is not None and acting.team_id == owner.team_id
    )
    if not may:
        raise UserError(texts.CLASH_NOT_YOURS)
    return customer, owner, rep


@router.action(GiveClash)
async def give_to_rep(ctx: Ctx, payload: GiveClash) -> list[Reply]:
    customer, owner, rep = await _decision(ctx, payload)
    if await customer_store.find_by_name(ctx.session, rep.id, customer.name) is not None:
        raise UserError(texts.CLASH_NAME_TAKEN.format(rep=rep.name))
    await admin_store.transfer_customer(ctx.session, customer, rep, actor_id=ctx.acting.id, now=ctx.now(),
                                        reason="customer.clash")
    return [
        ctx.close_card(texts.CLASH_DONE_GIVE.format(rep=rep.name)),
        Text(texts.CLASH_GIVEN_REP.format(name=customer.name), to=ToMember(rep.id)),
        Text(texts.CLASH_GIVEN_OWNER.format(name=customer.name, rep=rep.name), to=ToMember(owner.id)),
    ]


@router.action(KeepClash)
async def keep_with_owner(ctx: Ctx, payload: KeepClash) -> list[Reply]:
    customer, owner, rep = await _decision(ctx, payload)
    return [
        ctx.close_card(texts.CLASH_DONE_KEEP.format(owner=owner.name)),
        Text(texts.CLASH_KEPT_REP.format(name=customer.name, owner=owner.name), to=ToMember(rep.id)),
    ]

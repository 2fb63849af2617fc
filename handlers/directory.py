"""客户名录 (SPEC §9): greetings are not customers, and 撞单 — a rep naming another rep's customer
as a new lead — is not created silently: the rep is told, and the owner's manager decides.

``clash_replies`` is called by touch logging before it offers to create a lead (handlers/touches).
"""

from __future__ import annotations

import re

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import CardReply, CardUpdate, Reply, Text, ToMember
from bot.router import Router
from cards.model import ActionPayload, Button, ButtonStyle, Card, action, new_task_id
from domain.enums import Role
from domain.parsing.customers import company_key
from handlers import texts_admin as texts
from handlers.dialogue import dialogue_key
from storage import admin as admin_store
from storage import cards as card_store
from storage import customers as customer_store
from storage import dialogues
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage.models import Customer, Member

router = Router("directory")

_GREETINGS = re.compile(
    r"^(你好|您好|嗨|哈喽|在吗|在不在|在么|hi|hello|hey|早|早上好|上午好|中午好|下午好|晚上好|早安|晚安)[呀啊吗!!~。.?? ]*$",
    re.IGNORECASE,
)
_THANKS = re.compile(r"^(谢谢|多谢|感谢|谢啦|thanks|thank you|thx)[您你呀啊!!~。. ]*$", re.IGNORECASE)


@router.claim_text
async def greeting(ctx: Ctx) -> list[Reply] | None:
    """A greeting or chit-chat gets a brief answer, never a new-lead card."""
    text = ctx.event.text.strip()
    if _GREETINGS.match(text):
        return [Text(texts.GREETING.format(name=ctx.acting.name))]
    if _THANKS.match(text):
        return [Text(texts.THANKS)]
    return None


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


async def clash_replies(ctx: Ctx, name: str) -> list[Reply] | None:
    """撞单: None when ``name`` is nobody else's customer; else the rep's notice and the decision card."""
    customer = await owned_elsewhere(ctx, name)
    if customer is None:
        return None
    await dialogues.clear_dialogue(ctx.session, dialogue_key(ctx))  # the touch draft waits for no card
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
                Button(texts.CLASH_GIVE.format(rep=ctx.acting.name), action("clg", customer.id, ctx.acting.id),
                       ButtonStyle.PRIMARY),
                Button(texts.CLASH_KEEP.format(owner=owner_name), action("clk", customer.id, ctx.acting.id)),
            ),
        )
        replies.append(CardReply(card, to=ToMember(decider.id)))
    return replies


async def _decision(ctx: Ctx, payload: ActionPayload) -> tuple[Customer, Member, Member]:
    """The customer, its owner and the asking rep, checked: still theirs, and the clicker may decide."""
    ids = [int(a) if a.isdigit() else -1 for a in payload.args[:2]]
    if len(ids) != 2:
        raise UserError(texts.CLASH_GONE)
    customer = await customer_store.get_customer(ctx.session, ids[0])
    rep = await member_store.get_member(ctx.session, ids[1])
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


async def _closed(ctx: Ctx, note: str) -> Reply:
    record = await card_store.get_card(ctx.session, ctx.event.task_id or "")
    assert record is not None
    return CardUpdate(Card.from_json(record.payload).closed(note))


@router.action("clg")
async def give_to_rep(ctx: Ctx, payload: ActionPayload) -> list[Reply]:
    customer, owner, rep = await _decision(ctx, payload)
    if await customer_store.find_by_name(ctx.session, rep.id, customer.name) is not None:
        raise UserError(texts.CLASH_NAME_TAKEN.format(rep=rep.name))
    await admin_store.transfer_customer(ctx.session, customer, rep, actor_id=ctx.acting.id, now=ctx.now(),
                                        reason="customer.clash")
    return [
        await _closed(ctx, texts.CLASH_DONE_GIVE.format(rep=rep.name)),
        Text(texts.CLASH_GIVEN_REP.format(name=customer.name), to=ToMember(rep.id)),
        Text(texts.CLASH_GIVEN_OWNER.format(name=customer.name, rep=rep.name), to=ToMember(owner.id)),
    ]


@router.action("clk")
async def keep_with_owner(ctx: Ctx, payload: ActionPayload) -> list[Reply]:
    customer, owner, rep = await _decision(ctx, payload)
    return [
        await _closed(ctx, texts.CLASH_DONE_KEEP.format(owner=owner.name)),
        Text(texts.CLASH_KEPT_REP.format(name=customer.name, owner=owner.name), to=ToMember(rep.id)),
    ]

"""客户: finding the customer a message names, within the member's scope; and /客户 <name>, one
customer's stage and recent touches.

``find_customer_named`` is the one way a handler resolves a customer named in a message: by name,
alias or contact person, among the customers the acting member may see (or only their own).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.context import Ctx
from bot.errors import UserError
from bot.replies import Markdown, Reply, Text
from bot.router import Router
from domain.parsing.customers import CustomerMatch, CustomerName, match_customer
from handlers import texts
from handlers import texts_admin as admin_texts
from handlers.format import format_due
from storage import customers as customer_store
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage import touches as touch_store
from storage.models import Customer

router = Router("customers")


def customer_names(customers: Iterable[Customer]) -> list[CustomerName]:
    """What the name matcher knows of each customer: its name, aliases and contact people."""
    return [CustomerName(c.id, c.name, tuple(c.aliases or ()), tuple(c.contacts or ())) for c in customers]


@dataclass(frozen=True)
class NamedCustomer:
    """The outcome of looking for a customer named in a text, among ``scope``."""

    match: CustomerMatch
    scope: dict[int, Customer]

    @property
    def customer(self) -> Customer | None:
        """The customer named, if exactly one of the scope is."""
        if self.match.status != "matched" or self.match.customer_id is None:
            return None
        return self.scope.get(self.match.customer_id)

    @property
    def ambiguous(self) -> bool:
        return self.match.status == "ambiguous"

    def candidate_names(self, separator: str = "、") -> str:
        return separator.join(self.scope[i].name for i in self.match.candidates if i in self.scope)


async def find_customer_named(
    ctx: Ctx, text: str, *, own_only: bool = False, among: Sequence[Customer] | None = None
) -> NamedCustomer:
    """The customer ``text`` names among those the acting member may see (``own_only``: owns;
    ``among``: a list the caller already has)."""
    if among is None:
        if own_only:
            among = await customer_store.owned_by(ctx.session, ctx.acting.id)
        else:
            among = await customer_store.customers_visible_to(ctx.session, ctx.acting)
    return NamedCustomer(match_customer(text, customer_names(among)), {c.id: c for c in among})


async def resolve_customer(ctx: Ctx, query: str, *, ambiguous: str, not_found: str) -> Customer:
    """The visible customer ``query`` names, or a ``UserError`` (``ambiguous`` has ``{name}`` and
    ``{names}``, ``not_found`` has ``{name}``)."""
    named = await find_customer_named(ctx, query)
    if named.customer is not None:
        return named.customer
    if named.ambiguous:
        raise UserError(ambiguous.format(name=query, names=named.candidate_names()))
    raise UserError(not_found.format(name=query))


@router.command("/客户", "/customer", summary=texts.CMD_CUSTOMER, usage=texts.CMD_CUSTOMER_USAGE)
async def show_customer(ctx: Ctx) -> list[Reply]:
    parts = ctx.event.text.strip().split(maxsplit=1)
    if len(parts) < 2 or not parts[1].strip():
        return [Text(texts.CUSTOMER_USAGE)]
    if (edited := await edit_directory(ctx, parts[1])) is not None:
        return edited
    customer = await resolve_customer(
        ctx, parts[1].strip()[:64], ambiguous=texts.CUSTOMER_AMBIGUOUS, not_found=texts.CUSTOMER_NOT_FOUND
    )
    owner = await member_store.get_member(ctx.session, customer.owner_id)
    stage_names = await pipeline_store.stage_names(ctx.session)
    recent = await touch_store.recent_touches(ctx.session, customer.id, limit=3)
    today = ctx.today()
    days_in_stage = (today - ctx.local_date(customer.stage_entered_at)).days
    latest = recent[0] if recent else None
    body = texts.CUSTOMER_LINES.format(
        owner=owner.name if owner else "-",
        stage=stage_names.get(customer.stage_id, "-"),
        days=days_in_stage,
        industry=customer.industry or "-",
        contacts="、".join(customer.contacts or []) or "-",
        last=latest.occurred_at.astimezone(ctx.tz).strftime("%m-%d %H:%M") if latest else texts.CUSTOMER_NO_TOUCH,
        next=f"{latest.next_action}({format_due(latest.next_due, today)})" if latest else "-",
    )
    lines = [f"### {texts.CUSTOMER_TITLE.format(name=customer.name)}", body]
    lines += _custom_field_lines(customer)
    if recent:
        lines += ["", texts.CUSTOMER_TOUCHES_HEADER]
        lines += [
            texts.CUSTOMER_TOUCH_LINE.format(
                date=t.occurred_at.astimezone(ctx.tz).strftime("%m-%d"), channel=t.channel.value, summary=t.summary[:40]
            )
            for t in recent
        ]
    return [Markdown(texts.CUSTOMER_TITLE.format(name=customer.name), "\n".join(lines))]


# --- the customer directory: aliases, contacts, custom fields (SPEC §9) -------------------------

_EDIT_WORDS = ("别名", "联系人")
_PHONE = re.compile(r"^\+?[\d\-]{5,20}$")


def _custom_field_lines(customer: Customer) -> list[str]:
    fields = customer.custom_fields or {}
    if not fields:
        return []
    return ["", admin_texts.CUSTOMER_CUSTOM_HEADER] + [
        admin_texts.CUSTOMER_CUSTOM_LINE.format(key=key, value=str(value)[:200]) for key, value in list(fields.items())[:30]
    ]


async def edit_directory(ctx: Ctx, args: str) -> list[Reply] | None:
    """``/客户 华东建材 别名 华东`` / ``/客户 华东建材 联系人 张总 13800000000``; None if not an edit."""
    tokens = args.split()
    index = next((i for i, token in enumerate(tokens) if i >= 1 and token in _EDIT_WORDS), None)
    if index is None:
        return None
    name, word, values = " ".join(tokens[:index])[:64], tokens[index], tokens[index + 1 :]
    if not values:
        return [Text(admin_texts.CUSTOMER_EDIT_USAGE)]
    visible = list(await customer_store.customers_visible_to(ctx.session, ctx.acting))
    named = await find_customer_named(ctx, name, among=visible)
    if named.customer is None:
        if named.ambiguous:
            return [Text(texts.CUSTOMER_AMBIGUOUS.format(name=name, names=named.candidate_names()))]
        return [Text(texts.CUSTOMER_NOT_FOUND.format(name=name))]
    customer = named.customer
    if word == "别名":
        return [Text(_add_aliases(customer, values, visible))]
    return [Text(_add_contact(customer, values))]


def _add_aliases(customer: Customer, values: list[str], visible: list[Customer]) -> str:
    wanted = [v[:32] for v in re.split(r"[、,,]", " ".join(values)) if v.strip()]
    for alias in wanted:
        for other in visible:
            if other.id != customer.id and other.owner_id == customer.owner_id and alias in (other.name, *(other.aliases or [])):
                raise UserError(admin_texts.CUSTOMER_ALIAS_TAKEN.format(alias=alias, other=other.name))
    customer.aliases = list(dict.fromkeys([*(customer.aliases or []), *wanted]))
    return admin_texts.CUSTOMER_ALIAS_ADDED.format(name=customer.name, values="、".join(wanted),
                                                    all="、".join(customer.aliases))


def _add_contact(customer: Customer, values: list[str]) -> str:
    contact = values[0][:32]
    phone = next((v for v in values[1:] if _PHONE.match(v)), "")
    customer.contacts = list(dict.fromkeys([*(customer.contacts or []), contact]))
    if phone:
        fields = dict(customer.custom_fields or {})
        entries = [e for e in str(fields.get(admin_texts.PHONE_FIELD, "")).split("、") if e and e.split(" ")[0] != contact]
        fields[admin_texts.PHONE_FIELD] = "、".join([*entries, f"{contact} {phone}"])
        customer.custom_fields = fields
    return admin_texts.CUSTOMER_CONTACT_ADDED.format(name=customer.name, contact=contact,
                                                      phone=f"({phone})" if phone else "",
                                                      all="、".join(customer.contacts))

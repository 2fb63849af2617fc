"""/客户 <name>: one customer's stage and recent touches, within what the member may see."""

from __future__ import annotations

from bot.context import Ctx
from bot.replies import Markdown, Reply, Text
from bot.router import Router
from domain.parsing.customers import CustomerName, match_customer
from handlers import texts
from handlers.format import format_due
from storage import customers as customer_store
from storage import members as member_store
from storage import pipelines as pipeline_store
from storage import touches as touch_store

router = Router("customers")


@router.command("/客户", "/customer", summary="查看客户")
async def show_customer(ctx: Ctx) -> list[Reply]:
    parts = ctx.event.text.strip().split(maxsplit=1)
    if len(parts) < 2 or not parts[1].strip():
        return [Text(texts.CUSTOMER_USAGE)]
    query = parts[1].strip()[:64]
    visible = await customer_store.customers_visible_to(ctx.session, ctx.acting)
    names = [CustomerName(c.id, c.name, tuple(c.aliases or ()), tuple(c.contacts or ())) for c in visible]
    match = match_customer(query, names)
    by_id = {c.id: c for c in visible}
    if match.status == "ambiguous":
        listed = "、".join(by_id[i].name for i in match.candidates)
        return [Text(texts.CUSTOMER_AMBIGUOUS.format(name=query, names=listed))]
    if match.status != "matched" or match.customer_id not in by_id:
        return [Text(texts.CUSTOMER_NOT_FOUND.format(name=query))]
    customer = by_id[match.customer_id]
    owner = await member_store.get_member(ctx.session, customer.owner_id)
    stage_names = await pipeline_store.stage_names(ctx.session)
    recent = await touch_store.recent_touches(ctx.session, customer.id, limit=3)
    today = ctx.today()
    days_in_stage = (today - customer.stage_entered_at.astimezone(ctx.tz).date()).days
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
    if recent:
        lines += ["", texts.CUSTOMER_TOUCHES_HEADER]
        lines += [
            texts.CUSTOMER_TOUCH_LINE.format(
                date=t.occurred_at.astimezone(ctx.tz).strftime("%m-%d"), channel=t.channel.value, summary=t.summary[:40]
            )
            for t in recent
        ]
    return [Markdown(texts.CUSTOMER_TITLE.format(name=customer.name), "\n".join(lines))]

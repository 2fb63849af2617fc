"""Test data helpers that go through storage functions, as the product does."""

from __future__ import annotations

from typing import Any

from storage import customers as customer_store
from storage import members as member_store
from storage.models import Customer


async def add_customer(
    runtime: Any, owner: str, name: str, *, aliases: tuple[str, ...] = (), contacts: tuple[str, ...] = ()
) -> Customer:
    async with runtime.sessions() as session, session.begin():
        member = await member_store.member_by_code(session, owner)
        assert member is not None, owner
        customer = await customer_store.create_lead(session, owner_id=member.id, name=name, now=runtime.clock.now())
        customer.aliases = list(aliases)
        customer.contacts = list(contacts)
        customer.last_touch_at = runtime.clock.now()
    return customer

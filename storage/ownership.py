"""Who owned a customer (``customer_owners``) and which team a member was in (``member_teams``), from when.

``record_owner_change`` is called in the same transaction as the change and *before* it: a
customer's first change also records the owner it had until then (from its creation), so that
owner is known for any earlier instant. ``storage.metrics`` reads the rows to count each customer
for its owner at the as-of instant.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Select, case, exists, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Customer, CustomerOwner, Member, MemberTeam, Timestamp


async def record_owner_change(
    session: AsyncSession, customers: Select[Any], owner_id: int, *, now: dt.datetime
) -> None:
    """The customers whose ids ``customers`` selects belong to ``owner_id`` from ``now`` on.

    Two INSERT … SELECT statements, however many customers move.
    """
    ids = customers.correlate(None)  # its own FROM, even when it selects from customers too
    columns = ["customer_id", "owner_id", "since"]
    since = case((Customer.created_at < literal(now, Timestamp()), Customer.created_at), else_=literal(now, Timestamp()))
    first = select(Customer.id, Customer.owner_id, since).where(
        Customer.id.in_(ids), ~exists().where(CustomerOwner.customer_id == Customer.id)
    )
    await session.execute(insert(CustomerOwner).from_select(columns, first))
    moved = select(Customer.id, literal(owner_id, BigInteger()), literal(now, Timestamp())).where(
        Customer.id.in_(ids), Customer.owner_id != owner_id
    )
    await session.execute(insert(CustomerOwner).from_select(columns, moved))


async def record_new_owner(session: AsyncSession, customer_id: int, owner_id: int, *, now: dt.datetime) -> None:
    """One customer belongs to ``owner_id`` from ``now`` on (call before changing ``owner_id``)."""
    await record_owner_change(session, select(Customer.id).where(Customer.id == customer_id), owner_id, now=now)


async def record_team_change(session: AsyncSession, member: Member, team_id: int | None, *, now: dt.datetime) -> None:
    """``member`` is in team ``team_id`` from ``now`` on: call before changing ``member.team_id``.

    Nothing to record for a member not yet stored (its first team is its current one) or when the
    team stays the same.
    """
    if member.id is None or member.team_id == team_id:
        return
    if not await session.scalar(select(exists().where(MemberTeam.member_id == member.id))):
        # The team before: from the member's creation (or from ``now``, should that be earlier).
        session.add(MemberTeam(member_id=member.id, team_id=member.team_id, since=min(member.created_at, now)))
    session.add(MemberTeam(member_id=member.id, team_id=team_id, since=now))

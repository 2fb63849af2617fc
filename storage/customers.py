"""Customers: the names a rep can refer to, leads, and the scope each role may see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Role
from storage.models import Customer, Member, StageHistory
from storage.pipelines import first_stage, pipeline_for_member


async def get_customer(session: AsyncSession, customer_id: int) -> Customer | None:
    return await session.get(Customer, customer_id)


async def customers_visible_to(session: AsyncSession, member: Member) -> list[Customer]:
    """Least privilege: reps see their own customers, managers their team's, admins all."""
    query = select(Customer)
    if member.role is Role.ADMIN:
        pass
    elif member.role is Role.MANAGER and member.team_id is not None:
        query = query.join(Member, Member.id == Customer.owner_id).where(Member.team_id == member.team_id)
    else:
        query = query.where(Customer.owner_id == member.id)
    return list(await session.scalars(query.order_by(Customer.id)))


_OWNED_BY = select(Customer).where(Customer.owner_id == bindparam("owner_id")).order_by(Customer.id)  # built once


async def owned_by(session: AsyncSession, owner_id: int) -> list[Customer]:
    return list(await session.scalars(_OWNED_BY, {"owner_id": owner_id}))


async def by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Customer]:
    if not ids:
        return {}
    return {c.id: c for c in await session.scalars(select(Customer).where(Customer.id.in_(ids)))}


async def find_by_name(session: AsyncSession, owner_id: int, name: str) -> Customer | None:
    return await session.scalar(select(Customer).where(Customer.owner_id == owner_id, Customer.name == name))


async def create_lead(session: AsyncSession, *, owner_id: int, name: str, now: dt.datetime) -> Customer:
    """A new customer in the first stage (新线索) of the owner's team pipeline (else the default)."""
    owner = await session.get(Member, owner_id)
    pipeline = await pipeline_for_member(session, owner.team_id if owner else None)
    stage = await first_stage(session, pipeline.id)
    customer = Customer(
        name=name,
        owner_id=owner_id,
        pipeline_id=pipeline.id,
        stage_id=stage.id,
        stage_entered_at=now,
        created_at=now,
        aliases=[],
        contacts=[],
        custom_fields={},
    )
    session.add(customer)
    await session.flush()
    session.add(StageHistory(customer_id=customer.id, stage_id=stage.id, entered_at=now, member_id=owner_id))
    return customer


# --- the customer directory: 撞单 (team-import) ---


async def others_named_like(session: AsyncSession, owner_id: int, fragment: str, *, limit: int = 50) -> list[Customer]:
    """Customers of other owners whose name contains ``fragment`` (candidates for 撞单)."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(Customer)
        .where(Customer.owner_id != owner_id, Customer.name.like(f"%{escaped}%", escape="\\"))
        .order_by(Customer.id)
        .limit(limit)
    )
    return list(await session.scalars(query))

"""Admin changes to the organisation: roles, teams, handing a leaving rep's customers over, and the
rule thresholds set in chat. Each writes an audit row (storage.audit) in the same transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Role
from storage import audit, ownership
from storage import settings as settings_store
from storage.models import Alert, Customer, Member, Team

RULES_KEY = "rules.overrides"


async def set_role(session: AsyncSession, member: Member, role: Role, *, actor_id: int, now: dt.datetime) -> None:
    before = member.role.value
    member.role = role
    member.role_locked = True  # directory sync must not undo an admin's choice
    await audit.record(session, member_id=actor_id, action="member.role", subject=member.code,
                       before={"role": before}, after={"role": role.value}, now=now)


async def move_team(session: AsyncSession, member: Member, team: Team, *, actor_id: int, now: dt.datetime) -> str | None:
    """Move a member to another team; returns the old team's key."""
    old = await session.get(Team, member.team_id) if member.team_id is not None else None
    await ownership.record_team_change(session, member, team.id, now=now)
    member.team_id = team.id
    await audit.record(session, member_id=actor_id, action="member.team", subject=member.code,
                       before={"team": old.key if old else None}, after={"team": team.key}, now=now)
    return old.key if old else None


async def team_by_key_or_name(session: AsyncSession, text: str) -> Team | None:
    return await session.scalar(select(Team).where((Team.key == text) | (Team.name == text)).limit(1))


async def clashing_names(session: AsyncSession, source_id: int, target_id: int) -> list[str]:
    """Names both members already own: moving would give the target two customers of one name."""
    source_names = select(Customer.name).where(Customer.owner_id == source_id)
    query = select(Customer.name).where(Customer.owner_id == target_id, Customer.name.in_(source_names))
    return list(await session.scalars(query.order_by(Customer.name)))


async def transfer_customers(
    session: AsyncSession, source: Member, target: Member, *, actor_id: int, now: dt.datetime
) -> int:
    """转交: every customer of ``source`` to ``target`` — stage, stage history, touches and evidence
    stay with the customer (they are keyed by customer); open alerts follow the new owner."""
    ids = select(Customer.id).where(Customer.owner_id == source.id)
    count = int(await session.scalar(select(func.count()).select_from(ids.subquery())) or 0)
    await session.execute(
        update(Alert)
        .where(Alert.customer_id.in_(ids), Alert.open_key.is_not(None), Alert.member_id == source.id)
        .values(member_id=target.id)
    )
    await ownership.record_owner_change(session, ids, target.id, now=now)
    await session.execute(update(Customer).where(Customer.owner_id == source.id).values(owner_id=target.id))
    await audit.record(session, member_id=actor_id, action="member.transfer", subject=f"{source.code}→{target.code}",
                       before={"owner": source.code, "customers": count}, after={"owner": target.code}, now=now)
    return count


async def transfer_customer(
    session: AsyncSession, customer: Customer, target: Member, *, actor_id: int, now: dt.datetime, reason: str
) -> None:
    before = customer.owner_id
    source = await session.get(Member, before)
    await session.execute(
        update(Alert)
        .where(Alert.customer_id == customer.id, Alert.open_key.is_not(None), Alert.member_id == before)
        .values(member_id=target.id)
    )
    await ownership.record_new_owner(session, customer.id, target.id, now=now)
    customer.owner_id = target.id
    await audit.record(session, member_id=actor_id, action=reason, subject=customer.name,
                       before={"owner": source.code if source else before}, after={"owner": target.code}, now=now)


async def customer_count(session: AsyncSession, owner_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(Customer).where(Customer.owner_id == owner_id)) or 0)


# -- rule thresholds set in chat -----------------------------------------------------------------


async def rule_overrides(session: AsyncSession) -> dict[str, Any]:
    """{"values": {field: value}, "changed": {field: {"by": code, "at": iso}}}."""
    stored = await settings_store.get(session, RULES_KEY)
    return stored if isinstance(stored, dict) else {}


async def set_rule(
    session: AsyncSession, field: str, value: Any, before: Any, *, actor: Member, now: dt.datetime
) -> None:
    stored = await rule_overrides(session)
    values = dict(stored.get("values", {}))
    changed = dict(stored.get("changed", {}))
    values[field] = value
    changed[field] = {"by": actor.code, "name": actor.name, "at": now.isoformat()}
    await settings_store.put(session, RULES_KEY, {"values": values, "changed": changed})
    await audit.record(session, member_id=actor.id, action="rules.set", subject=field,
                       before={field: before}, after={field: value}, now=now)

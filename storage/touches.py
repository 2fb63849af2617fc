"""Touches (接触记录) and their evidence (凭证)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from domain.enums import Channel, EvidenceKind, EvidenceStatus
from storage.db import rowcount
from storage.media import StoredMedia
from storage.models import Customer, Evidence, Touch

_TOUCHES = cast(Table, Touch.__table__)
_CUSTOMERS = cast(Table, Customer.__table__)
# Built once: the statements of every logged touch.
_INSERT_TOUCH = insert(_TOUCHES)
_SET_LAST_TOUCH = update(_CUSTOMERS).where(_CUSTOMERS.c.id == bindparam("b_id")).values(last_touch_at=bindparam("b_at"))


async def record_touch(
    session: AsyncSession,
    *,
    customer: Customer,
    member_id: int,
    channel: Channel,
    duration_minutes: int | None,
    summary: str,
    raw_text: str,
    next_action: str,
    next_due: dt.date,
    proposal: bool,
    occurred_at: dt.datetime,
    source_event_id: int | None,
) -> Touch:
    # Core statements rather than the ORM's unit of work: the row is known in full, so the Touch
    # handed back is attached to the session as loaded (later changes to it are flushed as usual).
    await session.flush()  # what the handler changed before is written first, as in a unit of work
    values: dict[str, Any] = {
        "customer_id": customer.id,
        "member_id": member_id,
        "channel": channel,
        "duration_minutes": duration_minutes,
        "summary": summary,
        "raw_text": raw_text,
        "next_action": next_action,
        "next_due": next_due,
        "proposal": proposal,
        "effective": False,
        "evidence_status": EvidenceStatus.PENDING,
        "occurred_at": occurred_at,
        "undone_at": None,
        "no_progress": False,
        "stall_phrases": [],
        "source_event_id": source_event_id,
    }
    connection = await session.connection()  # Core: the ORM's execution path adds nothing here
    result = await connection.execute(_INSERT_TOUCH, values)
    assert isinstance(result, CursorResult) and result.inserted_primary_key is not None
    touch = Touch(id=result.inserted_primary_key[0], **values)
    make_transient_to_detached(touch)
    session.add(touch)
    if customer.last_touch_at is None or customer.last_touch_at < occurred_at:
        await connection.execute(_SET_LAST_TOUCH, {"b_id": customer.id, "b_at": occurred_at})
        set_committed_value(customer, "last_touch_at", occurred_at)
    return touch


async def touch_from_event(session: AsyncSession, inbox_id: int) -> Touch | None:
    return await session.scalar(select(Touch).where(Touch.source_event_id == inbox_id))


async def get_touch(session: AsyncSession, touch_id: int) -> Touch | None:
    return await session.get(Touch, touch_id)


async def open_touch(session: AsyncSession, member_id: int, since: dt.datetime) -> Touch | None:
    """The rep's latest touch logged since ``since`` (the evidence window), if not undone."""
    return await session.scalar(
        select(Touch)
        .where(Touch.member_id == member_id, Touch.occurred_at >= since, Touch.undone_at.is_(None))
        .order_by(Touch.occurred_at.desc(), Touch.id.desc())
        .limit(1)
    )


async def latest_touch_of(session: AsyncSession, customer_id: int) -> Touch | None:
    return await session.scalar(
        select(Touch)
        .where(Touch.customer_id == customer_id, Touch.undone_at.is_(None))
        .order_by(Touch.occurred_at.desc(), Touch.id.desc())
        .limit(1)
    )


async def recent_touches(session: AsyncSession, customer_id: int, limit: int = 3) -> list[Touch]:
    return list(
        await session.scalars(
            select(Touch)
            .where(Touch.customer_id == customer_id, Touch.undone_at.is_(None))
            .order_by(Touch.occurred_at.desc(), Touch.id.desc())
            .limit(limit)
        )
    )


async def undo_touch(session: AsyncSession, touch: Touch, now: dt.datetime) -> None:
    """Withdraw a touch; the customer's last-touch time falls back to the previous one."""
    touch.undone_at = now
    await session.flush()
    previous = await session.scalar(
        select(func.max(Touch.occurred_at)).where(Touch.customer_id == touch.customer_id, Touch.undone_at.is_(None))
    )
    await session.execute(update(Customer).where(Customer.id == touch.customer_id).values(last_touch_at=previous))


async def recently_touched_customers(session: AsyncSession, member_id: int, limit: int = 5) -> list[int]:
    rows = await session.execute(
        select(Touch.customer_id, func.max(Touch.occurred_at).label("last"))
        .where(Touch.member_id == member_id, Touch.undone_at.is_(None))
        .group_by(Touch.customer_id)
        .order_by(func.max(Touch.occurred_at).desc())
        .limit(limit)
    )
    return [row.customer_id for row in rows]


async def add_evidence(
    session: AsyncSession,
    *,
    customer_id: int,
    member_id: int,
    touch_id: int | None,
    kind: EvidenceKind,
    sha256: str | None,
    path: str | None,
    thumb_path: str | None,
    mime: str,
    size: int,
    filename: str,
    note: str,
    attributes: dict[str, Any],
    now: dt.datetime,
    source_event_id: int | None,
) -> Evidence:
    evidence = Evidence(
        customer_id=customer_id,
        member_id=member_id,
        touch_id=touch_id,
        kind=kind,
        sha256=sha256,
        path=path,
        thumb_path=thumb_path,
        mime=mime,
        size=size,
        filename=filename,
        note=note,
        attributes=attributes,
        created_at=now,
        source_event_id=source_event_id,
    )
    session.add(evidence)
    await session.flush()
    return evidence


async def add_media_evidence(
    session: AsyncSession,
    *,
    stored: StoredMedia,
    kind: EvidenceKind,
    customer_id: int,
    member_id: int,
    touch_id: int | None,
    note: str,
    now: dt.datetime,
    source_event_id: int | None,
    purpose: dict[str, Any] | None = None,
) -> Evidence:
    """Evidence from a stored file; its attributes are what the file tells plus ``purpose``."""
    return await add_evidence(
        session,
        customer_id=customer_id,
        member_id=member_id,
        touch_id=touch_id,
        kind=kind,
        sha256=stored.sha256,
        path=stored.path,
        thumb_path=stored.thumb_path,
        mime=stored.mime,
        size=stored.size,
        filename=stored.filename,
        note=note[:1000],
        attributes={**stored.found_attributes(), **(purpose or {})},
        now=now,
        source_event_id=source_event_id,
    )


async def evidence_of(session: AsyncSession, touch_id: int) -> list[Evidence]:
    return list(await session.scalars(select(Evidence).where(Evidence.touch_id == touch_id).order_by(Evidence.id)))


async def due_next_actions(session: AsyncSession, member_id: int, until: dt.date) -> list[tuple[Touch, Customer]]:
    """Next actions due by ``until`` that no later touch has followed up (the rep's to-do list)."""
    later = aliased(Touch)
    followed = (
        select(later.id)
        .where(
            later.customer_id == Touch.customer_id,
            later.undone_at.is_(None),
            later.occurred_at > Touch.occurred_at,
        )
        .exists()
    )
    rows = await session.execute(
        select(Touch, Customer)
        .join(Customer, Customer.id == Touch.customer_id)
        .where(
            Customer.owner_id == member_id,
            Touch.undone_at.is_(None),
            Touch.next_due <= until,
            ~followed,
        )
        .order_by(Touch.next_due, Customer.name)
    )
    return [(row[0], row[1]) for row in rows]


async def pending_evidence(session: AsyncSession, member_id: int) -> list[tuple[Touch, Customer]]:
    rows = await session.execute(
        select(Touch, Customer)
        .join(Customer, Customer.id == Touch.customer_id)
        .where(
            Touch.member_id == member_id,
            Touch.undone_at.is_(None),
            Touch.evidence_status == EvidenceStatus.PENDING,
        )
        .order_by(Touch.occurred_at.desc())
        .limit(20)
    )
    return [(row[0], row[1]) for row in rows]


async def cold_customers(session: AsyncSession, owner_id: int, cutoff: dt.datetime, limit: int = 10) -> list[Customer]:
    """The rep's customers with no touch since ``cutoff`` (never-touched: created before it)."""
    rows = await session.scalars(
        select(Customer)
        .where(
            Customer.owner_id == owner_id,
            Customer.status != "closed",
            func.coalesce(Customer.last_touch_at, Customer.created_at) < cutoff,
        )
        .order_by(func.coalesce(Customer.last_touch_at, Customer.created_at))
        .limit(limit)
    )
    return list(rows)


async def expire_pending_evidence(session: AsyncSession, cutoff: dt.datetime) -> int:
    """Touches still without evidence after the deadline stay non-effective: mark them missing."""
    result = await session.execute(
        update(Touch)
        .where(and_(Touch.evidence_status == EvidenceStatus.PENDING, Touch.occurred_at < cutoff))
        .values(evidence_status=EvidenceStatus.MISSING, effective=False)
    )
    return rowcount(result)


async def effective_touch_count(session: AsyncSession, member_id: int) -> int:
    """有效触达 so far: the rep's effective touches that were not undone (what rewards count)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Touch)
        .where(Touch.member_id == member_id, Touch.effective.is_(True), Touch.undone_at.is_(None))
    )
    return int(count or 0)

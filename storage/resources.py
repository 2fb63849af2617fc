"""资源申请: resource requests and the stage evidence that gates them (SPEC §3.3)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import EvidenceStatus, ResourceRequestStatus
from storage.models import Customer, Evidence, ResourceRequest, Touch


async def effective_touches_in_stage(session: AsyncSession, customer: Customer) -> list[Touch]:
    """The customer's effective touches (evidence included) since it entered its current stage."""
    return list(
        await session.scalars(
            select(Touch)
            .where(
                Touch.customer_id == customer.id,
                Touch.effective.is_(True),
                Touch.undone_at.is_(None),
                Touch.occurred_at >= customer.stage_entered_at,
            )
            .order_by(Touch.occurred_at, Touch.id)
        )
    )


async def touches_awaiting_evidence_in_stage(session: AsyncSession, customer: Customer) -> int:
    count = await session.scalar(
        select(func.count(Touch.id)).where(
            Touch.customer_id == customer.id,
            Touch.evidence_status == EvidenceStatus.PENDING,
            Touch.undone_at.is_(None),
            Touch.occurred_at >= customer.stage_entered_at,
        )
    )
    return int(count or 0)


async def evidence_of_touches(session: AsyncSession, touch_ids: list[int]) -> list[Evidence]:
    if not touch_ids:
        return []
    return list(
        await session.scalars(
            select(Evidence).where(Evidence.touch_id.in_(touch_ids)).order_by(Evidence.created_at, Evidence.id)
        )
    )


async def pending_duplicate(
    session: AsyncSession, *, customer_id: int, kind: str, amount: int | None
) -> ResourceRequest | None:
    """A pending request of the same kind and amount for the same customer."""
    query = select(ResourceRequest).where(
        ResourceRequest.customer_id == customer_id,
        ResourceRequest.kind == kind,
        ResourceRequest.status == ResourceRequestStatus.PENDING,
    )
    query = query.where(ResourceRequest.amount.is_(None) if amount is None else ResourceRequest.amount == amount)
    return await session.scalar(query.order_by(ResourceRequest.requested_at).limit(1))


async def create_request(
    session: AsyncSession,
    *,
    customer: Customer,
    member_id: int,
    kind: str,
    amount: int | None,
    purpose: str,
    evidence: list[dict[str, Any]],
    task_id: str | None,
    now: dt.datetime,
) -> ResourceRequest:
    """A pending request, recording the stage the customer is in right now."""
    request = ResourceRequest(
        customer_id=customer.id,
        member_id=member_id,
        kind=kind,
        amount=amount,
        purpose=purpose,
        stage_id=customer.stage_id,
        evidence=evidence,
        status=ResourceRequestStatus.PENDING,
        requested_at=now,
        task_id=task_id,
    )
    session.add(request)
    await session.flush()
    return request


async def get_request(session: AsyncSession, request_id: int) -> ResourceRequest | None:
    return await session.get(ResourceRequest, request_id)


def decide(
    request: ResourceRequest, *, approved: bool, by: int, now: dt.datetime, reason: str = ""
) -> None:
    request.status = ResourceRequestStatus.APPROVED if approved else ResourceRequestStatus.REJECTED
    request.decided_at = now
    request.decided_by = by
    request.decision_reason = reason

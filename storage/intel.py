"""竞品动态: competitor sightings reported by reps, and what the weekly calibration report reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Competitor, CompetitorIntel, Customer, Evidence, Member


async def record_intel(
    session: AsyncSession,
    *,
    competitor_id: int | None,
    member_id: int,
    customer_id: int | None,
    text: str,
    evidence_id: int | None,
    now: dt.datetime,
    source_event_id: int | None,
    photo_path: str | None = None,
) -> CompetitorIntel:
    """Store one sighting; ``competitor_id`` is None for a competitor not (yet) in the base."""
    intel = CompetitorIntel(
        competitor_id=competitor_id,
        member_id=member_id,
        customer_id=customer_id,
        text=text,
        evidence_id=evidence_id,
        photo_path=photo_path,
        reported_at=now,
        source_event_id=source_event_id,
    )
    session.add(intel)
    await session.flush()
    return intel


@dataclass(frozen=True)
class IntelItem:
    """One sighting as the calibration report shows it."""

    id: int
    reported_at: dt.datetime
    competitor: str | None  # None: not in the competitor base yet (admins should add it)
    member: str
    customer: str | None
    text: str
    photo_path: str | None  # the stored photo (media store path), when one was sent


async def intel_since(session: AsyncSession, since: dt.datetime) -> list[IntelItem]:
    """Sightings reported at or after ``since``, oldest first."""
    rows = await session.execute(
        select(
            CompetitorIntel.id,
            CompetitorIntel.reported_at,
            CompetitorIntel.text,
            Competitor.name.label("competitor"),
            Member.name.label("member"),
            Customer.name.label("customer"),
            func.coalesce(Evidence.path, CompetitorIntel.photo_path).label("photo_path"),
        )
        .join(Member, Member.id == CompetitorIntel.member_id)
        .outerjoin(Competitor, Competitor.id == CompetitorIntel.competitor_id)
        .outerjoin(Customer, Customer.id == CompetitorIntel.customer_id)
        .outerjoin(Evidence, Evidence.id == CompetitorIntel.evidence_id)
        .where(CompetitorIntel.reported_at >= since)
        .order_by(CompetitorIntel.reported_at, CompetitorIntel.id)
    )
    return [
        IntelItem(
            id=row.id,
            reported_at=row.reported_at,
            competitor=row.competitor,
            member=row.member,
            customer=row.customer,
            text=row.text,
            photo_path=row.photo_path,
        )
        for row in rows
    ]

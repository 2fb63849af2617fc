"""Building small organisations for the metric, digest and calibration tests (storage-level helpers)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from domain.enums import Channel, EvidenceStatus
from storage import customers as customer_store
from storage import members as member_store
from storage import obstacles as obstacle_store
from storage.models import Customer, Pipeline, Stage, StageHistory, SupportRequest, Touch

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(day: str, time: str = "10:00") -> dt.datetime:
    """A Shanghai wall-clock instant, e.g. local("2026-11-22", "23:59")."""
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=SHANGHAI)


class OrgBuilder:
    """Writes customers, touches, stage entries and support requests in one session."""

    def __init__(self, session: Any, now: dt.datetime) -> None:
        self.session = session
        self.now = now

    async def member_id(self, code: str) -> int:
        member = await member_store.member_by_code(self.session, code)
        assert member is not None, code
        return member.id

    async def customer(self, owner: str, name: str, *, pipeline: str = "b2b") -> Customer:
        customer = await customer_store.create_lead(self.session, owner_id=await self.member_id(owner), name=name,
                                                    now=self.now)
        if pipeline != "b2b":
            row = await self.session.scalar(select(Pipeline).where(Pipeline.key == pipeline))
            first = await self.session.scalar(select(Stage).where(Stage.pipeline_id == row.id).order_by(Stage.position))
            customer.pipeline_id, customer.stage_id = row.id, first.id
        await self.session.flush()
        return customer

    async def touch(
        self, customer: Customer, at: dt.datetime, channel: Channel = Channel.PHONE, *, by: str | None = None,
        due: dt.date | None = None, undone_at: dt.datetime | None = None, effective: bool = False,
    ) -> Touch:
        member_id = await self.member_id(by) if by else customer.owner_id
        touch = Touch(
            customer_id=customer.id, member_id=member_id, channel=channel, duration_minutes=10, summary="沟通",
            raw_text="沟通", next_action="回访", next_due=due or (self.now.date() + dt.timedelta(days=60)),
            proposal=False, effective=effective, evidence_status=EvidenceStatus.PROVIDED, occurred_at=at,
            undone_at=undone_at,
        )
        self.session.add(touch)
        await self.session.flush()
        return touch

    async def enter(self, customer: Customer, stage: str, at: dt.datetime) -> None:
        stage_id = await self.session.scalar(
            select(Stage.id).where(Stage.pipeline_id == customer.pipeline_id, Stage.name == stage)
        )
        assert stage_id is not None, stage
        self.session.add(StageHistory(customer_id=customer.id, stage_id=stage_id, entered_at=at, member_id=customer.owner_id))
        await self.session.flush()

    async def support_request(
        self, customer: Customer, requested_at: dt.datetime, replied_at: dt.datetime | None = None,
        option: str = "技术适配存疑",
    ) -> SupportRequest:
        obstacle = await obstacle_store.record_obstacle(
            self.session, customer_id=customer.id, stage_id=customer.stage_id, stage_change_id=None,
            member_id=customer.owner_id, option=option, required_evidence=None, now=requested_at,
        )
        request = await obstacle_store.create_support_request(
            self.session, obstacle=obstacle, requester_id=customer.owner_id, supporter_id=None, now=requested_at
        )
        request.first_reply_at = replied_at
        await self.session.flush()
        return request

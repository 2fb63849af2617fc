"""导出: the organisation (or one team) as an .xlsx workbook.

Sheets: 客户 (the import columns, so that re-importing this sheet changes nothing, plus days in
stage and open alerts), 跟进记录, 预警, 资源申请 and 审计. Streamed row by row with
storage.xlsxstream (bounded memory). Every text is written as an inline string cell, never a
formula: a value beginning with "=" stays text (no formula injection).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.importing import CANONICAL_HEADERS, EXPORT_ONLY_HEADERS
from storage.models import Alert, AuditEntry, Customer, Member, ResourceRequest, Stage, Touch
from storage.xlsxstream import SheetStream, XlsxStream

CUSTOMER_COLUMNS = tuple(
    CANONICAL_HEADERS[key]
    for key in ("name", "industry", "contacts", "last_touch", "stage", "obstacle", "expected_sign", "owner", "aliases")
)
STREAM_BATCH = 2000


@dataclass
class ExportCounts:
    sheets: dict[str, int] = field(default_factory=dict)


def _scoped(query: Any, owner_column: Any, team_id: int | None) -> Any:
    if team_id is None:
        return query
    return query.where(owner_column.in_(select(Member.id).where(Member.team_id == team_id)))


async def export_workbook(
    session: AsyncSession,
    path: str | Path,
    *,
    now: dt.datetime,
    tz: ZoneInfo,
    team_id: int | None = None,
    include_audit: bool = True,
) -> ExportCounts:
    """Write the workbook to ``path``; ``team_id`` limits it to one team's customers (managers)."""
    counts = ExportCounts()
    with XlsxStream(path) as workbook:
        writer = _Writer(workbook, tz)
        counts.sheets["客户"] = await _customers(session, writer, now, tz, team_id)
        counts.sheets["跟进记录"] = await _touches(session, writer, team_id)
        counts.sheets["预警"] = await _alerts(session, writer, team_id)
        counts.sheets["资源申请"] = await _requests(session, writer, team_id)
        if include_audit:
            counts.sheets["审计"] = await _audit(session, writer)
    return counts


class _Writer:
    def __init__(self, workbook: XlsxStream, tz: ZoneInfo) -> None:
        self.workbook = workbook
        self.tz = tz

    def sheet(self, name: str, headers: list[str]) -> SheetStream:
        return self.workbook.sheet(name, headers)

    def row(self, sheet: SheetStream, values: list[Any]) -> None:
        """Database values to cells: yes/no in words, aware times in local time, enums and the rest as text."""
        cells: list[Any] = []
        for value in values:
            if value is None or value == "":
                cells.append(None)
            elif isinstance(value, bool):
                cells.append("是" if value else "否")
            elif isinstance(value, int | float):
                cells.append(value)
            elif isinstance(value, dt.datetime):
                cells.append(value.astimezone(self.tz).replace(tzinfo=None))
            elif isinstance(value, dt.date):
                cells.append(value)
            else:
                cells.append(str(value))
        sheet.row(cells)


async def _customers(session: AsyncSession, w: _Writer, now: dt.datetime, tz: ZoneInfo, team_id: int | None) -> int:
    c = Customer.__table__.c
    query = (
        select(c.id, c.name, c.industry, c.contacts, c.last_touch_at, Stage.name.label("stage"), c.key_obstacle,
               c.expected_sign_date, Member.code.label("owner"), c.aliases, c.custom_fields, c.stage_entered_at)
        .join(Stage, Stage.id == c.stage_id)
        .join(Member, Member.id == c.owner_id)
        .order_by(c.id)
    )
    open_alerts = dict(
        (await session.execute(
            select(Alert.customer_id, func.count()).where(Alert.open_key.is_not(None), Alert.customer_id.is_not(None))
            .group_by(Alert.customer_id)
        )).all()
    )
    # The custom columns are known only after every customer is seen: a first pass reads just them,
    # so that the rows themselves can be streamed rather than all held in memory.
    custom_keys: dict[str, None] = {}
    async for (custom,) in _stream(session, _scoped(select(c.custom_fields).order_by(c.id), c.owner_id, team_id)):
        for key in custom or {}:
            custom_keys.setdefault(key, None)
    headers = [*CUSTOMER_COLUMNS, *custom_keys, *EXPORT_ONLY_HEADERS]
    sheet = w.sheet("客户", headers)
    today = now.astimezone(tz).date()
    # The hot loop at 100,000 customers: one list per row, handed to the sheet in one call.
    local_dates: dict[dt.datetime, dt.date] = {}
    no_custom = [None] * len(custom_keys)
    async for row in _stream(session, _scoped(query, c.owner_id, team_id)):
        last_touch = row.last_touch_at
        if last_touch is not None:
            day = local_dates.get(last_touch)
            if day is None:
                if len(local_dates) > 10_000:  # imported times repeat (midnights); keep the cache small if not
                    local_dates.clear()
                day = local_dates[last_touch] = last_touch.astimezone(tz).date()
            last_touch = day
        custom = row.custom_fields
        sheet.row([
            row.name, row.industry, "、".join(row.contacts or ()), last_touch, row.stage, row.key_obstacle,
            row.expected_sign_date, row.owner, "、".join(row.aliases or ()),
            *([_text(custom.get(key)) for key in custom_keys] if custom else no_custom),
            (today - row.stage_entered_at.astimezone(tz).date()).days, open_alerts.get(row.id, 0),
        ])
    return sheet.rows - 1


async def _stream(session: AsyncSession, query: Any) -> AsyncIterator[Any]:
    """The rows of ``query`` fetched a batch at a time: memory stays flat however many there are."""
    result = await session.stream(query.execution_options(yield_per=STREAM_BATCH))
    async for batch in result.partitions():
        for row in batch:
            yield row


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def _touches(session: AsyncSession, w: _Writer, team_id: int | None) -> int:
    query = (
        select(Customer.name, Member.code, Touch.occurred_at, Touch.channel, Touch.duration_minutes, Touch.summary,
               Touch.next_action, Touch.next_due, Touch.effective, Touch.evidence_status)
        .join(Customer, Customer.id == Touch.customer_id)
        .join(Member, Member.id == Touch.member_id)
        .where(Touch.undone_at.is_(None))
        .order_by(Touch.id)
    )
    sheet = w.sheet("跟进记录", ["客户名称", "销售", "时间", "渠道", "时长(分钟)", "今日动作", "下次动作", "下次日期", "有效触达", "凭证"])
    row: Any
    async for row in _stream(session, _scoped(query, Customer.owner_id, team_id)):
        w.row(sheet, [row[0], row[1], row[2], row[3].value, row[4], row[5], row[6], row[7], row[8], row[9].value])
    return sheet.rows - 1


async def _alerts(session: AsyncSession, w: _Writer, team_id: int | None) -> int:
    query = (
        select(Alert.rule, Customer.name, Member.code, Alert.severity, Alert.status, Alert.raised_at,
               Alert.notified_at, Alert.closed_at)
        .outerjoin(Customer, Customer.id == Alert.customer_id)
        .outerjoin(Member, Member.id == Alert.member_id)
        .order_by(Alert.id)
    )
    if team_id is not None:
        query = query.where(Alert.member_id.in_(select(Member.id).where(Member.team_id == team_id)))
    sheet = w.sheet("预警", ["规则", "客户名称", "成员", "级别", "状态", "发起时间", "通知时间", "结束时间"])
    async for row in _stream(session, query):
        w.row(sheet, [row[0], row[1], row[2], row[3], row[4].value, row[5], row[6], row[7]])
    return sheet.rows - 1


async def _requests(session: AsyncSession, w: _Writer, team_id: int | None) -> int:
    decider = aliased(Member)
    query = (
        select(Customer.name, Member.code, ResourceRequest.kind, ResourceRequest.amount, ResourceRequest.purpose,
               ResourceRequest.status, ResourceRequest.requested_at, ResourceRequest.decided_at, decider.code,
               ResourceRequest.decision_reason)
        .join(Customer, Customer.id == ResourceRequest.customer_id)
        .join(Member, Member.id == ResourceRequest.member_id)
        .outerjoin(decider, decider.id == ResourceRequest.decided_by)
        .order_by(ResourceRequest.id)
    )
    sheet = w.sheet("资源申请", ["客户名称", "申请人", "类型", "金额", "用途", "状态", "申请时间", "决定时间", "决定人", "原因"])
    row: Any
    async for row in _stream(session, _scoped(query, Customer.owner_id, team_id)):
        w.row(sheet, [row[0], row[1], row[2], row[3], row[4], row[5].value, row[6], row[7], row[8], row[9]])
    return sheet.rows - 1


async def _audit(session: AsyncSession, w: _Writer) -> int:
    query = (
        select(AuditEntry.at, Member.code, AuditEntry.action, AuditEntry.subject, AuditEntry.before, AuditEntry.after)
        .outerjoin(Member, Member.id == AuditEntry.member_id)
        .order_by(AuditEntry.id)
    )
    sheet = w.sheet("审计", ["时间", "操作人", "操作", "对象", "修改前", "修改后"])
    async for row in _stream(session, query):
        w.row(sheet, [row[0], row[1] or "(命令行)", row[2], row[3], _json(row[4]), _json(row[5])])
    return sheet.rows - 1


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str) if value else ""


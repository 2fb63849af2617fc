"""导出: the organisation (or one team) as an .xlsx workbook.

Sheets: 客户 (the import columns, so that re-importing this sheet changes nothing, plus days in
stage and open alerts), 跟进记录, 预警, 资源申请 and 审计. Written with xlsxwriter in
constant-memory mode, row by row. Every text is written as a string cell, never a formula: a
value beginning with "=" stays text (no formula injection).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.importing import CANONICAL_HEADERS, EXPORT_ONLY_HEADERS
from storage.models import Alert, AuditEntry, Customer, Member, ResourceRequest, Stage, Touch

CUSTOMER_COLUMNS = tuple(
    CANONICAL_HEADERS[key]
    for key in ("name", "industry", "contacts", "last_touch", "stage", "obstacle", "expected_sign", "owner", "aliases")
)


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
    workbook = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                    "strings_to_numbers": False}
    )
    try:
        formats = {
            "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
            "time": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
            "head": workbook.add_format({"bold": True}),
        }
        writer = _Writer(workbook, formats, tz)
        counts.sheets["客户"] = await _customers(session, writer, now, tz, team_id)
        counts.sheets["跟进记录"] = await _touches(session, writer, team_id)
        counts.sheets["预警"] = await _alerts(session, writer, team_id)
        counts.sheets["资源申请"] = await _requests(session, writer, team_id)
        if include_audit:
            counts.sheets["审计"] = await _audit(session, writer)
    finally:
        workbook.close()
    return counts


class _Writer:
    def __init__(self, workbook: Any, formats: dict[str, Any], tz: ZoneInfo) -> None:
        self.workbook = workbook
        self.formats = formats
        self.tz = tz

    def sheet(self, name: str, headers: list[str]) -> Any:
        sheet = self.workbook.add_worksheet(name)
        for col, title in enumerate(headers):
            sheet.write_string(0, col, title, self.formats["head"])
        return sheet

    def row(self, sheet: Any, r: int, values: list[Any]) -> None:
        for col, value in enumerate(values):
            if value is None or value == "":
                continue
            if isinstance(value, bool):
                sheet.write_string(r, col, "是" if value else "否")
            elif isinstance(value, int | float):
                sheet.write_number(r, col, value)
            elif isinstance(value, dt.datetime):
                sheet.write_datetime(r, col, value.astimezone(self.tz).replace(tzinfo=None), self.formats["time"])
            elif isinstance(value, dt.date):
                sheet.write_datetime(r, col, dt.datetime.combine(value, dt.time()), self.formats["date"])
            else:
                sheet.write_string(r, col, str(value))


async def _customers(session: AsyncSession, w: _Writer, now: dt.datetime, tz: ZoneInfo, team_id: int | None) -> int:
    c = Customer.__table__.c
    query = (
        select(c.id, c.name, c.industry, c.contacts, c.last_touch_at, Stage.name.label("stage"), c.key_obstacle,
               c.expected_sign_date, Member.code.label("owner"), c.aliases, c.custom_fields, c.stage_entered_at)
        .join(Stage, Stage.id == c.stage_id)
        .join(Member, Member.id == c.owner_id)
        .order_by(c.id)
    )
    rows = (await session.execute(_scoped(query, c.owner_id, team_id))).all()
    open_alerts = dict(
        (await session.execute(
            select(Alert.customer_id, func.count()).where(Alert.open_key.is_not(None), Alert.customer_id.is_not(None))
            .group_by(Alert.customer_id)
        )).all()
    )
    custom_keys: dict[str, None] = {}
    for row in rows:
        for key in row.custom_fields or {}:
            custom_keys.setdefault(key, None)
    headers = [*CUSTOMER_COLUMNS, *custom_keys, *EXPORT_ONLY_HEADERS]
    sheet = w.sheet("客户", headers)
    today = now.astimezone(tz).date()
    # The hot loop at 100,000 customers: typed writes, empty cells skipped, no per-cell dispatch.
    write_string, write_number, write_datetime = sheet.write_string, sheet.write_number, sheet.write_datetime
    date_format = w.formats["date"]
    local_dates: dict[dt.datetime, dt.datetime] = {}
    custom_start = len(CUSTOMER_COLUMNS)
    computed_start = custom_start + len(custom_keys)
    for r, row in enumerate(rows, start=1):
        for col, text in ((0, row.name), (1, row.industry), (2, "、".join(row.contacts or ())), (4, row.stage),
                          (5, row.key_obstacle), (7, row.owner), (8, "、".join(row.aliases or ()))):
            if text:
                write_string(r, col, text)
        if row.last_touch_at is not None:
            day = local_dates.get(row.last_touch_at)
            if day is None:
                day = local_dates[row.last_touch_at] = dt.datetime.combine(row.last_touch_at.astimezone(tz).date(), dt.time())
            write_datetime(r, 3, day, date_format)
        if row.expected_sign_date is not None:
            write_datetime(r, 6, dt.datetime.combine(row.expected_sign_date, dt.time()), date_format)
        custom = row.custom_fields
        if custom:
            for offset, key in enumerate(custom_keys):
                value = custom.get(key)
                if value not in (None, ""):
                    write_string(r, custom_start + offset, str(value))
        write_number(r, computed_start, (today - row.stage_entered_at.astimezone(tz).date()).days)
        write_number(r, computed_start + 1, open_alerts.get(row.id, 0))
    return len(rows)


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
    count = 0
    row: Any
    for count, row in enumerate(await session.execute(_scoped(query, Customer.owner_id, team_id)), start=1):
        w.row(sheet, count, [row[0], row[1], row[2], row[3].value, row[4], row[5], row[6], row[7], row[8], row[9].value])
    return count


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
    count = 0
    for count, row in enumerate(await session.execute(query), start=1):
        w.row(sheet, count, [row[0], row[1], row[2], row[3], row[4].value, row[5], row[6], row[7]])
    return count


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
    count = 0
    row: Any
    for count, row in enumerate(await session.execute(_scoped(query, Customer.owner_id, team_id)), start=1):
        w.row(sheet, count, [row[0], row[1], row[2], row[3], row[4], row[5].value, row[6], row[7], row[8], row[9]])
    return count


async def _audit(session: AsyncSession, w: _Writer) -> int:
    query = (
        select(AuditEntry.at, Member.code, AuditEntry.action, AuditEntry.subject, AuditEntry.before, AuditEntry.after)
        .outerjoin(Member, Member.id == AuditEntry.member_id)
        .order_by(AuditEntry.id)
    )
    sheet = w.sheet("审计", ["时间", "操作人", "操作", "对象", "修改前", "修改后"])
    count = 0
    for count, row in enumerate(await session.execute(query), start=1):
        w.row(sheet, count, [row[0], row[1] or "(命令行)", row[2], row[3], _json(row[4]), _json(row[5])])
    return count


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str) if value else ""


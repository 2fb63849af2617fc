"""Helpers for import/export tests: real spreadsheets written with xlsxwriter, a started runtime."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter
from sqlalchemy import select

from bot.bootstrap import build_runtime
from handlers.importing import ImportOutcome, import_file
from storage.models import Customer, Member
from storage.xlsxstream import excel_serial
from tests.conftest import make_config


def xlsx_bytes(
    rows: Sequence[Sequence[Any]],
    *,
    start_row: int = 0,
    merges: Sequence[tuple[int, int, int, int, Any]] = (),
    date_format: str = "yyyy-mm-dd",
) -> bytes:
    """A real .xlsx: rows written from ``start_row`` (0-based); dates as Excel dates."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    sheet = workbook.add_worksheet("客户")
    fmt = workbook.add_format({"num_format": date_format})
    merged_cells = {(r, c) for r0, c0, r1, c1, _ in merges for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)}
    # A date is written as the number write_datetime would write (its serial, with the date format):
    # write_datetime's own conversion was most of the cost of a large sheet's dates. Serials count
    # from 1899-12-30 only from 1900-03-01 on (Excel's 1900 leap day), so earlier dates keep it.
    for r, row in enumerate(rows, start=start_row):
        for c, value in enumerate(row):
            if (r, c) in merged_cells or value is None:
                continue
            if isinstance(value, dt.date):
                day = excel_serial(value.date() if isinstance(value, dt.datetime) else value)
                if day >= 61:
                    sheet.write_number(r, c, day, fmt)
                else:
                    sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), fmt)
            elif isinstance(value, int | float):
                sheet.write_number(r, c, value)
            else:
                sheet.write_string(r, c, str(value))
    for r0, c0, r1, c1, value in merges:
        sheet.merge_range(r0, c0, r1, c1, value)
    workbook.close()
    return buffer.getvalue()


@pytest.fixture
async def runtime(tmp_path: Path, clock: Any) -> AsyncIterator[Any]:
    rt = await build_runtime(make_config(tmp_path), clock=clock)
    try:
        yield rt
    finally:
        await rt.stop()


async def run_import(runtime: Any, data: bytes, filename: str = "客户.xlsx", **kwargs: Any) -> ImportOutcome:
    async with runtime.sessions() as session, session.begin():
        outcome = await import_file(
            session, data, filename, now=runtime.clock.now(), tz=runtime.config.tz, actor_id=None, **kwargs
        )
        if outcome.result is None:
            await session.rollback()
    return outcome


async def customers(runtime: Any) -> list[Customer]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Customer).order_by(Customer.id)))


async def member_id(runtime: Any, code: str) -> int:
    async with runtime.sessions() as session:
        member = await session.scalar(select(Member).where(Member.code == code))
        assert member is not None
        return member.id

"""The working-day calendar: admin-declared days (CalendarDay) and building the ``WorkCalendar``.

The calendar a rule counts on is, in order of precedence: days declared by admins in chat
(``/规则 假期 …``, ``/规则 调休 …``, stored as ``CalendarDay`` rows), days listed in the
configuration (``rules.holidays`` / ``rules.workdays``), the holiday library, Monday–Friday.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.rules.thresholds import RuleThresholds
from domain.rules.workdays import CalendarOverrides, WorkCalendar, parse_date_list
from storage.db import dialect_insert, rowcount
from storage.models import CalendarDay, Setting

HOLIDAY = "holiday"
WORKDAY = "workday"
_BEYOND_DATA_KEY = "calendar_beyond_data_warned:{year}"


async def declared_days(session: AsyncSession) -> list[CalendarDay]:
    """Every admin-declared day, in date order."""
    return list(await session.scalars(select(CalendarDay).order_by(CalendarDay.day)))


async def declare_days(session: AsyncSession, days: Iterable[dt.date], kind: str, note: str = "") -> int:
    """Declare ``days`` as holidays or make-up working days; a day declared before is replaced."""
    if kind not in (HOLIDAY, WORKDAY):
        raise ValueError(f"kind must be {HOLIDAY!r} or {WORKDAY!r}, got {kind!r}")
    rows = [{"day": day, "kind": kind, "note": note[:128]} for day in sorted(set(days))]
    if not rows:
        return 0
    statement = dialect_insert(session)(CalendarDay).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[CalendarDay.day], set_={"kind": statement.excluded.kind, "note": statement.excluded.note}
    )
    await session.execute(statement)
    return len(rows)


async def remove_days(session: AsyncSession, days: Iterable[dt.date]) -> list[dt.date]:
    """Remove declarations; returns the days that were declared (and are now gone)."""
    wanted = sorted(set(days))
    if not wanted:
        return []
    removed = await session.scalars(delete(CalendarDay).where(CalendarDay.day.in_(wanted)).returning(CalendarDay.day))
    return sorted(removed)


async def overrides(session: AsyncSession, rules: RuleThresholds) -> CalendarOverrides:
    """Configuration days plus declared days; a declared day wins over the configuration."""
    holidays = set(parse_date_list(rules.holidays))
    workdays = set(parse_date_list(rules.workdays)) - holidays  # a clash in the file: the day off wins
    for row in await declared_days(session):
        holidays.discard(row.day)
        workdays.discard(row.day)
        (holidays if row.kind == HOLIDAY else workdays).add(row.day)
    return CalendarOverrides(holidays=frozenset(holidays), workdays=frozenset(workdays))


async def work_calendar(
    session: AsyncSession, rules: RuleThresholds, on_beyond_data: Callable[[dt.date], None] | None = None
) -> WorkCalendar:
    return WorkCalendar(await overrides(session, rules), on_beyond_data=on_beyond_data)


async def claim_beyond_data_warning(session: AsyncSession, year: int, now: dt.datetime) -> bool:
    """True exactly once per year (across restarts and replicas): the caller then warns admins."""
    result = await session.execute(
        dialect_insert(session)(Setting)
        .values(key=_BEYOND_DATA_KEY.format(year=year), value={"warned_at": now.isoformat()})
        .on_conflict_do_nothing(index_elements=[Setting.key])
    )
    return rowcount(result) == 1

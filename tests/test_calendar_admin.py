"""/规则: admins see the thresholds and keep the working-day calendar (holidays, make-up days)."""

from __future__ import annotations

import datetime as dt

from bot.config import RulesConfig
from storage import calendar as calendar_store
from storage.models import CalendarDay
from tests.conftest import texts_of

D = dt.date


async def _say(console, text: str, member: str = "admin.he") -> str:
    [reply] = texts_of(await console.send(member, text))
    return reply


async def _declared(console) -> dict[dt.date, tuple[str, str]]:
    async with console.runtime.sessions() as session:
        return {row.day: (row.kind, row.note) for row in await calendar_store.declared_days(session)}


async def test_rules_shows_thresholds_and_the_calendar(console) -> None:
    text = await _say(console, "/规则")
    assert "超过 72 小时未跟进" in text and "「方案报价」阶段超过 5 个工作日" in text
    assert "70%" in text and "48 小时" in text and "每 15 分钟" in text and "每周五 10:00" in text
    assert "2004–2026" in text and "管理员设定的日期:无" in text


async def test_admin_declares_a_holiday_range_and_a_makeup_day_then_removes_one(console) -> None:
    assert "已设定 3 天为放假:2027-01-01..2027-01-03(元旦)" in await _say(
        console, "/规则 假期 2027-01-01..2027-01-03 元旦"
    )
    assert "已设定 1 天为调休上班:2027-02-07" in await _say(console, "/规则 调休 2027-02-07")
    assert await _declared(console) == {
        D(2027, 1, 1): ("holiday", "元旦"),
        D(2027, 1, 2): ("holiday", "元旦"),
        D(2027, 1, 3): ("holiday", "元旦"),
        D(2027, 2, 7): ("workday", ""),
    }
    shown = await _say(console, "/规则")
    assert "2027-01-01 周五 放假(元旦)" in shown and "2027-02-07 周日 调休上班" in shown

    assert "已删除 1 天的设定:2027-01-01" in await _say(console, "/规则 删除 2027-01-01")
    assert D(2027, 1, 1) not in await _declared(console)
    assert "没有管理员设定" in await _say(console, "/规则 删除 2027-01-01")

    # Declaring a day again replaces it (a holiday can become a make-up working day).
    await _say(console, "/规则 调休 2027-01-02")
    assert (await _declared(console))[D(2027, 1, 2)] == ("workday", "")


async def test_declared_days_win_over_the_library_and_the_configuration(console) -> None:
    await _say(console, "/规则 调休 2026-10-03")  # a National Day holiday in the library
    async with console.runtime.sessions() as session:
        calendar = await calendar_store.work_calendar(session, RulesConfig(holidays=("2026-10-03", "2026-12-25")))
    assert calendar.is_workday(D(2026, 10, 3))  # declared in chat beats the file and the library
    assert not calendar.is_workday(D(2026, 12, 25))  # from the configuration


async def test_bad_dates_get_a_clear_answer_and_change_nothing(console) -> None:
    assert "「2027-02-30」不是有效日期" in await _say(console, "/规则 假期 2027-02-30")
    assert "「明天」不是有效日期" in await _say(console, "/规则 假期 明天 元旦")
    assert "结束日期早于开始日期" in await _say(console, "/规则 假期 2027-01-03..2027-01-01")
    assert "请写上日期" in await _say(console, "/规则 调休")
    assert "一次最多设定" in await _say(console, "/规则 假期 2027-01-01..2028-06-01")
    assert "不认识的操作「改成」" in await _say(console, "/规则 改成 2027-01-01")
    async with console.runtime.sessions() as session:
        assert await session.get(CalendarDay, D(2027, 1, 1)) is None
    assert await _declared(console) == {}


async def test_only_admins_may_use_rules(console) -> None:
    reply = await _say(console, "/规则 假期 2027-01-01", member="rep.li")
    assert "没有权限使用 /规则" in reply
    assert await _declared(console) == {}

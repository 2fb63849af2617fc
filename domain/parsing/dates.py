"""Due-date expressions in a rep's Chinese text, resolved against a given ``today``.

Pure functions only: the caller passes today's date (from the injected clock, in the team's time
zone). Weeks start on Monday.

Conventions worth knowing:

* ``周X`` / ``星期X`` / ``本周X`` is this week's day X; if that day has already passed it means next
  week's. ``周末`` is Saturday under the same rule. ``下周`` alone is next Monday.
* ``月底`` is the last day of this month (the last day of next month when today already is the
  last day). ``月初`` / ``下月初`` / ``下个月`` alone are the 1st of the next month. ``月中`` is the
  15th (next month's when this month's has passed).
* ``M月D日`` without a year is this year, unless that date is more than 60 days in the past, in
  which case it is next year (late December "1月5日" means next January). A date a few days in the
  past stays in the past so the caller can reject it with a clear message.
* ``D号`` alone is the next day-of-month D on or after today.
* ``M.D`` and ``M/D`` are only read as dates when the surrounding words make that clear (``在3.5``,
  ``3/5前``); ``1.5小时`` or ``12.8万`` never are.
* An impossible calendar date (``2月30日``) yields no result for that expression.
* A trailing ``前`` / ``之前`` / ``以前`` is part of the expression (``周五前``) and does not change the
  date.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from domain.rules.workdays import WorkCalendar

__all__ = [
    "NUMBER_PATTERN",
    "DueDate",
    "WorkdayCounter",
    "cn_to_int",
    "find_all_due_dates",
    "find_due_date",
    "normalize",
]


@dataclass(frozen=True)
class DueDate:
    date: datetime.date
    expression: str  # the matched text, e.g. "下周三"
    span: tuple[int, int]  # indices in the input text
    # A vague expression ("下周", "过几天") names a range of days, not one: ``date`` is its first
    # day and ``latest`` its last, so the caller can ask which day is meant.
    latest: datetime.date | None = None
    part_of_day: str | None = None  # "下午", "晚上" ... when the expression names one

    @property
    def vague(self) -> bool:
        return self.latest is not None and self.latest != self.date


class WorkdayCounter(Protocol):
    """What "N个工作日后" needs of a calendar (``domain.rules.workdays.WorkCalendar`` is one)."""

    def add_workdays(self, start: datetime.date, n: int) -> datetime.date: ...


# The holiday library without admin overrides, for callers that have no calendar of their own.
_DEFAULT_CALENDAR = WorkCalendar()


# --------------------------------------------------------------------------------------------
# Text normalisation (length preserving, so spans in the normalised text index the original)
# --------------------------------------------------------------------------------------------

_NORMALIZE_TABLE: dict[int, int] = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_NORMALIZE_TABLE[0x3000] = 0x20  # ideographic space
_NORMALIZE_TABLE[0x00A0] = 0x20  # no-break space
for _c in range(ord("A"), ord("Z") + 1):
    _NORMALIZE_TABLE[_c] = _c + 32
    _NORMALIZE_TABLE[_c + 0xFEE0] = _c + 32  # full-width capitals straight to lower case


def normalize(text: str) -> str:
    """Full-width ASCII to half-width, ASCII letters to lower case; same length as ``text``."""
    return text.translate(_NORMALIZE_TABLE)


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "俩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}


def cn_to_int(s: str) -> int | None:
    """Parse an arabic or Chinese numeral (``12``, ``十二``, ``两``, ``一百零五``, ``二〇二六``, ``三万五``).

    Two adjacent digits (``两三``, ``三四``) are a colloquial range, "two or three": the lower
    bound is returned, which is what a due date or a duration should count from.
    A trailing digit after a unit is that unit's tenth: ``一万二`` is 12000, ``三千五`` 3500.
    """
    s = s.strip()
    if not s:
        return None
    if s.isascii():
        return int(s) if s.isdigit() else None
    if all(c in _CN_DIGITS for c in s):
        if len(s) == 2:
            return _CN_DIGITS[s[0]]  # a range such as 两三 / 三四: the lower bound
        return int("".join(str(_CN_DIGITS[c]) for c in s))  # single digit, or digit by digit: 二〇二六
    total = 0  # completed 万/亿 groups
    section = 0  # the part below the current big unit
    current = 0
    last_unit = 0  # the unit just applied, for the abbreviated tail (一万二 = 12000)
    zero_seen = False
    for c in s:
        if c in _CN_DIGITS:
            current = _CN_DIGITS[c]
            zero_seen = zero_seen or current == 0
        elif c in _CN_UNITS:
            section += (current or 1) * _CN_UNITS[c]
            last_unit, current, zero_seen = _CN_UNITS[c], 0, False
        elif c in _CN_BIG_UNITS:
            unit = _CN_BIG_UNITS[c]
            if unit > total:  # 亿 after 万 multiplies everything before it
                total = (total + section + current or 1) * unit
            else:
                total += (section + current or 1) * unit
            last_unit, section, current, zero_seen = unit, 0, 0, False
        else:
            return None
    if current and last_unit >= 100 and not zero_seen:
        current *= last_unit // 10  # 三千五 = 3500, 一万二 = 12000; 一百零五 keeps 5
    return total + section + current


# --------------------------------------------------------------------------------------------
# Calendar helpers
# --------------------------------------------------------------------------------------------

_WEEKDAYS = {
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "日": 7,
    "天": 7,
    "七": 7,
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 4,
    "5": 5,
    "6": 6,
    "7": 7,
    "末": 6,
}


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _month_shift(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _safe_date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _add_months(today: datetime.date, months: int) -> datetime.date:
    year, month = _month_shift(today.year, today.month, months)
    return datetime.date(year, month, min(today.day, _last_day(year, month)))


def _monday(today: datetime.date) -> datetime.date:
    return today - datetime.timedelta(days=today.weekday())


def _resolve_month_day(today: datetime.date, month: int, day: int) -> datetime.date | None:
    """Year for a month/day written without one (see module docstring)."""
    candidate = _safe_date(today.year, month, day)
    if candidate is None:
        # 2月29日 outside a leap year may still exist next year; any other impossible date fails.
        if month == 2 and day == 29:
            nxt = _safe_date(today.year + 1, month, day)
            if nxt is not None and (nxt - today).days <= 366:
                return nxt
        return None
    if (today - candidate).days > 60:
        return _safe_date(today.year + 1, month, day)
    if (candidate - today).days > 305:
        previous = _safe_date(today.year - 1, month, day)
        if previous is not None and (today - previous).days <= 60:
            return previous
    return candidate


def _month_part(year: int, month: int, part: str) -> datetime.date:
    if part in ("底", "末"):
        return datetime.date(year, month, _last_day(year, month))
    if part.startswith("中"):
        return datetime.date(year, month, 15)
    return datetime.date(year, month, 1)  # 初


# --------------------------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------------------------

_N = r"[0-9]{1,3}|[零〇一二两俩三四五六七八九十百]{1,4}"
_M = r"1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九]"
_D = r"3[01]|[12][0-9]|0?[1-9]|[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九]"
_WD = r"[一二三四五六日天七1-7]"
NUMBER_PATTERN = _N  # an arabic or Chinese integer, for callers building related patterns
_WEEK = r"(?:周|星期|礼拜)"
_CN_OR_DIGIT = "0-9零〇一二两三四五六七八九十百"

Handler = Callable[[re.Match[str], datetime.date], "datetime.date | None"]
CalendarHandler = Callable[[re.Match[str], datetime.date, WorkdayCounter], "datetime.date | None"]
# (pattern, handler, needs): a rule runs only on text containing one of the characters in
# ``needs`` (every match of the pattern contains one), which skips most rules for most messages.
_RULES: list[tuple[re.Pattern[str], CalendarHandler, frozenset[str]]] = []
_DIGITS = "0123456789"


def _rule(pattern: str, needs: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _RULES.append((re.compile(pattern), lambda m, today, _calendar: handler(m, today), frozenset(needs)))
        return handler

    return register


def _calendar_rule(pattern: str, needs: str) -> Callable[[CalendarHandler], CalendarHandler]:
    def register(handler: CalendarHandler) -> CalendarHandler:
        _RULES.append((re.compile(pattern), handler, frozenset(needs)))
        return handler

    return register


def _plus(days: int) -> Handler:
    return lambda m, today: today + datetime.timedelta(days=days)


# Absolute dates -----------------------------------------------------------------------------


@_rule(r"(?<![0-9])([0-9]{4})\s*[-/.]\s*([0-9]{1,2})\s*[-/.]\s*([0-9]{1,2})(?![0-9])", _DIGITS)
def _iso(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    return _safe_date(int(m[1]), int(m[2]), int(m[3]))


@_rule(
    rf"(?<![0-9])([0-9]{{4}}|[零〇一二三四五六七八九]{{4}})\s*年\s*({_M})\s*月\s*({_D})\s*(?:日|号)?(?![0-9])",
    "年",
)
def _year_month_day(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    year, month, day = cn_to_int(m[1]), cn_to_int(m[2]), cn_to_int(m[3])
    if year is None or month is None or day is None:
        return None
    return _safe_date(year, month, day)


@_rule(rf"(?<![{_CN_OR_DIGIT}年./\-])({_M})\s*月\s*({_D})\s*(?:日|号)?(?![0-9])", "月")
def _month_day(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    month, day = cn_to_int(m[1]), cn_to_int(m[2])
    if month is None or day is None:
        return None
    return _resolve_month_day(today, month, day)


@_rule(rf"(?<![{_CN_OR_DIGIT}年./\-])({_M})\s*月\s*份?\s*(底|末|初|中旬|中)", "月")
def _month_part_rule(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    month = cn_to_int(m[1])
    if month is None:
        return None
    day = {"底": _last_day(today.year, month), "末": _last_day(today.year, month)}.get(m[2])
    if day is None:
        day = 15 if m[2].startswith("中") else 1
    anchor = _resolve_month_day(today, month, day)
    if anchor is None:
        return None
    return _month_part(anchor.year, anchor.month, m[2])


_DATE_UNITS_AFTER = re.compile(
    r"\s*(?:小时|个|h|分|万|千|百|元|块|%|倍|折|斤|吨|米|件|箱|台|套|天|周|次|人|版|寸|公斤|平|方|kg|m|k|w|的|成|以上|以下)"
)
_DOT_CONTEXT_BEFORE = re.compile(
    r"(?:在|于|到|截止|截至|约|定|改|推|前|号|周[一二三四五六日天]|星期[一二三四五六日天])\s*$"
)
_DOT_CONTEXT_AFTER = re.compile(
    r"\s*(?:前|之前|以前|号|日|当天|那天|左右|截止|上门|拜访|见面|再|去|来|发|开会|签|交|送|电话|回访|跟进|提交|过来|见|上午|下午|晚上)"
)


@_rule(r"(?<![0-9a-z./\-:])(1[0-2]|0?[1-9])([./])(3[01]|[12][0-9]|0?[1-9])(?![0-9a-z%./])", "./")
def _short_numeric(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    text = m.string
    if _DATE_UNITS_AFTER.match(text, m.end()):
        return None
    clear = bool(_DOT_CONTEXT_BEFORE.search(text, 0, m.start())) or bool(
        _DOT_CONTEXT_AFTER.match(text, m.end())
    )
    if m[2] == "/":
        # A slash is rarely anything but a date once units and fractions are excluded.
        clear = True
    if not clear:
        return None
    return _resolve_month_day(today, int(m[1]), int(m[3]))


# Relative days ------------------------------------------------------------------------------

_rule(r"今(?:天|日|晚|早|儿|个)", "今")(_plus(0))
_rule(r"明(?:天|日|早|晚|儿|个)", "明")(_plus(1))
_rule(r"次日|隔天|第二天", "次隔第")(_plus(1))
_rule(r"后天", "后")(_plus(2))
_rule(r"大后天", "后")(_plus(3))
_rule(r"昨(?:天|日|晚)", "昨")(_plus(-1))
_rule(r"(?<![提之以往])前天", "前")(_plus(-2))
_rule(r"大前天", "前")(_plus(-3))


# A part of today ("傍晚", "今儿下午", "晚点", "下班前"). Directly after another date ("明天下午",
# "周四晚上") it only names the part of that day: see ``find_all_due_dates``.
_PART_OF_DAY_PATTERN = (
    r"(?:今天|今儿|今日|今个)?\s*(上午|下午|中午|晚上|傍晚|早上|早晨|夜里)"
    r"|待会儿?|等会儿?|过会儿?|一会儿|稍后|下班前|下班后|收工前"
)
_rule(_PART_OF_DAY_PATTERN, "午晚早夜会稍班工")(_plus(0))
_PARTS = {"上午", "下午", "中午", "晚上", "傍晚", "早上", "早晨", "夜里"}


@_rule(rf"(?<![0-9])({_N})\s*个?\s*(?:天|日)\s*(?:以后|之后|后|之内|以内|内)", "天日")
def _n_days(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    n = cn_to_int(m[1])
    return None if n is None or n > 3650 else today + datetime.timedelta(days=n)


@_rule(rf"过\s*({_N})\s*天", "过")
def _after_n_days(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    return _n_days(m, today)


@_calendar_rule(rf"(?<![0-9])({_N})\s*个?\s*工作日\s*(?:以后|之后|后|之内|以内|内)?", "工")
def _n_workdays(m: re.Match[str], today: datetime.date, calendar: WorkdayCounter) -> datetime.date | None:
    """Working days on the holiday calendar: public holidays skipped, make-up days (调休) counted."""
    n = cn_to_int(m[1])
    return None if n is None or n > 1000 else calendar.add_workdays(today, n)


@_rule(rf"(?<![0-9])({_N})\s*个?\s*{_WEEK}\s*(?:以后|之后|后|之内|以内|内)", "周星礼")
def _n_weeks(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    n = cn_to_int(m[1])
    return None if n is None or n > 520 else today + datetime.timedelta(weeks=n)


@_rule(rf"(?<![0-9])({_N}|半)\s*个?\s*月\s*(?:以后|之后|后|之内|以内|内)", "月")
def _n_months(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    if m[1] == "半":
        return today + datetime.timedelta(days=15)
    n = cn_to_int(m[1])
    return None if n is None or n > 120 else _add_months(today, n)


# Weeks --------------------------------------------------------------------------------------


def _weekday_of(monday: datetime.date, token: str | None) -> datetime.date:
    return monday + datetime.timedelta(days=_WEEKDAYS.get(token or "一", 1) - 1)


@_rule(rf"下\s*个?\s*{_WEEK}(?!期)(?:[\s的]*{_WEEK}?\s*({_WD}|末)(?![0-9次遍个]|回(?!访)))?", "周星礼")
def _next_week(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    return _weekday_of(_monday(today) + datetime.timedelta(days=7), m[1])


# "下周" alone and "过几天" are ranges, not days: (first day, last day) from the match.
def _vague_range(m: re.Match[str], today: datetime.date) -> tuple[datetime.date, datetime.date] | None:
    text = m[0]
    if m.re.pattern == _NEXT_WEEK_PATTERN and m[1] is None:
        monday = _monday(today) + datetime.timedelta(days=7)
        return monday, monday + datetime.timedelta(days=4)  # the working week
    if m.re.pattern == _FEW_DAYS_PATTERN:
        return today + datetime.timedelta(days=2), today + datetime.timedelta(days=5 if "几" in text else 3)
    return None


_NEXT_WEEK_PATTERN = _RULES[-1][0].pattern
_FEW_DAYS_PATTERN = r"(?:过|再过)\s*(?:几|两|两三)\s*天|这几天|近几天"
_rule(_FEW_DAYS_PATTERN, "天")(_plus(2))


@_rule(rf"下\s*下\s*个?\s*{_WEEK}(?!期)(?:[\s的]*{_WEEK}?\s*({_WD}|末)(?![0-9次遍个]|回(?!访)))?", "周星礼")
def _week_after_next(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    return _weekday_of(_monday(today) + datetime.timedelta(days=14), m[1])


@_rule(rf"上\s*个?\s*{_WEEK}(?!期)(?:[\s的]*{_WEEK}?\s*({_WD}|末)(?![0-9次遍个]|回(?!访)))?", "周星礼")
def _last_week(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    return _weekday_of(_monday(today) - datetime.timedelta(days=7), m[1])


@_rule(rf"(?<![{_CN_OR_DIGIT}个每上下])(?:(?:本|这个?)\s*)?{_WEEK}\s*({_WD}|末)(?![0-9次遍个期]|回(?!访))", "周星礼")
def _this_week(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    target = _weekday_of(_monday(today), m[1])
    if target < today:
        target += datetime.timedelta(days=7)
    return target


@_rule(rf"(?:本|这个?)\s*{_WEEK}(?!期)(?:之内|以内|内)?", "周星礼")
def _this_week_alone(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    friday = _monday(today) + datetime.timedelta(days=4)
    return friday if today <= friday else _monday(today) + datetime.timedelta(days=6)


# Months and years ---------------------------------------------------------------------------


@_rule(rf"(?<![{_CN_OR_DIGIT}下上个年])(?:(?:本|这个?)\s*)?月\s*(底|末|初|中旬|中)", "月")
def _this_month_part(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    part = m[1]
    candidate = _month_part(today.year, today.month, part)
    if part in ("底", "末"):
        if candidate == today:
            year, month = _month_shift(today.year, today.month, 1)
            return _month_part(year, month, part)
        return candidate
    if candidate < today:
        year, month = _month_shift(today.year, today.month, 1)
        return _month_part(year, month, part)
    return candidate


@_rule(r"下\s*个?\s*月\s*份?\s*(底|末|初|中旬|中)?", "月")
def _next_month(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    year, month = _month_shift(today.year, today.month, 1)
    return _month_part(year, month, m[1] or "初")


@_rule(rf"下\s*个?\s*月\s*份?\s*的?\s*({_D})\s*(?:号|日)", "月")
def _next_month_day(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    day = cn_to_int(m[1])
    year, month = _month_shift(today.year, today.month, 1)
    return None if day is None else _safe_date(year, month, day)


@_rule(rf"(?:本|这个?)\s*月\s*的?\s*({_D})\s*(?:号|日)", "月")
def _this_month_day(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    day = cn_to_int(m[1])
    return None if day is None else _safe_date(today.year, today.month, day)


@_rule(rf"(?<![{_CN_OR_DIGIT}明去前后])(?:(?:今|本)\s*)?年\s*(底|末)", "年")
def _year_end(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    end = datetime.date(today.year, 12, 31)
    return end if end != today else datetime.date(today.year + 1, 12, 31)


@_rule(r"明\s*年\s*(初|底|末)", "年")
def _next_year_part(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    if m[1] == "初":
        return datetime.date(today.year + 1, 1, 1)
    return datetime.date(today.year + 1, 12, 31)


@_rule(rf"(?<![{_CN_OR_DIGIT}月第.:/\-])({_D})\s*号(?![楼线院门店仓车间机台位码室栋座口])", "号")
def _day_of_month(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    day = cn_to_int(m[1])
    if day is None:
        return None
    for offset in range(3):
        year, month = _month_shift(today.year, today.month, offset)
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------

_BEFORE_SUFFIX = re.compile(r"\s*(?:之前|以前|前(?![往去来期面台端天]))")


def find_all_due_dates(
    text: str, today: datetime.date, calendar: WorkdayCounter | None = None
) -> list[DueDate]:
    """Every non-overlapping date expression in ``text``, in text order (past dates included).

    ``calendar`` counts "N个工作日后" (the team's calendar, admin-declared days included); without
    one the holiday library's own calendar is used. Overlaps are settled in favour of the longest expression (``下周三`` over ``周三``, ``大后天``
    over ``后天``); an impossible date still claims its text so no shorter reading replaces it.
    """
    norm = normalize(text)
    counter = calendar if calendar is not None else _DEFAULT_CALENDAR
    found: list[tuple[int, int, int, re.Match[str], datetime.date | None]] = []
    present = set(norm)
    for order, (pattern, handler, needs) in enumerate(_RULES):
        if present.isdisjoint(needs):
            continue
        for m in pattern.finditer(norm):
            if m.end() == m.start():
                continue
            found.append((m.start(), m.end(), order, m, handler(m, today, counter)))
    if not found:
        return []
    found.sort(key=lambda item: (item[0] - item[1], item[0], item[2]))
    taken: list[tuple[int, int, re.Match[str], datetime.date | None]] = []
    for start, end, _order, m, value in found:
        if any(start < t_end and t_start < end for t_start, t_end, _m, _v in taken):
            continue
        taken.append((start, end, m, value))
    taken.sort(key=lambda item: (item[0], item[1]))
    result: list[DueDate] = []
    for start, end, m, value in taken:
        if value is None:
            continue
        is_part, part = _part_of_day(m)
        if is_part and result and _PART_JOIN.fullmatch(norm, result[-1].span[1], start):
            # "明天下午", "周四 晚上": the part names the time of the date before it (whose
            # expression stays the date alone; callers strip a time of day next to a date).
            if part:
                result[-1] = dataclasses.replace(result[-1], part_of_day=part)
            continue
        span = _vague_range(m, today)
        latest = span[1] if span is not None else None
        suffix = _BEFORE_SUFFIX.match(norm, end)
        if suffix is not None and not any(s < suffix.end() and s >= end for s, _e, _m, _v in taken):
            end = suffix.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        result.append(
            DueDate(
                date=value,
                expression=text[start:end],
                span=(start, end),
                latest=latest,
                part_of_day=part,
            )
        )
    return result


_PART_JOIN = re.compile(r"[\s的]*")


def _part_of_day(m: re.Match[str]) -> tuple[bool, str | None]:
    """Whether ``m`` is a part-of-day match, and its part ("下午"; None for "待会"-like words)."""
    if m.re.pattern != _PART_OF_DAY_PATTERN:
        return False, None
    part = m[1]
    return True, part if part in _PARTS else None


def find_due_date(
    text: str, today: datetime.date, calendar: WorkdayCounter | None = None
) -> DueDate | None:
    """The due date the text names: the first expression on or after ``today``.

    When the text only names past dates, the first of those is returned so the caller can say the
    date has already passed. ``None`` when nothing date-like (or only impossible dates) is found.
    """
    dates = find_all_due_dates(text, today, calendar)
    if not dates:
        return None
    for due in dates:
        if due.date >= today:
            return due
    return dates[0]

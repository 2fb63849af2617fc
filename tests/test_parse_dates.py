"""Due-date expressions: a table per family, each case resolved against an explicit ``today``."""

from __future__ import annotations

import datetime

import pytest

from domain.parsing.dates import DueDate, cn_to_int, find_all_due_dates, find_due_date, normalize

D = datetime.date
SAT = D(2026, 11, 28)  # Saturday; its week runs Mon 11-23 .. Sun 11-29
SUN = D(2026, 11, 29)
MON_MONTH_END = D(2026, 11, 30)  # Monday and the last day of November
WED = D(2026, 12, 2)
LATE_DEC = D(2026, 12, 29)  # Tuesday
EARLY_JAN = D(2027, 1, 3)  # Sunday


RELATIVE_DAYS = [
    ("今天", SAT, D(2026, 11, 28), "今天"),
    ("今晚发资料", SAT, D(2026, 11, 28), "今晚"),
    ("今日内回复", SAT, D(2026, 11, 28), "今日"),
    ("明天", SAT, D(2026, 11, 29), "明天"),
    ("明日上门", SAT, D(2026, 11, 29), "明日"),
    ("明早电话", SAT, D(2026, 11, 29), "明早"),
    ("明晚吃饭", SAT, D(2026, 11, 29), "明晚"),
    ("后天", SAT, D(2026, 11, 30), "后天"),
    ("大后天再约", SAT, D(2026, 12, 1), "大后天"),
    ("三天后", SAT, D(2026, 12, 1), "三天后"),
    ("3天后回访", SAT, D(2026, 12, 1), "3天后"),
    ("两天后", SAT, D(2026, 11, 30), "两天后"),
    ("十天后", SAT, D(2026, 12, 8), "十天后"),
    ("十五天后", SAT, D(2026, 12, 13), "十五天后"),
    ("5天以后", SAT, D(2026, 12, 3), "5天以后"),
    ("7天内", SAT, D(2026, 12, 5), "7天内"),
    ("两天内给答复", SAT, D(2026, 11, 30), "两天内"),
    ("过两天再问", SAT, D(2026, 11, 30), "过两天"),
    ("３天后", SAT, D(2026, 12, 1), "３天后"),
    ("三天后", LATE_DEC, D(2027, 1, 1), "三天后"),
    ("3个工作日内", D(2026, 11, 27), D(2026, 12, 2), "3个工作日内"),
]

WEEKS = [
    ("两周后", SAT, D(2026, 12, 12), "两周后"),
    ("1个星期后", SAT, D(2026, 12, 5), "1个星期后"),
    ("一个礼拜后", SAT, D(2026, 12, 5), "一个礼拜后"),
    ("3周后", SAT, D(2026, 12, 19), "3周后"),
    ("下周三", SAT, D(2026, 12, 2), "下周三"),
    ("下星期五", SAT, D(2026, 12, 4), "下星期五"),
    ("下礼拜一", SAT, D(2026, 11, 30), "下礼拜一"),
    ("下个星期二", SAT, D(2026, 12, 1), "下个星期二"),
    ("下周日", SAT, D(2026, 12, 6), "下周日"),
    ("下周天", SAT, D(2026, 12, 6), "下周天"),
    ("下周7", SAT, D(2026, 12, 6), "下周7"),
    ("下周３", SAT, D(2026, 12, 2), "下周３"),
    ("下周 周三", SAT, D(2026, 12, 2), "下周 周三"),
    ("下周的周五", SAT, D(2026, 12, 4), "下周的周五"),
    ("下周", SAT, D(2026, 11, 30), "下周"),
    ("下周找时间", WED, D(2026, 12, 7), "下周"),
    ("下下周一", SAT, D(2026, 12, 7), "下下周一"),
    ("下周末", SAT, D(2026, 12, 5), "下周末"),
    # this week's day, or next week's when it has passed
    ("周五", SAT, D(2026, 12, 4), "周五"),
    ("周六", SAT, D(2026, 11, 28), "周六"),
    ("周日", SAT, D(2026, 11, 29), "周日"),
    ("礼拜天", SAT, D(2026, 11, 29), "礼拜天"),
    ("星期一", SAT, D(2026, 11, 30), "星期一"),
    ("本周日", SAT, D(2026, 11, 29), "本周日"),
    ("这周三", SAT, D(2026, 12, 2), "这周三"),
    ("周五", WED, D(2026, 12, 4), "周五"),
    ("周三", WED, D(2026, 12, 2), "周三"),
    ("周一", WED, D(2026, 12, 7), "周一"),
    ("周五前发报价单", SAT, D(2026, 12, 4), "周五前"),
    ("周五之前", WED, D(2026, 12, 4), "周五之前"),
    ("星期四以前", WED, D(2026, 12, 3), "星期四以前"),
    ("周末", WED, D(2026, 12, 5), "周末"),
    ("本周内", WED, D(2026, 12, 4), "本周内"),
    # Sunday is the last day of its week
    ("下周日", SUN, D(2026, 12, 6), "下周日"),
    ("周日", SUN, D(2026, 11, 29), "周日"),
    ("下周一", SUN, D(2026, 11, 30), "下周一"),
    ("周一", SUN, D(2026, 11, 30), "周一"),
    # across the year boundary
    ("下周三", LATE_DEC, D(2027, 1, 6), "下周三"),
    ("周五", LATE_DEC, D(2027, 1, 1), "周五"),
]

MONTHS = [
    ("月底", SAT, D(2026, 11, 30), "月底"),
    ("本月底", SAT, D(2026, 11, 30), "本月底"),
    ("这个月底前", SAT, D(2026, 11, 30), "这个月底前"),
    ("月末", WED, D(2026, 12, 31), "月末"),
    ("月底", MON_MONTH_END, D(2026, 12, 31), "月底"),  # today is the last day → next month's
    ("月底", LATE_DEC, D(2026, 12, 31), "月底"),
    ("月底", D(2028, 2, 27), D(2028, 2, 29), "月底"),  # leap year
    ("月底", D(2027, 2, 27), D(2027, 2, 28), "月底"),
    ("下月底", SAT, D(2026, 12, 31), "下月底"),
    ("下个月底", D(2027, 1, 15), D(2027, 2, 28), "下个月底"),
    ("下月初", SAT, D(2026, 12, 1), "下月初"),
    ("下个月初", LATE_DEC, D(2027, 1, 1), "下个月初"),
    ("下个月", SAT, D(2026, 12, 1), "下个月"),
    ("下月", LATE_DEC, D(2027, 1, 1), "下月"),
    ("月初", SAT, D(2026, 12, 1), "月初"),
    ("月中", SAT, D(2026, 12, 15), "月中"),
    ("月中", WED, D(2026, 12, 15), "月中"),
    ("下月中旬", SAT, D(2026, 12, 15), "下月中旬"),
    ("下个月5号", SAT, D(2026, 12, 5), "下个月5号"),
    ("本月30号", SAT, D(2026, 11, 30), "本月30号"),
    ("15号前", SAT, D(2026, 12, 15), "15号前"),
    ("30号", SAT, D(2026, 11, 30), "30号"),
    ("五号", SAT, D(2026, 12, 5), "五号"),
    ("31号", SAT, D(2026, 12, 31), "31号"),  # November has no 31st
    ("一个月后", SAT, D(2026, 12, 28), "一个月后"),
    ("一个月后", D(2028, 1, 31), D(2028, 2, 29), "一个月后"),
    ("半个月后", SAT, D(2026, 12, 13), "半个月后"),
    ("年底", SAT, D(2026, 12, 31), "年底"),
    ("明年初", SAT, D(2027, 1, 1), "明年初"),
    ("12月底", SAT, D(2026, 12, 31), "12月底"),
    ("1月中", LATE_DEC, D(2027, 1, 15), "1月中"),
]

ABSOLUTE = [
    ("12月5日", SAT, D(2026, 12, 5), "12月5日"),
    ("12月5号", SAT, D(2026, 12, 5), "12月5号"),
    ("12月5", SAT, D(2026, 12, 5), "12月5"),
    ("十二月五日", SAT, D(2026, 12, 5), "十二月五日"),
    ("十二月二十五号", SAT, D(2026, 12, 25), "十二月二十五号"),
    ("十二月五号前", SAT, D(2026, 12, 5), "十二月五号前"),
    ("１２月５日", SAT, D(2026, 12, 5), "１２月５日"),
    ("12 月 5 日", SAT, D(2026, 12, 5), "12 月 5 日"),
    ("2026-12-05", SAT, D(2026, 12, 5), "2026-12-05"),
    ("2027/1/8", SAT, D(2027, 1, 8), "2027/1/8"),
    ("2026年12月5日", SAT, D(2026, 12, 5), "2026年12月5日"),
    ("二〇二六年十二月五日", SAT, D(2026, 12, 5), "二〇二六年十二月五日"),
    ("2027年1月3日", SAT, D(2027, 1, 3), "2027年1月3日"),
    # year inference
    ("1月5日", LATE_DEC, D(2027, 1, 5), "1月5日"),
    ("1月5日", SAT, D(2027, 1, 5), "1月5日"),
    ("12月20日", LATE_DEC, D(2026, 12, 20), "12月20日"),  # a few days ago stays in the past
    ("10月1日", SAT, D(2026, 10, 1), "10月1日"),  # 58 days ago: still this year
    ("9月20日", SAT, D(2027, 9, 20), "9月20日"),  # 69 days ago: next year
    ("3月1日", SAT, D(2027, 3, 1), "3月1日"),
    ("12月28日", EARLY_JAN, D(2026, 12, 28), "12月28日"),  # just before new year, said in January
    ("2月1日", EARLY_JAN, D(2027, 2, 1), "2月1日"),
    ("2月29日", D(2027, 12, 1), D(2028, 2, 29), "2月29日"),
    # M/D and M.D only in date context
    ("12/5", SAT, D(2026, 12, 5), "12/5"),
    ("12/5前交", SAT, D(2026, 12, 5), "12/5前"),
    ("12.5前报价", SAT, D(2026, 12, 5), "12.5前"),
    ("定在12.8上门", SAT, D(2026, 12, 8), "12.8"),
    ("改到1.6见面", SAT, D(2027, 1, 6), "1.6"),
]


@pytest.mark.parametrize(
    ("text", "today", "expected", "expression"),
    RELATIVE_DAYS + WEEKS + MONTHS + ABSOLUTE,
    ids=[f"{c[0]}@{c[1]}" for c in RELATIVE_DAYS + WEEKS + MONTHS + ABSOLUTE],
)
def test_due_date_table(text: str, today: datetime.date, expected: datetime.date, expression: str) -> None:
    due = find_due_date(text, today)
    assert due is not None, text
    assert due.date == expected
    assert due.expression == expression
    start, end = due.span
    assert text[start:end] == expression


NOT_DATES = [
    "聊了报价细节",
    "打了20分钟电话",
    "一周三次",
    "1.5小时",
    "报价12.8万",
    "价格12.8",
    "版本2.1",
    "1/2的客户",
    "3号楼",
    "每周三例会",
    "13月5日",
    "",
]


@pytest.mark.parametrize("text", NOT_DATES)
def test_no_date(text: str) -> None:
    assert find_due_date(text, SAT) is None


INVALID = ["2月30日", "2026-02-30", "11月31日", "2027年2月29日", "4月31号"]


@pytest.mark.parametrize("text", INVALID)
def test_impossible_dates_give_nothing(text: str) -> None:
    assert find_due_date(text, SAT) is None


def test_impossible_date_does_not_hide_a_later_valid_one() -> None:
    due = find_due_date("2月30日不行,改成3月2日", D(2027, 2, 10))
    assert due is not None
    assert due.date == D(2027, 3, 2)
    assert due.expression == "3月2日"


@pytest.mark.parametrize(
    ("text", "expected", "expression"),
    [
        ("明天先发资料,下周三上门", D(2026, 11, 29), "明天"),  # first expression wins
        ("下周三上门,明天先发资料", D(2026, 12, 2), "下周三"),
        ("昨天拜访了,明天发报价", D(2026, 11, 29), "明天"),  # first one not in the past
        ("上周三报价后没回音", D(2026, 11, 18), "上周三"),  # only a past date: returned for rejection
        ("大后天", D(2026, 12, 1), "大后天"),  # longest reading, not 后天
        ("下下周三", D(2026, 12, 9), "下下周三"),
    ],
)
def test_first_and_most_specific(text: str, expected: datetime.date, expression: str) -> None:
    due = find_due_date(text, SAT)
    assert due == DueDate(
        expected, expression, (text.index(expression), text.index(expression) + len(expression))
    )


def test_span_points_into_the_original_text() -> None:
    text = "跟进一下，下周三上门"
    due = find_due_date(text, SAT)
    assert due is not None
    assert due.span == (5, 8)
    assert text[due.span[0] : due.span[1]] == "下周三"


def test_find_all_returns_every_expression_in_order() -> None:
    dates = find_all_due_dates("昨天拜访了,明天发报价,下周三上门", SAT)
    assert [d.expression for d in dates] == ["昨天", "明天", "下周三"]
    assert [d.date for d in dates] == [D(2026, 11, 27), D(2026, 11, 29), D(2026, 12, 2)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("十二", 12),
        ("二十", 20),
        ("二十五", 25),
        ("两", 2),
        ("十", 10),
        ("一百零五", 105),
        ("二〇二六", 2026),
        ("三十一", 31),
        ("两三", 2),
        ("", None),
        ("abc", None),
    ],
)
def test_cn_to_int(text: str, value: int | None) -> None:
    assert cn_to_int(text) == value


def test_normalize_keeps_length_and_maps_full_width() -> None:
    text = "ＡＢＣ，１２月５日　下周３"
    out = normalize(text)
    assert len(out) == len(text)
    assert out == "abc,12月5日 下周3"


# "N个工作日后" counts on the Chinese holiday calendar (chinese_calendar data for 2026: National Day
# off 2026-10-01..07, make-up working days Sunday 2026-09-20 and Saturday 2026-10-10; Mid-Autumn
# off Friday 2026-09-25).
@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("3个工作日后", D(2026, 9, 29), D(2026, 10, 9)),  # 9-30, then 10-08, 10-09: the holiday skipped
        ("三个工作日后", D(2026, 9, 30), D(2026, 10, 10)),  # 10-08, 10-09 and the make-up Saturday
        ("1个工作日后", D(2026, 10, 9), D(2026, 10, 10)),  # Friday → the make-up Saturday
        ("两个工作日内", D(2026, 10, 9), D(2026, 10, 12)),
        ("1个工作日后", D(2026, 9, 30), D(2026, 10, 8)),  # the whole holiday skipped
        ("1个工作日后", D(2026, 9, 18), D(2026, 9, 20)),  # make-up Sunday
        ("2个工作日后", D(2026, 9, 24), D(2026, 9, 29)),  # Mid-Autumn Friday skipped
    ],
)
def test_workdays_follow_the_holiday_calendar(text: str, today: D, expected: D) -> None:
    due = find_due_date(text, today)
    assert due is not None and due.date == expected


def test_workdays_across_national_day_2026_differ_from_monday_to_friday() -> None:
    # Monday–Friday counting would give Friday 2026-10-02, a public holiday.
    due = find_due_date("3个工作日后发合同", D(2026, 9, 29))
    assert due is not None and due.date == D(2026, 10, 9)
    # Monday–Friday counting would give Monday 2026-10-12 and miss the make-up Saturday.
    due = find_due_date("1个工作日后回访", D(2026, 10, 9))
    assert due is not None and due.date == D(2026, 10, 10)


def test_workdays_use_the_calendar_passed_in() -> None:
    from domain.rules.workdays import CalendarOverrides, WorkCalendar

    # An admin declared Monday 2026-10-12 a day off: the team's calendar skips it too.
    team = WorkCalendar(CalendarOverrides(holidays=frozenset({D(2026, 10, 12)})))
    due = find_due_date("两个工作日后", D(2026, 10, 9), team)
    assert due is not None and due.date == D(2026, 10, 13)
    assert find_all_due_dates("两个工作日后", D(2026, 10, 9))[0].date == D(2026, 10, 12)


def test_calendar_days_are_not_working_days() -> None:
    due = find_due_date("3天后", D(2026, 9, 29))
    assert due is not None and due.date == D(2026, 10, 2)


@pytest.mark.parametrize(
    ("text", "value"),
    [("一万二", 12000), ("三万五千", 35000), ("三千五", 3500), ("一百五", 150), ("一万零五百", 10500), ("十二万", 120000)],
)
def test_cn_to_int_reads_ten_thousands_and_abbreviated_tails(text: str, value: int) -> None:
    assert cn_to_int(text) == value


def test_cn_to_int_reads_two_adjacent_digits_as_a_range_from_its_lower_bound() -> None:
    # "三四天后" is "three or four days": counting starts from the lower bound, never 34.
    assert cn_to_int("三四") == 3
    assert cn_to_int("二〇二六") == 2026  # four digits are written digit by digit, not a range

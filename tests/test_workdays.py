"""Working-day calendar: Chinese public holidays, make-up working days, admin overrides."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from domain.rules import workdays as workdays_module
from domain.rules.workdays import CalendarOverrides, WorkCalendar, parse_date_list

D = dt.date
SHANGHAI = ZoneInfo("Asia/Shanghai")

# The installed chinesecalendar stops at 2026; these tests pin 2027 as "beyond data".
BEYOND_YEAR = 2027
needs_2027_beyond_data = pytest.mark.skipif(
    BEYOND_YEAR in WorkCalendar().data_years,
    reason="chinesecalendar now has 2027 data; move the beyond-data cases to a later year",
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dt.date] = []

    def __call__(self, day: dt.date) -> None:
        self.calls.append(day)


def test_data_years_cover_2026_and_match_the_library() -> None:
    years = WorkCalendar().data_years
    assert 2026 in years and 2004 in years
    chinese_calendar.is_workday(D(years[-1], 12, 31))  # covered: no exception
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(D(years[-1] + 1, 1, 1))


# -- real 2026 data ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # Mid-Autumn Festival: Fri 09-25 .. Sun 09-27 off.
        (D(2026, 9, 20), True),  # Sunday, make-up working day for National Day
        (D(2026, 9, 25), False),  # Friday, Mid-Autumn Festival
        (D(2026, 9, 28), True),
        (D(2026, 9, 30), True),  # Wednesday before the golden week
        # National Day golden week: Thu 10-01 .. Wed 10-07 off.
        (D(2026, 10, 1), False),
        (D(2026, 10, 2), False),
        (D(2026, 10, 3), False),
        (D(2026, 10, 4), False),
        (D(2026, 10, 5), False),  # Monday
        (D(2026, 10, 6), False),
        (D(2026, 10, 7), False),
        (D(2026, 10, 8), True),
        (D(2026, 10, 9), True),
        (D(2026, 10, 10), True),  # Saturday, make-up working day
        (D(2026, 10, 11), False),  # ordinary Sunday
        (D(2026, 10, 12), True),
        # Spring Festival: Sun 02-15 .. Mon 02-23 off.
        (D(2026, 2, 13), True),  # Friday
        (D(2026, 2, 14), True),  # Saturday, make-up working day
        (D(2026, 2, 15), False),
        (D(2026, 2, 16), False),  # Monday
        (D(2026, 2, 17), False),  # first day of the lunar new year
        (D(2026, 2, 20), False),  # Friday
        (D(2026, 2, 23), False),  # Monday
        (D(2026, 2, 24), True),
        (D(2026, 2, 28), True),  # Saturday, make-up working day
        (D(2026, 3, 1), False),  # ordinary Sunday
        # Labour Day: Fri 05-01 .. Tue 05-05 off, Sat 05-09 worked.
        (D(2026, 5, 4), False),
        (D(2026, 5, 5), False),
        (D(2026, 5, 9), True),
        # New Year: Thu 01-01 .. Sat 01-03 off, Sun 01-04 worked.
        (D(2026, 1, 2), False),
        (D(2026, 1, 4), True),
    ],
)
def test_is_workday_2026(day: dt.date, expected: bool) -> None:
    assert chinese_calendar.is_workday(day) is expected  # the facts the table relies on
    assert WorkCalendar().is_workday(day) is expected


def test_is_workday_accepts_datetime() -> None:
    assert WorkCalendar().is_workday(dt.datetime(2026, 10, 10, 9, 30)) is True


def test_make_up_saturday_counts_as_a_working_day() -> None:
    cal = WorkCalendar()
    # 10-09 (Fri) -> 10-10 (make-up Sat) is one working day; an ordinary weekend adds none.
    assert cal.workdays_between(D(2026, 10, 9), D(2026, 10, 10)) == 1
    assert cal.workdays_between(D(2026, 10, 16), D(2026, 10, 18)) == 0
    assert cal.add_workdays(D(2026, 10, 9), 1) == D(2026, 10, 10)
    assert cal.add_workdays(D(2026, 2, 13), 1) == D(2026, 2, 14)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # Whole golden week (and the weekend inside it) is off.
        (D(2026, 9, 30), D(2026, 10, 7), 0),
        (D(2026, 9, 30), D(2026, 10, 8), 1),
        (D(2026, 9, 30), D(2026, 10, 11), 3),  # 10-08, 10-09, make-up 10-10
        # Fri 09-18 -> Wed 09-30: make-up Sun 09-20, 21..24, Mid-Autumn 25..27 off, 28..30.
        (D(2026, 9, 18), D(2026, 9, 30), 8),
        # Spring Festival: nine days off, two make-up Saturdays.
        (D(2026, 2, 13), D(2026, 2, 23), 1),  # only make-up 02-14
        (D(2026, 2, 13), D(2026, 3, 1), 6),  # 02-14, 24, 25, 26, 27, 28
        # Across the year end into data the library has.
        (D(2025, 12, 31), D(2026, 1, 5), 2),  # 01-04 (make-up Sun), 01-05
        # Empty and reversed ranges.
        (D(2026, 10, 8), D(2026, 10, 8), 0),
        (D(2026, 10, 14), D(2026, 9, 30), 0),
        (D(2027, 3, 1), D(2026, 3, 1), 0),
    ],
)
def test_workdays_between(start: dt.date, end: dt.date, expected: int) -> None:
    assert WorkCalendar().workdays_between(start, end) == expected


@pytest.mark.parametrize(
    ("quote_day", "day_five", "day_six"),
    [
        # Quote on Wed 09-30, right before National Day: 10-08, 10-09, 10-10 (make-up Sat),
        # 10-12, 10-13 -> fifth working day; 10-14 is the sixth.
        (D(2026, 9, 30), D(2026, 10, 13), D(2026, 10, 14)),
        # Quote on Thu 04-30, before Labour Day: 05-06, 05-07, 05-08, 05-09 (make-up Sat), 05-11.
        (D(2026, 4, 30), D(2026, 5, 11), D(2026, 5, 12)),
        # Quote on Fri 02-13, before Spring Festival: 02-14 (make-up Sat), 02-24 .. 02-27.
        (D(2026, 2, 13), D(2026, 2, 27), D(2026, 2, 28)),
    ],
)
def test_five_then_six_working_days_across_holiday_and_make_up_saturday(
    quote_day: dt.date, day_five: dt.date, day_six: dt.date
) -> None:
    cal = WorkCalendar()
    assert cal.add_workdays(quote_day, 5) == day_five
    assert cal.add_workdays(quote_day, 6) == day_six
    assert cal.workdays_between(quote_day, day_five) == 5
    assert cal.workdays_between(quote_day, day_six) == 6
    assert cal.workdays_between(quote_day, day_six - dt.timedelta(days=1)) == 5


def test_workdays_elapsed_uses_local_dates() -> None:
    cal = WorkCalendar()
    quoted = dt.datetime(2026, 9, 30, 10, 0, tzinfo=dt.UTC)  # 18:00 in Shanghai, Wed 09-30
    late_13th = dt.datetime(2026, 10, 13, 15, 59, tzinfo=dt.UTC)  # 23:59 on 10-13 in Shanghai
    early_14th = dt.datetime(2026, 10, 13, 16, 30, tzinfo=dt.UTC)  # 00:30 on 10-14 in Shanghai
    assert cal.workdays_elapsed(quoted, late_13th, SHANGHAI) == 5
    assert cal.workdays_elapsed(quoted, early_14th, SHANGHAI) == 6
    # The same instants read in UTC are both still on 10-13.
    assert cal.workdays_elapsed(quoted, early_14th, ZoneInfo("UTC")) == 5
    assert cal.workdays_elapsed(early_14th, quoted, SHANGHAI) == 0


def test_workdays_elapsed_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        WorkCalendar().workdays_elapsed(dt.datetime(2026, 9, 30), dt.datetime(2026, 10, 1, tzinfo=dt.UTC), SHANGHAI)


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (D(2026, 9, 30), 0, D(2026, 9, 30)),
        (D(2026, 10, 3), 0, D(2026, 10, 3)),  # n=0 returns start even on a holiday
        (D(2026, 10, 1), 1, D(2026, 10, 8)),
        (D(2026, 9, 18), 1, D(2026, 9, 20)),  # make-up Sunday before Mid-Autumn
        (D(2026, 9, 24), 1, D(2026, 9, 28)),  # Mid-Autumn Fri..Sun skipped
        (D(2026, 12, 30), 1, D(2026, 12, 31)),
    ],
)
def test_add_workdays(start: dt.date, n: int, expected: dt.date) -> None:
    assert WorkCalendar().add_workdays(start, n) == expected


def test_add_workdays_rejects_negative() -> None:
    with pytest.raises(ValueError, match="-1"):
        WorkCalendar().add_workdays(D(2026, 9, 30), -1)


def test_add_workdays_and_workdays_between_agree_over_2025_2026() -> None:
    cal = WorkCalendar()
    start = D(2025, 1, 1)
    for n in range(0, 480, 7):
        end = cal.add_workdays(start, n)
        assert cal.workdays_between(start, end) == n
        assert n == 0 or cal.is_workday(end)


# -- admin overrides ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "day", "expected"),
    [
        # Company day off on an ordinary Friday.
        (CalendarOverrides(holidays=frozenset({D(2026, 10, 9)})), D(2026, 10, 9), False),
        # Company gives the library's make-up Saturday off.
        (CalendarOverrides(holidays=frozenset({D(2026, 10, 10)})), D(2026, 10, 10), False),
        # Company works an ordinary Sunday.
        (CalendarOverrides(workdays=frozenset({D(2026, 10, 11)})), D(2026, 10, 11), True),
        # Company works a day the library has as a public holiday.
        (CalendarOverrides(workdays=frozenset({D(2026, 10, 7)})), D(2026, 10, 7), True),
    ],
)
def test_admin_overrides_win_over_library(overrides: CalendarOverrides, day: dt.date, expected: bool) -> None:
    assert WorkCalendar().is_workday(day) is not expected  # the override really changes something
    assert WorkCalendar(overrides).is_workday(day) is expected


def test_admin_overrides_shift_counts() -> None:
    quote = D(2026, 9, 30)
    off_friday = WorkCalendar(CalendarOverrides(holidays=frozenset({D(2026, 10, 9)})))
    assert off_friday.workdays_between(quote, D(2026, 10, 13)) == 4
    assert off_friday.add_workdays(quote, 5) == D(2026, 10, 14)
    working_sunday = WorkCalendar(CalendarOverrides(workdays=frozenset({D(2026, 10, 11)})))
    assert working_sunday.workdays_between(quote, D(2026, 10, 13)) == 6
    assert working_sunday.add_workdays(quote, 5) == D(2026, 10, 12)


def test_overrides_reject_a_day_declared_both_ways() -> None:
    with pytest.raises(ValueError, match="2026-10-09"):
        CalendarOverrides(holidays=frozenset({D(2026, 10, 9)}), workdays=frozenset({D(2026, 10, 9)}))


def test_overrides_normalise_datetimes_to_dates() -> None:
    overrides = CalendarOverrides(holidays=frozenset({dt.datetime(2026, 10, 9, 8, 0)}))
    assert overrides.holidays == frozenset({D(2026, 10, 9)})
    assert WorkCalendar(overrides).is_workday(D(2026, 10, 9)) is False


# -- beyond the library's data ----------------------------------------------------------------


@needs_2027_beyond_data
@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2027, 1, 1), True),  # Friday: no data, so Mon-Fri rules (admins must declare it)
        (D(2027, 1, 2), False),  # Saturday
        (D(2027, 1, 3), False),  # Sunday
        (D(2027, 1, 4), True),  # Monday
        (D(2027, 2, 6), False),  # Saturday
        (D(2027, 10, 1), True),  # Friday
    ],
)
def test_2027_counts_monday_to_friday(day: dt.date, expected: bool) -> None:
    assert WorkCalendar().is_workday(day) is expected


@needs_2027_beyond_data
def test_2027_ranges_count_monday_to_friday() -> None:
    cal = WorkCalendar()
    assert cal.workdays_between(D(2027, 1, 1), D(2027, 1, 31)) == 20  # Jan 2027: 21 weekdays
    assert cal.workdays_between(D(2027, 1, 1), D(2027, 12, 31)) == 260
    assert cal.add_workdays(D(2027, 1, 1), 5) == D(2027, 1, 8)
    # 2026-12-31 (Thu) -> 2027-01-01 (Fri) crosses from library data into the fallback.
    assert cal.workdays_between(D(2026, 12, 30), D(2027, 1, 4)) == 3


@needs_2027_beyond_data
def test_beyond_data_callback_fires_exactly_once_per_calendar() -> None:
    recorder = Recorder()
    cal = WorkCalendar(on_beyond_data=recorder)
    # Queries inside the library's data never warn.
    cal.is_workday(D(2026, 10, 10))
    cal.workdays_between(D(2026, 1, 1), D(2026, 12, 31))
    cal.add_workdays(D(2026, 9, 30), 30)
    assert recorder.calls == []
    # The first query that needs the Monday-Friday fallback warns, naming the day.
    assert cal.workdays_between(D(2026, 12, 30), D(2027, 1, 4)) == 3
    assert recorder.calls == [D(2027, 1, 1)]
    for i in range(2000):
        day = D(2027, 1, 1) + dt.timedelta(days=i % 365)
        cal.is_workday(day)
        cal.workdays_between(D(2026, 6, 1), day)
        cal.add_workdays(day, i % 15)
    assert recorder.calls == [D(2027, 1, 1)]
    # Another calendar (e.g. after a config reload) warns again, once.
    other_recorder = Recorder()
    other = WorkCalendar(on_beyond_data=other_recorder)
    other.is_workday(D(2027, 3, 3))
    other.is_workday(D(2027, 3, 4))
    assert other_recorder.calls == [D(2027, 3, 3)]


@needs_2027_beyond_data
@pytest.mark.parametrize(
    ("call", "warned_day"),
    [
        (lambda cal: cal.is_workday(D(2027, 5, 5)), D(2027, 5, 5)),
        (lambda cal: cal.workdays_between(D(2026, 12, 1), D(2027, 2, 1)), D(2027, 1, 1)),
        (lambda cal: cal.add_workdays(D(2026, 12, 30), 3), D(2027, 1, 1)),
        (
            lambda cal: cal.workdays_elapsed(
                dt.datetime(2026, 12, 31, 12, tzinfo=dt.UTC),
                dt.datetime(2027, 1, 4, 12, tzinfo=dt.UTC),
                SHANGHAI,
            ),
            D(2027, 1, 1),
        ),
    ],
)
def test_each_query_reports_the_first_beyond_data_day(call, warned_day: dt.date) -> None:
    recorder = Recorder()
    call(WorkCalendar(on_beyond_data=recorder))
    assert recorder.calls == [warned_day]


@needs_2027_beyond_data
def test_failing_callback_does_not_stop_counting(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def explode(day: dt.date) -> None:
        calls.append(day)
        raise RuntimeError("notifier down")

    cal = WorkCalendar(on_beyond_data=explode)
    assert cal.workdays_between(D(2027, 1, 1), D(2027, 1, 31)) == 20
    assert cal.is_workday(D(2027, 1, 4)) is True
    assert calls == [D(2027, 1, 2)]
    assert "notifier down" in caplog.text


@needs_2027_beyond_data
def test_admin_declared_2027_holidays_and_make_up_days() -> None:
    recorder = Recorder()
    overrides = CalendarOverrides(
        holidays=parse_date_list(["2027-01-01", "2027-02-06..2027-02-14"]),
        workdays=parse_date_list(["2027-02-20"]),  # a Saturday
    )
    cal = WorkCalendar(overrides, on_beyond_data=recorder)
    assert cal.is_workday(D(2027, 1, 1)) is False  # Friday, declared off
    assert cal.is_workday(D(2027, 2, 8)) is False  # Monday, declared off
    assert cal.is_workday(D(2027, 2, 20)) is True  # Saturday, declared working
    # Answered by the overrides alone: no fallback consulted yet.
    assert recorder.calls == []
    # Fri 02-05 -> Mon 02-15: the declared week off leaves only Monday.
    assert cal.workdays_between(D(2027, 2, 5), D(2027, 2, 15)) == 1
    assert recorder.calls == [D(2027, 2, 15)]
    # 15..19 (5) + make-up Sat 20 + Mon 22
    assert cal.add_workdays(D(2027, 2, 12), 7) == D(2027, 2, 22)
    assert cal.workdays_between(D(2026, 12, 31), D(2027, 1, 4)) == 1  # New Year declared off
    assert recorder.calls == [D(2027, 2, 15)]


def test_year_after_data_always_counts_monday_to_friday() -> None:
    # Whatever the library version, the first year after its data falls back and warns once.
    recorder = Recorder()
    cal = WorkCalendar(on_beyond_data=recorder)
    year = cal.data_years.stop
    jan1 = D(year, 1, 1)
    weekdays = sum((jan1 + dt.timedelta(days=i)).weekday() < 5 for i in range(1, 31))
    assert cal.workdays_between(jan1, D(year, 1, 31)) == weekdays
    assert cal.is_workday(D(year, 6, 1)) is (D(year, 6, 1).weekday() < 5)
    assert recorder.calls == [jan1 + dt.timedelta(days=1)]


# -- parse_date_list ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], frozenset()),
        (["2027-01-01"], frozenset({D(2027, 1, 1)})),
        (["2027-02-10..2027-02-16"], frozenset(D(2027, 2, d) for d in range(10, 17))),
        ([" 2027-02-10 .. 2027-02-12 "], frozenset(D(2027, 2, d) for d in range(10, 13))),
        (["2027-02-10..2027-02-10"], frozenset({D(2027, 2, 10)})),
        (["2027-12-31..2028-01-02"], frozenset({D(2027, 12, 31), D(2028, 1, 1), D(2028, 1, 2)})),
        (["2027-01-01", "2027-01-01", "2026-12-31..2027-01-01"], frozenset({D(2026, 12, 31), D(2027, 1, 1)})),
        ([D(2027, 1, 1)], frozenset({D(2027, 1, 1)})),  # TOML bare date
        ("2027-01-01", frozenset({D(2027, 1, 1)})),  # a lone string is one value
        (("2028-02-28..2028-03-01",), frozenset({D(2028, 2, 28), D(2028, 2, 29), D(2028, 3, 1)})),
    ],
)
def test_parse_date_list_good(values, expected: frozenset[dt.date]) -> None:
    assert parse_date_list(values) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "2027-13-01",
        "2027-02-30",
        "2027/01/01",
        "20270101",
        "2027-W01-1",
        "2027-1-1",
        "tomorrow",
        "2027-02-16..2027-02-10",
        "2027-01-01..",
        "..2027-01-01",
        "2027-01-01...2027-01-03",
        "2027-01-01..2027-02-30",
        "2027-01-01..2028-06-01",
    ],
)
def test_parse_date_list_bad_names_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        parse_date_list(["2027-01-01", bad])


@pytest.mark.parametrize("bad", [20270101, None, dt.datetime(2027, 1, 1, 9, 0)])
def test_parse_date_list_rejects_non_strings(bad) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        parse_date_list([bad])


# -- performance -------------------------------------------------------------------------------


def test_library_is_consulted_once_per_day(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = chinese_calendar.is_workday

    def counting(day: dt.date) -> bool:
        nonlocal calls
        calls += 1
        return real(day)

    workdays_module._library_flags.cache_clear()
    monkeypatch.setattr(chinese_calendar, "is_workday", counting)
    try:
        cal = WorkCalendar()
        for i in range(5000):
            start = D(2025, 1, 1) + dt.timedelta(days=i % 700)
            cal.workdays_between(start, start + dt.timedelta(days=40))
            cal.add_workdays(start, i % 20)
            cal.is_workday(start)
        # Every covered day of 2025..2027 (the queries reach 2027-01) looked up once, no more.
        expected = sum(365 + (year % 4 == 0) for year in (2025, 2026, 2027) if year in cal.data_years)
        assert calls == expected
    finally:
        workdays_module._library_flags.cache_clear()

"""Working-day arithmetic on the Chinese public-holiday calendar.

A day is a working day according to, in this order:

1. the admin overrides (declared days off and declared make-up working days);
2. the ``chinese_calendar`` data, which knows the public holidays and the make-up working
   days (调休) announced by the State Council for the years it covers;
3. beyond those years, Monday to Friday. The first time a ``WorkCalendar`` has to fall back on
   this it calls ``on_beyond_data`` once, so admins can be told to enter the new year's
   holidays. Counting never stops.

Everything is pure: no I/O and no clock. Each year is turned into a table of prefix sums the
first time it is needed, so ``is_workday``, ``workdays_between`` and ``add_workdays`` cost a few
dictionary look-ups each.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import itertools
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = ["CalendarOverrides", "DateItemError", "WorkCalendar", "parse_date_item", "parse_date_list"]

log = logging.getLogger(__name__)

_ONE_DAY = datetime.timedelta(days=1)
# Longest range accepted by parse_date_list; anything longer is almost certainly a typo.
MAX_RANGE_DAYS = 366


def _as_date(value: datetime.date) -> datetime.date:
    # datetime is a subclass of date but hashes differently; compare calendar days only.
    if isinstance(value, datetime.datetime):
        return value.date()
    if not isinstance(value, datetime.date):
        raise TypeError(f"expected a date, got {value!r}")
    return value


@dataclass(frozen=True)
class CalendarOverrides:
    """Days declared by admins; they win over the holiday library."""

    holidays: frozenset[datetime.date] = frozenset()  # days off
    workdays: frozenset[datetime.date] = frozenset()  # make-up working days

    def __post_init__(self) -> None:
        holidays = frozenset(_as_date(d) for d in self.holidays)
        workdays = frozenset(_as_date(d) for d in self.workdays)
        clash = sorted(holidays & workdays)
        if clash:
            listed = ", ".join(d.isoformat() for d in clash)
            raise ValueError(f"declared both as holiday and as working day: {listed}")
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "workdays", workdays)


def _library_data_years() -> range:
    """The years ``chinese_calendar`` answers for (it raises NotImplementedError outside them)."""
    try:
        from chinese_calendar import constants

        years = {d.year for d in constants.holidays} | {d.year for d in constants.workdays}
        if years:
            covered = range(min(years), max(years) + 1)
            chinese_calendar.is_workday(datetime.date(covered[0], 1, 1))
            chinese_calendar.is_workday(datetime.date(covered[-1], 12, 31))
            return covered
    except (ImportError, AttributeError, NotImplementedError):
        pass
    # Layout of the library changed: probe it instead.
    known = []
    for year in range(1990, 2101):
        try:
            chinese_calendar.is_workday(datetime.date(year, 1, 1))
        except NotImplementedError:
            continue
        known.append(year)
    return range(known[0], known[-1] + 1) if known else range(0)


_DATA_YEARS = _library_data_years()


def _days_in_year(year: int) -> int:
    return 366 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 365


@functools.cache
def _library_flags(year: int) -> bytes:
    """One byte per day of ``year`` (1 = working day) from the library; ``year`` must be covered."""
    first = datetime.date(year, 1, 1)
    return bytes(
        chinese_calendar.is_workday(first + datetime.timedelta(days=i)) for i in range(_days_in_year(year))
    )


def _weekday_flags(year: int) -> bytes:
    first_weekday = datetime.date(year, 1, 1).weekday()
    return bytes((first_weekday + i) % 7 < 5 for i in range(_days_in_year(year)))


class _Year:
    """Working days of one calendar year, overrides applied."""

    __slots__ = ("jan1", "flags", "prefix", "total")

    def __init__(self, year: int, flags: bytes) -> None:
        self.jan1 = datetime.date(year, 1, 1).toordinal()
        self.flags = flags
        # prefix[i] = working days among the first i days of the year.
        self.prefix = (0, *itertools.accumulate(flags))
        self.total = self.prefix[-1]


class WorkCalendar:
    """Counts working days; see the module docstring for the rules."""

    def __init__(
        self,
        overrides: CalendarOverrides = CalendarOverrides(),
        on_beyond_data: Callable[[datetime.date], None] | None = None,
    ) -> None:
        self._overrides = overrides
        self._on_beyond_data = on_beyond_data
        self._overridden = overrides.holidays | overrides.workdays
        self._overrides_by_year: dict[int, list[tuple[datetime.date, bool]]] = {}
        for day, is_work in itertools.chain(
            ((d, False) for d in overrides.holidays), ((d, True) for d in overrides.workdays)
        ):
            self._overrides_by_year.setdefault(day.year, []).append((day, is_work))
        self._years: dict[int, _Year] = {}
        self._warned = on_beyond_data is None
        self._lock = threading.Lock()

    @property
    def overrides(self) -> CalendarOverrides:
        return self._overrides

    @property
    def data_years(self) -> range:
        """Years the holiday library has data for."""
        return _DATA_YEARS

    def has_data(self, year: int) -> bool:
        """Whether ``year`` is covered by the library (otherwise Monday–Friday plus overrides)."""
        return year in _DATA_YEARS

    # -- queries ---------------------------------------------------------------------------

    def is_workday(self, day: datetime.date) -> bool:
        day = _as_date(day)
        table = self._year(day.year)
        if not self._warned and day.year not in _DATA_YEARS and day not in self._overridden:
            self._warn(day)
        return bool(table.flags[day.toordinal() - table.jan1])

    def workdays_between(self, start: datetime.date, end: datetime.date) -> int:
        """Working days ``d`` with ``start < d <= end``; 0 when ``end <= start``."""
        start, end = _as_date(start), _as_date(end)
        if end <= start:
            return 0
        if not self._warned:
            self._check_beyond_data(start + _ONE_DAY, end)
        first = self._year(start.year)
        start_idx = start.toordinal() - first.jan1 + 1
        if start.year == end.year:
            return first.prefix[end.toordinal() - first.jan1 + 1] - first.prefix[start_idx]
        count = first.total - first.prefix[start_idx]
        for year in range(start.year + 1, end.year):
            count += self._year(year).total
        last = self._year(end.year)
        return count + last.prefix[end.toordinal() - last.jan1 + 1]

    def add_workdays(self, start: datetime.date, n: int) -> datetime.date:
        """The date that is ``n`` working days after ``start`` (``start`` itself not counted)."""
        start = _as_date(start)
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an integer, got {n!r}")
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        if n == 0:
            return start
        year = start.year
        table = self._year(year)
        done = table.prefix[start.toordinal() - table.jan1 + 1]
        need = n
        while table.total - done < need:
            need -= table.total - done
            year += 1
            table = self._year(year)  # raises on running past date.max
            done = 0
        # Smallest i with prefix[i] == done + need: the i-th day of the year (1-based).
        index = bisect.bisect_left(table.prefix, done + need)
        result = datetime.date.fromordinal(table.jan1 + index - 1)
        if not self._warned:
            self._check_beyond_data(start + _ONE_DAY, result)
        return result

    def workdays_elapsed(self, start: datetime.datetime, now: datetime.datetime, tz: ZoneInfo) -> int:
        """Whole working days elapsed: ``workdays_between`` of the local dates in ``tz``.

        Both instants must be timezone-aware.
        """
        for instant in (start, now):
            if instant.tzinfo is None:
                raise ValueError("naive datetime: a timezone is required")
        return self.workdays_between(start.astimezone(tz).date(), now.astimezone(tz).date())

    # -- internals -------------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        table = self._years.get(year)
        if table is None:
            table = self._build_year(year)
            self._years[year] = table
        return table

    def _build_year(self, year: int) -> _Year:
        flags = _library_flags(year) if year in _DATA_YEARS else _weekday_flags(year)
        changes = self._overrides_by_year.get(year)
        if changes:
            patched = bytearray(flags)
            jan1 = datetime.date(year, 1, 1).toordinal()
            for day, is_work in changes:
                patched[day.toordinal() - jan1] = is_work
            flags = bytes(patched)
        return _Year(year, flags)

    def _check_beyond_data(self, first: datetime.date, last: datetime.date) -> None:
        """Warn for the earliest day in ``first..last`` answered by the Monday–Friday fallback."""
        for year in range(first.year, last.year + 1):
            if year in _DATA_YEARS:
                continue
            day = max(first, datetime.date(year, 1, 1))
            stop = min(last, datetime.date(year, 12, 31))
            # Only admin-declared days are skipped, so this loop is short.
            while day <= stop:
                if day not in self._overridden:
                    self._warn(day)
                    return
                if day == stop:
                    break
                day += _ONE_DAY

    def _warn(self, day: datetime.date) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        callback = self._on_beyond_data
        if callback is None:
            return
        try:
            callback(day)
        except Exception:
            # The warning is a courtesy; counting must go on regardless.
            log.exception("on_beyond_data callback failed for %s", day)


_ISO_DAY = r"\d{4}-\d{2}-\d{2}"
_LOOSE_DAY = r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
_STRICT_RANGE_SPLIT = re.compile(r"\s*\.\.\s*")
_LOOSE_RANGE_SPLIT = re.compile(r"\s*(?:\.\.|~|～|至)\s*")
_FORMAT = "expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"


class DateItemError(ValueError):
    """A day or range that cannot be read. ``reason`` is ``BAD_DATE``, ``BACKWARDS`` or
    ``TOO_LONG``; ``value`` is the item as written, ``days`` the length of a too long range."""

    BAD_DATE = "bad_date"
    BACKWARDS = "backwards"
    TOO_LONG = "too_long"

    def __init__(self, value: str, reason: str, detail: str, days: int = 0) -> None:
        super().__init__(f"{value!r}: {detail}")
        self.value, self.reason, self.days = value, reason, days


def parse_date_item(value: str, *, loose: bool = False) -> list[datetime.date]:
    """The days of one item: a day ``"2027-01-01"`` or an inclusive range ``"2027-02-10..2027-02-16"``.

    ``loose`` also reads what people type in a chat command: ``2027/1/1``, ``2027.1.1`` and ``~``,
    ``～`` or ``至`` between the ends. Raises ``DateItemError``.
    """
    day_re = _LOOSE_DAY if loose else _ISO_DAY
    parts = (_LOOSE_RANGE_SPLIT if loose else _STRICT_RANGE_SPLIT).split(value.strip())
    if len(parts) > 2 or not all(re.fullmatch(day_re, part) for part in parts):
        bad = next((part for part in parts if not re.fullmatch(day_re, part)), value) if loose else value
        raise DateItemError(bad, DateItemError.BAD_DATE, _FORMAT)
    # A chat command names the bad end; a configuration value is named whole.
    first, last = (_parse_day(part, part if loose else value) for part in (parts[0], parts[-1]))
    if last < first:
        raise DateItemError(value, DateItemError.BACKWARDS, "range ends before it starts")
    span = (last - first).days + 1
    if span > MAX_RANGE_DAYS:
        raise DateItemError(
            value, DateItemError.TOO_LONG, f"range covers {span} days, at most {MAX_RANGE_DAYS} allowed", days=span
        )
    return [first + datetime.timedelta(days=i) for i in range(span)]


def parse_date_list(values: str | Iterable[str | datetime.date]) -> frozenset[datetime.date]:
    """Parse ``"2027-01-01"`` and inclusive ranges ``"2027-02-10..2027-02-16"`` (``parse_date_item``).

    Items that are already dates (TOML's bare dates) are taken as they are. Raises ValueError
    naming the offending value.
    """
    if isinstance(values, str):
        values = [values]
    days: set[datetime.date] = set()
    for value in values:
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            days.add(value)
            continue
        if not isinstance(value, str):
            raise ValueError(f"{value!r}: expected a date string YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
        days.update(parse_date_item(value))
    return frozenset(days)


def _parse_day(text: str, name: str) -> datetime.date:
    year, month, day = (int(part) for part in re.split(r"[-/.]", text))
    try:
        return datetime.date(year, month, day)
    except ValueError as exc:
        raise DateItemError(name, DateItemError.BAD_DATE, f"{text} is not a valid date") from exc

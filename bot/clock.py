"""The one clock: every "now" in Pacebot comes from here.

Rules, tests and the console move time by shifting an injected clock, so nothing else in the
code base calls ``datetime.now()``.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class ShiftableClock:
    """Wall-clock time plus an offset that the console (when allowed) or tests can set."""

    def __init__(self, base: Clock | None = None, offset: dt.timedelta = dt.timedelta()) -> None:
        self._base = base or SystemClock()
        self.offset = offset

    def now(self) -> dt.datetime:
        return self._base.now() + self.offset

    def set_now(self, instant: dt.datetime) -> None:
        self.offset = as_utc(instant) - self._base.now()


class FrozenClock:
    """A clock that only moves when told to; for tests and replays (``jobs run --now``)."""

    def __init__(self, instant: dt.datetime) -> None:
        self._now = as_utc(instant)

    def now(self) -> dt.datetime:
        return self._now

    def set_now(self, instant: dt.datetime) -> None:
        self._now = as_utc(instant)

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta


def as_utc(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        raise ValueError("naive datetime: a timezone is required")
    return instant.astimezone(UTC)


def local_now(clock: Clock, tz: ZoneInfo) -> dt.datetime:
    return clock.now().astimezone(tz)


def local_today(clock: Clock, tz: ZoneInfo) -> dt.date:
    return local_now(clock, tz).date()

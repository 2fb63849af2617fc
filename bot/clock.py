"""The one clock: every "now" in Pacebot comes from here.

Rules, tests and the console move time by shifting an injected clock, so nothing else in the
code base calls ``datetime.now()``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from typing import Protocol
from zoneinfo import ZoneInfo

UTC = dt.UTC

# Test-only: a real ``pacebot serve`` process (fault tests with several replicas, a demo) can be
# started with its clock this many seconds ahead of (or behind) the wall clock. Every replica given
# the same value shares one clock, and the scheduler's timers fire on that clock's times. Never set
# it in production: a process started with it logs an ERROR line saying so.
TEST_CLOCK_OFFSET_ENV = "PACEBOT_TEST_CLOCK_OFFSET_SECONDS"

log = logging.getLogger(__name__)


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


class OffsetClock(ShiftableClock):
    """Wall-clock time plus a fixed offset given at start-up; the scheduler's timers follow it."""


def process_clock(environ: Mapping[str, str] = os.environ) -> ShiftableClock:
    """The clock of a process: the wall clock, or the test-only offset clock of ``TEST_CLOCK_OFFSET_ENV``."""
    raw = environ.get(TEST_CLOCK_OFFSET_ENV, "").strip()
    if not raw:
        return ShiftableClock()
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{TEST_CLOCK_OFFSET_ENV} must be a number of seconds, got {raw!r}") from None
    clock = OffsetClock(offset=dt.timedelta(seconds=seconds))
    log.error("TEST CLOCK: %s=%s is set, so this process runs %.0f s off the real time (now %s); "
              "for tests only, never in production", TEST_CLOCK_OFFSET_ENV, raw, seconds, clock.now().isoformat())
    return clock


def timer_offset(clock: Clock) -> dt.timedelta:
    """How far timers must be moved so that they fire on ``clock``'s times (zero but for an OffsetClock)."""
    return clock.offset if isinstance(clock, OffsetClock) else dt.timedelta()


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

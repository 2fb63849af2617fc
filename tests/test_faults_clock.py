"""The test-only offset clock of real processes (PACEBOT_TEST_CLOCK_OFFSET_SECONDS) and its timers."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import TEST_CLOCK_OFFSET_ENV, OffsetClock, ShiftableClock, process_clock, timer_offset
from bot.scheduler import Every, ShiftedTrigger


def test_without_the_variable_a_process_runs_on_the_real_clock_and_timers_are_not_moved(caplog):
    with caplog.at_level(logging.WARNING):
        clock = process_clock({})
    assert type(clock) is ShiftableClock and clock.offset == dt.timedelta()
    assert timer_offset(clock) == dt.timedelta()
    # A clock moved from the console (demos) does not move the timers either.
    assert timer_offset(ShiftableClock(offset=dt.timedelta(hours=3))) == dt.timedelta()
    assert caplog.records == []


def test_the_variable_shifts_the_clock_and_says_so_loudly(caplog):
    with caplog.at_level(logging.ERROR):
        clock = process_clock({TEST_CLOCK_OFFSET_ENV: "-3600.5"})
    assert isinstance(clock, OffsetClock)
    assert timer_offset(clock) == dt.timedelta(seconds=-3600.5)
    real = dt.datetime.now(dt.UTC)
    assert abs((clock.now() - real) - dt.timedelta(seconds=-3600.5)) < dt.timedelta(seconds=5)
    [record] = caplog.records
    assert record.levelno == logging.ERROR and "never in production" in record.getMessage()


def test_a_bad_value_stops_the_process():
    with pytest.raises(ValueError, match=TEST_CLOCK_OFFSET_ENV):
        process_clock({TEST_CLOCK_OFFSET_ENV: "tomorrow"})


def test_a_shifted_timer_fires_when_the_shifted_clock_reaches_the_schedule():
    tz = dt.UTC
    trigger: IntervalTrigger = Every(15).trigger(tz)
    offset = dt.timedelta(hours=5, minutes=59, seconds=40)  # real 03:00:00 reads 08:59:40
    real_now = dt.datetime(2027, 3, 2, 3, 0, tzinfo=tz)
    fire = ShiftedTrigger(trigger, offset).get_next_fire_time(None, real_now)
    assert fire is not None and fire + offset == dt.datetime(2027, 3, 2, 9, 0, tzinfo=tz)
    again = ShiftedTrigger(trigger, offset).get_next_fire_time(fire, fire)
    assert again is not None and again + offset == dt.datetime(2027, 3, 2, 9, 15, tzinfo=tz)

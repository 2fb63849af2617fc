"""动作健康度 (SPEC §8.2): the process metrics' windows, value types, rounding and thresholds.

Storage counts and sums with set-based SQL; this module turns those sums into figures, exactly:

* every window is a half-open span of instants ending at the as-of moment, ``(as_of - span, as_of]``,
  so "30 days" is 30×24 h to the minute, not 30 calendar dates;
* a mean is computed from an integer sum and a count, rounded half up (2 decimals for touch depth,
  1 for hours), so no float drift decides a threshold;
* a figure over nothing is ``None`` (shown as "—"), never a division by zero.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.enums import Channel

TOUCH_DEPTH_WINDOW = dt.timedelta(days=30)
CROSSING_COHORT_END = dt.timedelta(days=7)  # cohort entries in (as_of - 37 d, as_of - 7 d]
CROSSING_COHORT_START = dt.timedelta(days=37)
CROSSING_WITHIN = dt.timedelta(days=7)  # crossed: reached the target within 7×24 h of the entry
RESOLUTION_WINDOW = dt.timedelta(days=30)
OPEN_TOO_LONG = dt.timedelta(hours=48)
TREND_DAYS = 14
TOP_OVERDUE = 5
# 触达深度: the channels that count; 其他 does not.
DEPTH_CHANNELS: tuple[Channel, ...] = (Channel.PHONE, Channel.WECHAT, Channel.VISIT, Channel.EMAIL)

TOUCH_DEPTH_GOOD = Decimal(3)  # ≥ 3 good
TOUCH_DEPTH_COACHING = Decimal(2)  # < 2 coaching suggested
CROSSING_HEALTHY = Decimal("0.45")  # > 45 % healthy
CROSSING_GAP = Decimal("0.30")  # < 30 % a systemic gap in needs discovery
RESOLUTION_BENCHMARK = Decimal(18)  # ≤ 18 h benchmark
RESOLUTION_REVIEW = Decimal(48)  # > 48 h process review

_TWO = Decimal("0.01")
_ONE = Decimal("0.1")
_FOUR = Decimal("0.0001")


class Health(enum.StrEnum):
    """How a figure stands against its thresholds."""

    GOOD = "good"
    WATCH = "watch"  # between the two thresholds
    POOR = "poor"
    NONE = "none"  # no figure (nothing to measure)


def _quotient(numerator: int, denominator: int, places: Decimal) -> Decimal | None:
    if denominator == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(places, rounding=ROUND_HALF_UP)


def touch_depth_window(as_of: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """(start, end]: touches that count for touch depth."""
    return as_of - TOUCH_DEPTH_WINDOW, as_of


def crossing_cohort_window(as_of: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """(start, end]: first entries into the crossing's first stage that form the cohort."""
    return as_of - CROSSING_COHORT_START, as_of - CROSSING_COHORT_END


def resolution_window(as_of: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """(start, end]: first substantive replies that count for obstacle resolution."""
    return as_of - RESOLUTION_WINDOW, as_of


def trend_days(as_of_day: dt.date, days: int = TREND_DAYS) -> list[dt.date]:
    """The local days before the as-of day, oldest first (the as-of day itself is not over yet)."""
    return [as_of_day - dt.timedelta(days=n) for n in range(days, 0, -1)]


@dataclass(frozen=True)
class TouchDepth:
    """触达深度指数: distinct channels per touched customer, averaged."""

    channels: int = 0  # sum over the customers of their distinct channels
    customers: int = 0
    below_2: tuple[str, ...] = ()  # customers under 2 channels (coaching)

    @property
    def value(self) -> Decimal | None:
        return _quotient(self.channels, self.customers, _TWO)

    @property
    def health(self) -> Health:
        value = self.value
        if value is None:
            return Health.NONE
        if value >= TOUCH_DEPTH_GOOD:
            return Health.GOOD
        return Health.POOR if value < TOUCH_DEPTH_COACHING else Health.WATCH

    def to_json(self) -> dict[str, Any]:
        return {"value": _number(self.value), "customers": self.customers, "below_2": list(self.below_2)}


@dataclass(frozen=True)
class StageCrossing:
    """阶段穿越率: share of the cohort that reached the target stage within 7×24 h."""

    cohort: int = 0
    crossed: int = 0

    @property
    def value(self) -> Decimal | None:
        return _quotient(self.crossed, self.cohort, _FOUR)

    @property
    def health(self) -> Health:
        value = self.value
        if value is None:
            return Health.NONE
        if value > CROSSING_HEALTHY:
            return Health.GOOD
        return Health.POOR if value < CROSSING_GAP else Health.WATCH

    def to_json(self) -> dict[str, Any]:
        return {"value": _number(self.value), "cohort": self.cohort, "crossed": self.crossed}


@dataclass(frozen=True)
class OpenRequest:
    """A 需跨部门支持 request still without a substantive reply."""

    customer: str
    owner: str
    requested_at: dt.datetime
    hours: Decimal  # waited so far, one decimal

    def to_json(self) -> dict[str, Any]:
        return {"customer": self.customer, "owner": self.owner, "hours": float(self.hours)}


def hours_between(start: dt.datetime, end: dt.datetime) -> Decimal:
    return _quotient(int((end - start).total_seconds()), 3600, _ONE) or Decimal(0)


@dataclass(frozen=True)
class ObstacleResolution:
    """障碍解决时效: mean calendar hours from marking to the first substantive reply."""

    seconds: int = 0  # summed over the resolved requests
    resolved: int = 0
    open_over_48h: tuple[OpenRequest, ...] = ()

    @property
    def value(self) -> Decimal | None:
        return _quotient(self.seconds, self.resolved * 3600, _ONE)

    @property
    def health(self) -> Health:
        value = self.value
        if value is None:
            return Health.NONE
        if value <= RESOLUTION_BENCHMARK:
            return Health.GOOD
        return Health.POOR if value > RESOLUTION_REVIEW else Health.WATCH

    def to_json(self) -> dict[str, Any]:
        return {"value": _number(self.value), "resolved": self.resolved,
                "open_over_48h": [r.to_json() for r in self.open_over_48h]}


@dataclass(frozen=True)
class DayCompletion:
    """销售动作完成率 of one local day: next actions due that day, and those done on time."""

    day: dt.date
    due: int = 0
    done_on_time: int = 0

    @property
    def rate(self) -> Decimal | None:
        return _quotient(self.done_on_time, self.due, _FOUR)

    def to_json(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "due": self.due, "done_on_time": self.done_on_time}


@dataclass(frozen=True)
class Overdue:
    """超时未处理: a customer whose latest next action is past due with no touch since."""

    customer: str
    owner: str
    due: dt.date
    days: int

    def to_json(self) -> dict[str, Any]:
        return {"customer": self.customer, "owner": self.owner, "days": self.days}


def overdue_order(item: Overdue) -> tuple[int, dt.date, str]:
    """Most days overdue first; ties by due date, then name."""
    return (-item.days, item.due, item.customer)


@dataclass(frozen=True)
class RepFigures:
    code: str
    name: str
    touch_depth: TouchDepth = TouchDepth()
    stage_crossing: StageCrossing = StageCrossing()
    obstacle_resolution: ObstacleResolution = ObstacleResolution()

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "touch_depth": self.touch_depth.to_json(),
                "stage_crossing": self.stage_crossing.to_json(),
                "obstacle_resolution_hours": self.obstacle_resolution.to_json()}


@dataclass(frozen=True)
class StageCount:
    """各阶段客户分布: one stage and its customers (stages in pipeline order)."""

    pipeline: str
    stage: str
    customers: int


@dataclass(frozen=True)
class TeamFigures:
    """One team's figures (or the organisation's, with ``key`` ``"*"``)."""

    key: str
    name: str
    touch_depth: TouchDepth = TouchDepth()
    stage_crossing: StageCrossing = StageCrossing()
    obstacle_resolution: ObstacleResolution = ObstacleResolution()
    action_completion: tuple[DayCompletion, ...] = ()
    overdue_top5: tuple[Overdue, ...] = ()
    reps: tuple[RepFigures, ...] = ()
    stages: tuple[StageCount, ...] = ()
    customers: int = 0  # live customers owned by the team's members

    @property
    def has_anything(self) -> bool:
        """A team with no customers and no due actions has nothing to report."""
        return self.customers > 0 or any(day.due for day in self.action_completion)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "touch_depth": self.touch_depth.to_json(),
            "stage_crossing": self.stage_crossing.to_json(),
            "obstacle_resolution_hours": self.obstacle_resolution.to_json(),
            "action_completion": [day.to_json() for day in self.action_completion],
            "overdue_top5": [item.to_json() for item in self.overdue_top5],
            "reps": [rep.to_json() for rep in self.reps],
        }


@dataclass(frozen=True)
class Figures:
    """Every figure as of one instant: per team (with their reps) and for the organisation."""

    as_of: dt.datetime
    teams: tuple[TeamFigures, ...] = ()
    org: TeamFigures = field(default_factory=lambda: TeamFigures("*", "全公司"))
    previous: Figures | None = None  # the health metrics at an earlier instant, to compare with

    def team(self, key: str) -> TeamFigures | None:
        return next((team for team in self.teams if team.key == key), None)

    def to_json(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "teams": [team.to_json() for team in self.teams]}


def change(current: Decimal | None, previous: Decimal | None) -> Decimal | None:
    """The change since the previous week, or None when either side has no figure."""
    if current is None or previous is None:
        return None
    return current - previous


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)

"""Process rules and alert thresholds as one value (the ``[rules]`` configuration section)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_STALL_PHRASES = (
    "再约时间", "等领导回复", "再考虑一下", "客户在忙", "没接电话", "已读不回", "下次再说",
    "回头再说", "再等等", "没回复", "不方便接", "改天再聊", "暂时不考虑",
)


@dataclass(frozen=True)
class RuleThresholds:
    """Process rules and alert thresholds (SPEC §3–§6); admins can change them with /规则."""

    stall_phrases: tuple[str, ...] = DEFAULT_STALL_PHRASES
    cold_hours: int = 72  # 标黄: no touch for this long (new leads: since creation)
    quote_stage: str = "方案报价"  # the stage whose time is counted in working days
    quote_working_days: int = 5  # 标红: in the quote stage longer than this
    low_activity_ratio: float = 0.7  # weekly distinct customers below this share of the team mean
    obstacle_slow_hours: int = 48  # cross-department obstacle unanswered longer than this
    obstacle_reminder_hours: int = 24  # remind the rep of obstacle evidence this often
    alert_ignore_hours: int = 48  # an alert not acted on within this is counted as ignored
    reward_every: int = 3  # every N effective touches unlock one material
    # Admin-declared days beyond the holiday library: "2027-01-01" or "2027-02-10..2027-02-16".
    holidays: tuple[str, ...] = ()
    workdays: tuple[str, ...] = ()

"""/规则 设置: which thresholds an admin may set in chat, their names, and what values are sane.

Pure: parses and validates one setting; ``with_overrides`` applies stored settings to the
configured thresholds (a stored value that no longer validates is ignored, never half-applied).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.rules.thresholds import RuleThresholds


@dataclass(frozen=True)
class RuleSetting:
    field: str
    label: str  # the Chinese name admins type
    kind: str  # "int" | "ratio" | "text" | "phrases"
    low: float = 0
    high: float = 0
    unit: str = ""


SETTINGS: tuple[RuleSetting, ...] = (
    RuleSetting("cold_hours", "冷却小时", "int", 1, 24 * 90, "小时"),
    RuleSetting("quote_working_days", "报价工作日", "int", 1, 120, "个工作日"),
    RuleSetting("quote_stage", "报价阶段", "text"),
    RuleSetting("low_activity_ratio", "低活跃比例", "ratio", 0.01, 1.0),
    RuleSetting("obstacle_slow_hours", "障碍超时小时", "int", 1, 24 * 30, "小时"),
    RuleSetting("obstacle_reminder_hours", "障碍提醒小时", "int", 1, 24 * 14, "小时"),
    RuleSetting("alert_ignore_hours", "预警忽略小时", "int", 1, 24 * 30, "小时"),
    RuleSetting("reward_every", "奖励间隔", "int", 1, 100, "次有效触达"),
    RuleSetting("stall_phrases", "停滞短语", "phrases"),
)
_BY_NAME: dict[str, RuleSetting] = {s.label: s for s in SETTINGS} | {s.field: s for s in SETTINGS}
_PHRASE_SPLIT = re.compile(r"[、,,;;/\s]+")


class RuleSettingError(ValueError):
    """``code``: unknown_setting | not_a_number | out_of_range | empty."""

    def __init__(self, code: str, setting: RuleSetting | None = None, value: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.setting = setting
        self.value = value


def find_setting(name: str) -> RuleSetting:
    setting = _BY_NAME.get(name.strip())
    if setting is None:
        raise RuleSettingError("unknown_setting", value=name)
    return setting


def parse_value(setting: RuleSetting, raw: str) -> Any:
    """The value to store, or ``RuleSettingError`` (negative, absurd, not a number, empty)."""
    text = raw.strip()
    if not text:
        raise RuleSettingError("empty", setting)
    if setting.kind == "text":
        return text[:64]
    if setting.kind == "phrases":
        phrases = tuple(dict.fromkeys(p for p in _PHRASE_SPLIT.split(text) if p))
        if not phrases:
            raise RuleSettingError("empty", setting)
        return [p[:32] for p in phrases[:50]]
    percent = setting.kind == "ratio" and text.endswith(("%", "%"))
    number_text = text.removesuffix("%").removesuffix("%")
    try:
        number = float(number_text)
    except ValueError:
        raise RuleSettingError("not_a_number", setting, text) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise RuleSettingError("not_a_number", setting, text)
    if setting.kind == "ratio":
        if percent or number > 1:
            number /= 100
        if not setting.low <= number <= setting.high:
            raise RuleSettingError("out_of_range", setting, text)
        return round(number, 4)
    if not number.is_integer():
        raise RuleSettingError("not_a_number", setting, text)
    if not setting.low <= number <= setting.high:
        raise RuleSettingError("out_of_range", setting, text)
    return int(number)


def current_value(thresholds: RuleThresholds, setting: RuleSetting) -> Any:
    value = getattr(thresholds, setting.field)
    return list(value) if isinstance(value, tuple) else value


def with_overrides(thresholds: RuleThresholds, overrides: Mapping[str, Any]) -> RuleThresholds:
    changes: dict[str, Any] = {}
    for field_name, value in overrides.items():
        setting = _BY_NAME.get(field_name)
        if setting is None:
            continue
        try:
            raw = "、".join(value) if isinstance(value, list) else str(value)
            parsed = parse_value(setting, raw)
        except RuleSettingError:
            continue
        changes[setting.field] = tuple(parsed) if isinstance(parsed, list) else parsed
    return dataclasses.replace(thresholds, **changes) if changes else thresholds

"""Small formatting helpers shared by handlers (dates the way people say them)."""

from __future__ import annotations

import datetime as dt

from domain.enums import EvidenceKind
from handlers.texts import EVIDENCE_KIND_NAMES

_WEEKDAYS = "一二三四五六日"


def weekday_name(day: dt.date) -> str:
    return "周" + _WEEKDAYS[day.weekday()]


def month_day(day: dt.date) -> str:
    """"12月2日"."""
    return f"{day.month}月{day.day}日"


def format_due(day: dt.date, today: dt.date) -> str:
    """"12月2日 周三", with 今天/明天 where that is clearer."""
    label = f"{month_day(day)} {weekday_name(day)}"
    if day.year != today.year:
        label = f"{day.year}年{label}"
    delta = (day - today).days
    if delta == 0:
        return f"今天 {label}"
    if delta == 1:
        return f"明天 {label}"
    return label


def format_ago(instant: dt.datetime, now: dt.datetime) -> str:
    seconds = (now - instant).total_seconds()
    if seconds < 3600:
        return f"{max(1, int(seconds // 60))}分钟前"
    if seconds < 86400:
        return f"{int(seconds // 3600)}小时前"
    return f"{int(seconds // 86400)}天前"


def evidence_kind_name(kind: EvidenceKind | str) -> str:
    """照片 / 录音 / 视频 / 文件 / 文字 for an evidence kind (its value if unknown)."""
    value = kind.value if isinstance(kind, EvidenceKind) else kind
    return EVIDENCE_KIND_NAMES.get(value, value)

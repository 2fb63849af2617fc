"""有效触达: whether a touch counts as an effective contact. A pure rule."""

from __future__ import annotations

from dataclasses import dataclass

from domain.enums import Channel


@dataclass(frozen=True)
class EffectiveThresholds:
    phone_minutes: int = 2
    visit_minutes: int = 15


def meets_channel_threshold(
    channel: Channel, duration_minutes: int | None, proposal: bool, thresholds: EffectiveThresholds
) -> bool:
    """Phone ≥ 2 min, face-to-face ≥ 15 min, WeChat/e-mail carrying a customised proposal."""
    if channel is Channel.PHONE:
        return duration_minutes is not None and duration_minutes >= thresholds.phone_minutes
    if channel is Channel.VISIT:
        return duration_minutes is not None and duration_minutes >= thresholds.visit_minutes
    if channel in (Channel.WECHAT, Channel.EMAIL):
        return proposal
    return False


def is_effective(
    channel: Channel, duration_minutes: int | None, proposal: bool, evidence_count: int, thresholds: EffectiveThresholds
) -> bool:
    """An effective touch meets its channel's threshold and has at least one evidence item."""
    return evidence_count > 0 and meets_channel_threshold(channel, duration_minutes, proposal, thresholds)


def shortfall(channel: Channel, duration_minutes: int | None, proposal: bool, thresholds: EffectiveThresholds) -> str:
    """Why the channel threshold is not met, in Chinese ("" when it is)."""
    if meets_channel_threshold(channel, duration_minutes, proposal, thresholds):
        return ""
    if channel is Channel.PHONE:
        return f"电话需≥{thresholds.phone_minutes}分钟"
    if channel is Channel.VISIT:
        return f"面访需≥{thresholds.visit_minutes}分钟"
    if channel in (Channel.WECHAT, Channel.EMAIL):
        return "微信/邮件需附带定制方案"
    return "未识别渠道(电话/微信/面访/邮件)"

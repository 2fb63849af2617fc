"""Which platforms run: the console always (unless disabled), chat platforms when configured."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Config
from bot.platforms.base import Platform
from bot.platforms.console.adapter import ConsolePlatform
from bot.platforms.dingtalk.adapter import DingTalkPlatform
from bot.platforms.wecom.adapter import WeComPlatform
from storage.media import MediaStore


def build_platforms(
    config: Config,
    *,
    media: MediaStore,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    clock: Clock | None = None,
) -> dict[str, Platform]:
    platforms: dict[str, Platform] = {"console": ConsolePlatform()}
    if config.wecom.enabled:
        platforms["wecom"] = WeComPlatform(config.wecom, media=media, max_media_bytes=config.media.max_bytes)
    # --- DingTalk: counts its metered API calls in the database, so it gets sessions and the clock
    if config.dingtalk.enabled:
        platforms["dingtalk"] = DingTalkPlatform(
            config.dingtalk, media=media, max_media_bytes=config.media.max_bytes,
            sessions=sessions, clock=clock, tz=config.tz,
        )
    # --- end DingTalk
    return platforms

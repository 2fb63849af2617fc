"""Which platforms run: the console always (unless disabled), chat platforms when configured."""

from __future__ import annotations

from bot.config import Config
from bot.platforms.base import Platform
from bot.platforms.console.adapter import ConsolePlatform
from bot.platforms.wecom.adapter import WeComPlatform
from storage.media import MediaStore


def build_platforms(config: Config, *, media: MediaStore) -> dict[str, Platform]:
    platforms: dict[str, Platform] = {"console": ConsolePlatform()}
    if config.wecom.enabled:
        platforms["wecom"] = WeComPlatform(config.wecom, media=media, max_media_bytes=config.media.max_bytes)
    return platforms

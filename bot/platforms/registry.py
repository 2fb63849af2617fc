"""Which platforms run: the console always (unless disabled), chat platforms when configured."""

from __future__ import annotations

from aiohttp import web

from bot.clock import Clock
from bot.config import Config
from bot.platforms.base import Platform
from storage.media import MediaStore


def build_platforms(config: Config, *, clock: Clock, media: MediaStore) -> dict[str, Platform]:
    from bot.platforms.console.adapter import ConsolePlatform

    platforms: dict[str, Platform] = {"console": ConsolePlatform()}
    # --- WeCom
    if config.wecom.enabled:
        from bot.platforms.wecom.adapter import WeComPlatform

        platforms["wecom"] = WeComPlatform(config.wecom, media=media, max_media_bytes=config.media.max_bytes)
    # --- end WeCom
    return platforms


def add_platform_routes(app: web.Application, config: Config) -> None:
    """Mount each enabled platform's HTTP endpoints (callbacks, the console page)."""
    if config.console.enabled:
        from bot.platforms.console.routes import add_routes

        add_routes(app)
    # --- WeCom
    if config.wecom.enabled:
        from bot.platforms.wecom.routes import add_routes as add_wecom_routes

        add_wecom_routes(app, config.wecom)
    # --- end WeCom

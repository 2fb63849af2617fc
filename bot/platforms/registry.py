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
    return platforms


def add_platform_routes(app: web.Application, config: Config) -> None:
    """Mount each enabled platform's HTTP endpoints (callbacks, the console page)."""
    if config.console.enabled:
        from bot.platforms.console.routes import add_routes

        add_routes(app)

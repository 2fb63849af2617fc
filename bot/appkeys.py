"""The aiohttp application keys shared by the app factory, platform routes and webhooks."""

from __future__ import annotations

from aiohttp import web

from bot.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)

"""Machine-facing HTTP inputs (webhooks from other systems), as opposed to chat platforms.

Each webhook authenticates its caller, validates the body, and feeds a ``SYSTEM`` event into the
durable inbox before answering; the work happens in a handler, like any other event.
"""

from __future__ import annotations

from aiohttp import web

from bot.config import Config
from bot.webhooks import feedback


def add_webhook_routes(app: web.Application, config: Config) -> None:
    feedback.add_routes(app, config)

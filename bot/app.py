"""The aiohttp application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.appkeys import RUNTIME
from bot.bootstrap import build_runtime
from bot.clock import Clock
from bot.config import Config
from bot.platforms.base import Platform
from bot.platforms.console import routes as console_routes
from bot.platforms.wecom import routes as wecom_routes
from bot.webhooks import add_webhook_routes

log = logging.getLogger(__name__)

def create_app(
    config: Config,
    *,
    clock: Clock | None = None,
    extra_platforms: dict[str, Platform] | None = None,
    workers: bool = True,
) -> web.Application:
    """Build the web application; the runtime starts and stops with it (``cleanup_ctx``)."""
    # Uploads through the console may be as large as the media limit; platform callbacks check
    # their own, much smaller, body limit.
    app = web.Application(client_max_size=max(config.server.max_body_bytes, config.media.max_bytes + 65_536))

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        runtime = await build_runtime(config, clock=clock, extra_platforms=extra_platforms)
        app[RUNTIME] = runtime
        await console_routes.restore_clock(runtime)
        await runtime.start(workers=workers)
        # Everything built so far lives as long as the process: keep it out of the cyclic garbage
        # collector's full passes, which otherwise pause every request now and then.
        gc.freeze()
        log.info("Pacebot started with platforms: %s", ", ".join(runtime.platforms))
        yield
        await runtime.stop()

    app.cleanup_ctx.append(runtime_ctx)
    app.router.add_get("/healthz", healthz)
    add_platform_routes(app, config)
    add_webhook_routes(app, config)
    return app


def add_platform_routes(app: web.Application, config: Config) -> None:
    """Mount each enabled platform's HTTP endpoints (callbacks, the console page)."""
    if config.console.enabled:
        console_routes.add_routes(app)
    if config.wecom.enabled:
        wecom_routes.add_routes(app, config.wecom)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    from sqlalchemy import text

    try:
        async with runtime.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # the database is the one dependency that makes us unhealthy
        log.error("health check: database unavailable: %s", exc)
        return web.json_response({"status": "unhealthy", "database": "unavailable"}, status=503)
    # --- throughput: backlog gauges (inbox and outbox size, oldest item's age)
    queues = {**await runtime.inbox.metrics(), **await runtime.outbox.metrics()}
    return web.json_response({"status": "ok", "platforms": sorted(runtime.platforms), "queues": queues})

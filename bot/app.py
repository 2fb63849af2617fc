"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.appkeys import RUNTIME
from bot.bootstrap import build_runtime
from bot.clock import Clock
from bot.config import Config
from bot.observability import CONTENT_TYPE, METRICS
from bot.platforms.base import Platform
from bot.platforms.console import routes as console_routes
from bot.platforms.dingtalk import routes as dingtalk_routes
from bot.platforms.wecom import routes as wecom_routes
from bot.webhooks import add_webhook_routes
from storage import monitoring

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
    app[_WORKERS] = workers
    add_operations_routes(app, config)
    add_platform_routes(app, config)
    add_webhook_routes(app, config)
    return app


def add_platform_routes(app: web.Application, config: Config) -> None:
    """Mount each enabled platform's HTTP endpoints (callbacks, the console page)."""
    if config.console.enabled:
        console_routes.add_routes(app)
    if config.wecom.enabled:
        wecom_routes.add_routes(app, config.wecom)
    if config.dingtalk.enabled:
        # HTTP mode: the callback route; Stream mode: the connection, started after the runtime.
        dingtalk_routes.add_routes(app, config.dingtalk)


# --- operations: /healthz, /readyz, /metrics ----------------------------------------------------
_SHUTTING_DOWN = web.AppKey("shutting_down", dict[str, bool])
_WORKERS = web.AppKey("workers_expected", bool)
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def add_operations_routes(app: web.Application, config: Config) -> None:
    app[_SHUTTING_DOWN] = {"now": False}

    async def on_shutdown(app: web.Application) -> None:
        # A load balancer polling /readyz stops sending traffic while requests drain.
        app[_SHUTTING_DOWN]["now"] = True

    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if config.metrics.enabled:
        app.router.add_get("/metrics", _metrics_handler(metrics_networks(config.metrics.allow)))


def _task_state(worker: Any) -> str:
    """running / stopped for a poller (its loop task), tolerant of how the worker is built."""
    poller = getattr(worker, "poller", worker)
    task = getattr(poller, "_loop_task", None)
    if task is None:
        return "stopped"
    return "running" if not task.done() else "stopped"


async def _database_state(runtime: Any) -> str:
    try:
        async with asyncio.timeout(5):
            async with runtime.sessions() as session:
                await monitoring.database_answers(session)
    except Exception as exc:  # the database is the one dependency that makes us unhealthy
        log.error("health check: database unavailable: %s", type(exc).__name__)
        return "unavailable"
    return "ok"


async def healthz(request: web.Request) -> web.Response:
    """Database, workers and scheduler state; 503 when the database or a started worker is down."""
    runtime = request.app[RUNTIME]
    database = await _database_state(runtime)
    workers = {"inbox": _task_state(runtime.inbox), "outbox": _task_state(runtime.outbox)}
    if not runtime.config.scheduler.enabled:
        scheduler = "disabled"
    else:
        scheduler = "running" if runtime.scheduler is not None else "stopped"
    workers_expected = request.app[_WORKERS] and runtime.started
    healthy = database == "ok" and (not workers_expected or all(v == "running" for v in workers.values()))
    body: dict[str, object] = {
        "status": "ok" if healthy else "unhealthy",
        "database": database,
        "workers": workers,
        "scheduler": scheduler,
        "platforms": sorted(runtime.platforms),
    }
    if database == "ok":  # the backlog: inbox and outbox size and their oldest item's age
        body["queues"] = {**await runtime.inbox.metrics(), **await runtime.outbox.metrics()}
    return web.json_response(body, status=200 if healthy else 503)


async def readyz(request: web.Request) -> web.Response:
    """For a load balancer: 200 while this replica takes traffic, 503 while starting or stopping."""
    runtime = request.app.get(RUNTIME)
    if runtime is None or request.app[_SHUTTING_DOWN]["now"] or not runtime.started:
        return web.json_response({"ready": False}, status=503)
    if await _database_state(runtime) != "ok":
        return web.json_response({"ready": False, "database": "unavailable"}, status=503)
    return web.json_response({"ready": True})


def remote_allowed(remote: str | None, networks: tuple[Any, ...]) -> bool:
    """Whether a peer address is loopback or inside one of the allowed networks."""
    try:
        address = ipaddress.ip_address((remote or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == network.version and address in network for network in networks)


def metrics_networks(allow: tuple[str, ...]) -> tuple[Any, ...]:
    return (*_LOOPBACK, *(ipaddress.ip_network(n, strict=False) for n in allow))


def _metrics_handler(networks: tuple[Any, ...]) -> Any:
    async def metrics(request: web.Request) -> web.Response:
        if not remote_allowed(request.remote, networks):
            raise web.HTTPForbidden(text="metrics are served to this machine and to [metrics] allow only")
        runtime = request.app[RUNTIME]
        snapshot = None
        try:
            async with asyncio.timeout(10):
                async with runtime.sessions() as session:
                    snapshot = await monitoring.snapshot(session, runtime.clock.now())
        except Exception as exc:
            log.error("metrics: database unavailable: %s", type(exc).__name__)
        METRICS.update(snapshot)
        return web.Response(body=METRICS.render(), headers={"Content-Type": CONTENT_TYPE})

    return metrics


# --- end operations -------------------------------------------------------------------------------

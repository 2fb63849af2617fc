"""The assembled runtime: storage, platforms, dispatcher, inbox and outbox, with a lifecycle.

``create_app`` (HTTP) and the CLI (``pacebot jobs run``, ``pacebot demo``) both build one of these,
so there is exactly one way the parts are wired together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.addressing import ReplyRouter
from bot.clock import Clock, ShiftableClock
from bot.config import Config
from bot.dispatcher import Dispatcher
from bot.inbox import Inbox
from bot.outbox import OutboxWorker
from bot.platforms.base import Platform
from bot.scheduler import JobScheduler, RecordingDispatcher
from storage import migrate
from storage.db import WalCheckpointer, create_engine, session_factory
from storage.media import MediaStore

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: Config
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    media: MediaStore
    dispatcher: Dispatcher
    platforms: dict[str, Platform]
    inbox: Inbox
    outbox: OutboxWorker
    started: bool = field(default=False)
    checkpointer: WalCheckpointer | None = None  # SQLite only
    # --- scheduler (bot/scheduler.py): timers start with the workers, unless disabled ---
    scheduler: JobScheduler | None = None

    async def start(self, *, workers: bool = True, scheduler: bool = True) -> None:
        if self.checkpointer is not None:
            self.checkpointer.start()
        for platform in self.platforms.values():
            await platform.start()
        if workers:
            self.inbox.poller.start()
            self.outbox.poller.start()
        if workers and scheduler and self.config.scheduler.enabled:
            self.scheduler = JobScheduler(self)
            await self.scheduler.start()
        self.started = True

    async def stop(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        # --- end scheduler ---
        await self.inbox.poller.stop()
        await self.inbox.drain()
        await self.outbox.poller.stop()
        for platform in self.platforms.values():
            await platform.close()
        await self.engine.dispose()
        if self.checkpointer is not None and self.started:
            await self.checkpointer.stop()


async def build_runtime(
    config: Config, *, clock: Clock | None = None, extra_platforms: dict[str, Platform] | None = None
) -> Runtime:
    from bot.platforms.registry import build_platforms
    from handlers import build_dispatcher

    clock = clock or ShiftableClock()
    # On SQLite the service checkpoints the WAL itself, off the request path (see WalCheckpointer).
    checkpointer = WalCheckpointer(config.storage.url) if WalCheckpointer.wanted(config.storage.url) else None
    engine = create_engine(
        config.storage.url,
        sqlite_synchronous=config.storage.sqlite_synchronous,
        echo=config.storage.echo_sql,
        sqlite_autocheckpoint=checkpointer is None,
    )
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    # --- libraries: seed the shipped script packs, obstacle responses and competitors (insert only)
    from storage.library_seed import ensure_library

    async with sessions() as session, session.begin():
        await ensure_library(session, clock.now())
    # --- end libraries
    media = MediaStore(
        config.data_path / "media",
        max_image_pixels=config.media.max_image_pixels,
        max_bytes=config.media.max_bytes,
        thumb_size=config.media.thumb_size,
    )
    platforms = build_platforms(config, clock=clock, media=media)
    platforms.update(extra_platforms or {})
    dispatcher = build_dispatcher()
    replies = ReplyRouter(platforms, preference=["wecom", "dingtalk"])
    outbox = OutboxWorker(sessions=sessions, platforms=platforms, clock=clock, config=config.outbox)
    inbox = Inbox(
        sessions=sessions,
        dispatcher=RecordingDispatcher(dispatcher),  # scheduler: processed schedule events leave a JobRun
        replies=replies,
        platforms=platforms,
        clock=clock,
        config=config,
        media=media,
        on_replies_queued=outbox.wake,
    )
    if config.org.directory:
        from bot.config import ConfigError
        from storage.org import DirectoryError, load_directory_file

        try:
            async with sessions() as session, session.begin():
                await load_directory_file(session, config.org.directory, now=clock.now())
        except DirectoryError as exc:
            await engine.dispose()
            raise ConfigError(f"org.directory: {exc}") from exc
    return Runtime(
        config=config,
        clock=clock,
        engine=engine,
        sessions=sessions,
        media=media,
        dispatcher=dispatcher,
        platforms=platforms,
        inbox=inbox,
        outbox=outbox,
        checkpointer=checkpointer,
    )

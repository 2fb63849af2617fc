"""The assembled runtime: storage, platforms, dispatcher, inbox and outbox, with a lifecycle.

``bot.bootstrap.build_runtime`` builds one (for ``create_app`` and the CLI alike), so there is
exactly one way the parts are wired together. This module knows no platform adapter, so the
adapters' own routes can reach the runtime without reaching each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import Config
from bot.dispatcher import Dispatcher
from bot.inbox import Inbox
from bot.outbox import OutboxWorker
from bot.platforms.base import Platform
from bot.scheduler import JobScheduler
from storage.db import WalCheckpointer
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

    @property
    def job_names(self) -> list[str]:
        return self.dispatcher.job_names

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

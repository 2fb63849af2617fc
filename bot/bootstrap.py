"""Building the runtime: storage migrated, libraries seeded, platforms, dispatcher, inbox, outbox."""

from __future__ import annotations

from bot.addressing import ReplyRouter
from bot.clock import Clock, process_clock
from bot.config import Config, ConfigError
from bot.dispatcher import build_dispatcher
from bot.inbox import Inbox
from bot.outbox import OutboxWorker
from bot.platforms.base import Platform
from bot.platforms.registry import build_platforms
from bot.runtime import Runtime
from storage import migrate
from storage.db import WalCheckpointer, create_engine, session_factory
from storage.library_seed import ensure_library
from storage.media import MediaStore
from storage.org import DirectoryError, load_directory_file


async def build_runtime(
    config: Config, *, clock: Clock | None = None, extra_platforms: dict[str, Platform] | None = None
) -> Runtime:
    clock = clock or process_clock()
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
    async with sessions() as session, session.begin():
        await ensure_library(session, clock.now())
    # --- end libraries
    media = MediaStore(
        config.data_path / "media",
        max_image_pixels=config.media.max_image_pixels,
        max_bytes=config.media.max_bytes,
        thumb_size=config.media.thumb_size,
        max_decoded_bytes=config.media.max_decoded_bytes,
        decode_concurrency=config.media.decode_concurrency,
    )
    platforms = build_platforms(config, media=media, sessions=sessions, clock=clock)
    platforms.update(extra_platforms or {})
    dispatcher = build_dispatcher()
    replies = ReplyRouter(platforms, preference=["wecom", "dingtalk"])
    outbox = OutboxWorker(
        sessions=sessions, platforms=platforms, clock=clock, config=config.outbox, replies=replies, tz=config.tz
    )
    inbox = Inbox(
        sessions=sessions,
        dispatcher=dispatcher,
        replies=replies,
        platforms=platforms,
        clock=clock,
        config=config,
        media=media,
        on_replies_queued=outbox.wake,
        on_failed=outbox.report_soon,
    )
    if config.org.directory:
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

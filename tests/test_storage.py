"""Storage behaviour on SQLite always, and on PostgreSQL when PACEBOT_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from domain.enums import Channel
from storage import customers as customer_store
from storage import inbox as inbox_store
from storage import migrate
from storage import outbox as outbox_store
from storage import touches as touch_store
from storage.db import create_engine, session_factory, transaction
from storage.migrate import alembic_config, upgrade
from storage.models import InboxItem, Member, Touch
from storage.org import load_directory_file
from tests.conftest import ORG_SMALL, START, Console, cards_of, make_config, texts_of
from tests.migrated import alembic_only
from tests.pg import POSTGRES_URL, SKIP_REASON, requires_postgres, scratch_database
from tests.seed import add_customer

NOW = START.astimezone(dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/storage.db"
        return
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    async with scratch_database() as url:
        yield url


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    await upgrade(engine)
    factory = session_factory(engine)
    async with transaction(factory) as session:
        await load_directory_file(session, ORG_SMALL, now=NOW)
    yield factory
    await engine.dispose()


async def test_migrations_go_down_and_up_again(database_url):
    engine = create_engine(database_url)
    await upgrade(engine)

    def down_and_up(connection) -> None:
        cfg = alembic_config(database_url)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "base")
        command.upgrade(cfg, "head")

    async with engine.begin() as connection:
        await connection.run_sync(down_and_up)
    async with engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(Member)) == 0
    await engine.dispose()


def test_the_recorded_head_revision_is_alembics_head():
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert scripts.get_heads() == [migrate.HEAD_REVISION]


async def test_a_database_at_head_is_not_upgraded_again_and_an_older_one_is(database_url, monkeypatch):
    engine = create_engine(database_url)
    try:
        assert await migrate.current_revision(engine) is None  # nothing there yet
        await upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.HEAD_REVISION

        def no_alembic(*_args: object) -> None:
            raise AssertionError("Alembic ran for a database already at head")

        alembic_upgrade = command.upgrade
        monkeypatch.setattr(command, "upgrade", no_alembic)
        await alembic_only(engine)  # at head: returns without Alembic

        def step_back(connection) -> None:
            cfg = alembic_config(database_url)
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "-1")

        async with engine.begin() as connection:
            await connection.run_sync(step_back)
        assert await migrate.current_revision(engine) not in (None, migrate.HEAD_REVISION)
        monkeypatch.setattr(command, "upgrade", alembic_upgrade)
        await alembic_only(engine)
        assert await migrate.current_revision(engine) == migrate.HEAD_REVISION
    finally:
        await engine.dispose()


async def test_ten_concurrent_deliveries_of_one_message_store_one_item(sessions):
    async def deliver() -> tuple[int, bool]:
        async with transaction(sessions) as session:
            return await inbox_store.store_incoming(
                session, platform="wecom", platform_msg_id="7310", conversation_key="wecom:LiMing",
                payload={"kind": "text"}, now=NOW,
            )

    results = await asyncio.gather(*(deliver() for _ in range(10)))
    assert sum(is_new for _, is_new in results) == 1
    assert len({inbox_id for inbox_id, _ in results}) == 1
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboxItem)) == 1


async def test_a_burst_of_events_is_stored_in_one_statement_with_duplicates_recognised(sessions):
    async with transaction(sessions) as session:
        before, _ = await inbox_store.store_incoming(
            session, platform="wecom", platform_msg_id="old", conversation_key="k", payload={}, now=NOW
        )
    burst = [
        inbox_store.Incoming("wecom", "m1", "k1", {"n": 1}),
        inbox_store.Incoming("wecom", "old", "k", {"n": 2}),  # redelivered: stored before
        inbox_store.Incoming("console", "m1", "k2", {"n": 3}),  # same id, other platform: distinct
        inbox_store.Incoming("wecom", "m1", "k1", {"n": 4}),  # redelivered within the burst
    ]
    async with transaction(sessions) as session:
        results = await inbox_store.store_incoming_many(session, burst, now=NOW)
    assert [is_new for _, is_new in results] == [True, False, True, False]
    assert results[1][0] == before and results[3][0] == results[0][0] != results[2][0]
    async with sessions() as session:
        rows = {(i.platform, i.platform_msg_id): i.payload for i in await session.scalars(select(InboxItem))}
    assert rows == {("wecom", "old"): {}, ("wecom", "m1"): {"n": 1}, ("console", "m1"): {"n": 3}}


@requires_postgres
async def test_a_value_postgresql_refuses_fails_its_own_accept_only(tmp_path, monkeypatch):
    import bot.inbox
    from bot.bootstrap import build_runtime
    from bot.clock import FrozenClock
    from bot.events import Event, EventKind

    monkeypatch.setattr(bot.inbox, "_MSG_ID_CHARS", 1000)  # let it reach the database's own check
    async with scratch_database() as url:
        runtime = await build_runtime(make_config(tmp_path, storage={"url": url}), clock=FrozenClock(START))
        try:
            def event(msg_id: str) -> Event:
                return Event(platform="console", platform_msg_id=msg_id, kind=EventKind.TEXT, sender="rep.li",
                             conversation="rep.li", text="你好")

            good, bad, other = await asyncio.gather(
                runtime.inbox.accept(event("good-1")), runtime.inbox.accept(event("b" * 200)),
                runtime.inbox.accept(event("good-2")), return_exceptions=True,
            )
            assert isinstance(bad, DBAPIError) and "too long" in str(bad)
            assert good.is_new and other.is_new
        finally:
            await runtime.stop()


async def test_a_late_failure_never_overwrites_an_item_another_worker_claimed_or_finished(sessions):
    async with transaction(sessions) as session:
        inbox_id, _ = await inbox_store.store_incoming(
            session, platform="console", platform_msg_id="a", conversation_key="k", payload={}, now=NOW
        )
    lease = dt.timedelta(seconds=60)
    async with transaction(sessions) as session:
        assert await inbox_store.claim(session, inbox_id, NOW, lease)  # attempt 1, then its lease runs out
    async with transaction(sessions) as session:
        assert await inbox_store.claim(session, inbox_id, NOW + 2 * lease, lease)  # attempt 2
    async with transaction(sessions) as session:
        # Attempt 1 fails late: attempt 2 keeps its lease and nothing is marked failed.
        assert not await inbox_store.record_failure(session, inbox_id, 1, "late", give_up=True, retry_at=NOW)
        assert await inbox_store.finish(session, inbox_id, NOW + 2 * lease)
    async with transaction(sessions) as session:
        assert not await inbox_store.record_failure(session, inbox_id, 2, "late", give_up=True, retry_at=NOW)
    async with sessions() as session:
        item = await inbox_store.load(session, inbox_id)
    assert item.status == "done" and item.error is None


async def test_only_one_worker_claims_an_inbox_item(sessions):
    async with transaction(sessions) as session:
        inbox_id, _ = await inbox_store.store_incoming(
            session, platform="console", platform_msg_id="a", conversation_key="k", payload={}, now=NOW
        )

    async def claim() -> bool:
        async with transaction(sessions) as session:
            return await inbox_store.claim(session, inbox_id, NOW, dt.timedelta(seconds=60))

    assert sorted(await asyncio.gather(claim(), claim(), claim())) == [False, False, True]
    # After the lease runs out another worker may take it (the first one died).
    async with transaction(sessions) as session:
        assert await inbox_store.claim(session, inbox_id, NOW + dt.timedelta(seconds=61), dt.timedelta(seconds=60))


async def test_outbox_items_are_claimed_once_and_counted_for_rate_limits(sessions):
    async with transaction(sessions) as session:
        for n in range(3):
            outbox_store.enqueue(
                session, platform="wecom", target_kind="member", target_id=1, target="LiMing",
                kind="text", payload={"text": str(n)}, now=NOW,
            )
    async with sessions() as session:
        due = await outbox_store.due_items(session, ["wecom"], NOW, 10)
    assert [key for _, key in due] == ["wecom:LiMing"] * 3
    first_id = due[0][0]
    async with transaction(sessions) as session:
        assert await outbox_store.claim(session, first_id, NOW, dt.timedelta(seconds=30)) is not None
    async with transaction(sessions) as session:
        assert await outbox_store.claim(session, first_id, NOW, dt.timedelta(seconds=30)) is None
        await outbox_store.mark_sent(session, first_id, NOW, "msg-1")
    async with sessions() as session:
        assert await outbox_store.sent_count_since(session, "wecom", "LiMing", NOW - dt.timedelta(minutes=1)) == 1
        assert len(await outbox_store.due_items(session, ["wecom"], NOW, 10)) == 2


async def test_due_next_actions_skip_customers_followed_up_since(sessions):
    async with transaction(sessions) as session:
        rep = await session.scalar(select(Member).where(Member.code == "rep.li"))
        a = await customer_store.create_lead(session, owner_id=rep.id, name="甲公司", now=NOW)
        b = await customer_store.create_lead(session, owner_id=rep.id, name="乙公司", now=NOW)
        for customer, when, due in (
            (a, NOW - dt.timedelta(days=3), dt.date(2026, 11, 24)),
            (a, NOW - dt.timedelta(days=1), dt.date(2026, 11, 30)),  # follows up the first
            (b, NOW - dt.timedelta(days=2), dt.date(2026, 11, 25)),
        ):
            await touch_store.record_touch(
                session, customer=customer, member_id=rep.id, channel=Channel.PHONE, duration_minutes=5,
                summary="s", raw_text="r", next_action="回电", next_due=due, proposal=False,
                occurred_at=when, source_event_id=None,
            )
    async with sessions() as session:
        due = await touch_store.due_next_actions(session, rep.id, dt.date(2026, 11, 25))
        cold = await touch_store.cold_customers(session, rep.id, NOW - dt.timedelta(hours=36))
    assert [(c.name, t.next_due) for t, c in due] == [("乙公司", dt.date(2026, 11, 25))]
    assert [c.name for c in cold] == ["乙公司"]


async def test_console_transcript_runs_on_this_database(aiohttp_client, tmp_path, database_url, clock):
    config = make_config(tmp_path, storage={"url": database_url})
    console = Console(await aiohttp_client(create_app(config, clock=clock)))
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    assert cards_of(reply)[0]["title"] == "已记录跟进 · 华东建材"
    again = await console.send("rep.li", "/今日")
    assert "华东建材" not in texts_of(again)[0].split("**待补凭证**")[0]
    async with console.runtime.sessions() as session:
        [touch] = list(await session.scalars(select(Touch)))
    assert touch.occurred_at == NOW and touch.occurred_at.tzinfo is not None


async def test_the_migrations_create_exactly_the_models_schema(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.models import Base

    engine = create_engine(database_url)
    await upgrade(engine)

    def diff(connection) -> list:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
    await engine.dispose()


async def test_the_service_checkpoints_sqlite_off_the_request_path(tmp_path, clock):
    from sqlalchemy import text

    from bot.bootstrap import build_runtime

    runtime = await build_runtime(make_config(tmp_path), clock=clock)
    try:
        assert runtime.checkpointer is not None
        async with runtime.engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA wal_autocheckpoint")) == 0  # no commit pays for it
        await add_customer(runtime, "rep.li", "华东建材")
        frames, done = runtime.checkpointer.checkpoint()
        assert frames > 0 and done == frames
    finally:
        await runtime.stop()


def test_postgresql_needs_no_checkpointer():
    from storage.db import WalCheckpointer

    assert not WalCheckpointer.wanted("postgresql+asyncpg://u@h/db")
    assert not WalCheckpointer.wanted("sqlite+aiosqlite:///:memory:")
    assert WalCheckpointer.wanted("sqlite+aiosqlite:///data/pacebot.db")

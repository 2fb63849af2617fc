"""Reads remembered for one transaction (storage.batch_cache) are never stale, and the SQLite
connection (storage.sqlite_conn) gives what the driver gives; on SQLite always, and on PostgreSQL
when PACEBOT_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import members as member_store
from storage import settings as settings_store
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import Dialogue, Member, Setting
from storage.org import load_directory_file
from tests.conftest import ORG_SMALL, START
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database

NOW = START.astimezone(dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessions(request, tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "sqlite":
        async for factory in _sessions(f"sqlite+aiosqlite:///{tmp_path}/cache.db"):
            yield factory
        return
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    async with scratch_database() as url:
        async for factory in _sessions(url):
            yield factory


async def _sessions(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(url)
    await upgrade(engine)
    factory = session_factory(engine)
    async with transaction(factory) as session:
        await load_directory_file(session, ORG_SMALL, now=NOW)
    yield factory
    await engine.dispose()


async def _executed(session: AsyncSession, action) -> int:  # type: ignore[no-untyped-def]
    """How many statements ``action`` executed through the session."""
    seen: list[str] = []
    engine = session.get_bind()

    def count(*_args) -> None:  # type: ignore[no-untyped-def]
        seen.append("x")

    event.listen(engine, "before_cursor_execute", count)
    try:
        await action()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


async def test_a_setting_is_read_once_per_transaction_and_a_change_is_seen_at_once(sessions):
    async with transaction(sessions) as session:
        assert await settings_store.get(session, "rules.overrides") is None
        assert await _executed(session, lambda: settings_store.get(session, "rules.overrides")) == 0
        await settings_store.put(session, "rules.overrides", {"values": {"x": 1}})  # not flushed yet
        assert await settings_store.get(session, "rules.overrides") == {"values": {"x": 1}}


async def test_a_write_to_the_table_through_the_session_forgets_what_was_read(sessions):
    async with transaction(sessions) as session:
        assert await settings_store.get(session, "k") is None
        await session.execute(insert(Setting).values(key="k", value={"v": 2}))
        assert await settings_store.get(session, "k") == {"v": 2}
        await session.execute(update(Setting).where(Setting.key == "k").values(value={"v": 3}))
        assert await settings_store.get(session, "k") == {"v": 3}


async def test_a_rolled_back_savepoint_leaves_nothing_remembered(sessions):
    async with transaction(sessions) as session:
        assert await settings_store.get(session, "k") is None
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await settings_store.put(session, "k", {"v": 1})
                await session.flush()
                assert await settings_store.get(session, "k") == {"v": 1}
                raise RuntimeError("refused")
        assert await settings_store.get(session, "k") is None


async def test_nothing_is_remembered_past_its_transaction(sessions):
    async with sessions() as session:
        async with session.begin():
            assert await settings_store.get(session, "k") is None
        async with transaction(sessions) as other:
            await settings_store.put(other, "k", {"v": 1})
        async with session.begin():  # the same session, a new transaction
            assert await settings_store.get(session, "k") == {"v": 1}


async def test_the_sender_is_looked_up_once_and_a_deactivation_is_seen_at_once(sessions):
    async with transaction(sessions) as session:
        member = await member_store.member_by_platform_id(session, "wecom", "LiMing")
        assert member is not None and member.code == "rep.li"
        again = await _executed(session, lambda: member_store.member_by_platform_id(session, "wecom", "LiMing"))
        assert again == 0
        member.active = False  # not flushed yet
        assert await member_store.member_by_platform_id(session, "wecom", "LiMing") is None
    async with transaction(sessions) as session:
        await session.execute(update(Member).where(Member.code == "rep.li").values(active=True))
        assert await member_store.member_by_platform_id(session, "wecom", "LiMing") is not None
        await session.execute(update(Member).where(Member.code == "rep.li").values(active=False))
        assert await member_store.member_by_platform_id(session, "wecom", "LiMing") is None


async def test_the_sender_lookup_says_in_the_same_statement_whether_a_dialogue_is_stored(sessions):
    async with transaction(sessions) as session:
        await session.execute(select(1))  # the transaction begun
        assert await _executed(session, lambda: member_store.sender_and_dialogue(session, "console", "rep.li",
                                                                                  "rep.li")) == 1
    async with transaction(sessions) as session:
        member, stored = await member_store.sender_and_dialogue(session, "console", "rep.li", "rep.li")
        assert member is not None and member.code == "rep.li" and stored is False
        session.add(Dialogue(platform="console", conversation="rep.li", member_id=member.id, state="x", data={},
                             updated_at=NOW, expires_at=NOW))
    async with transaction(sessions) as session:
        assert (await member_store.sender_and_dialogue(session, "console", "rep.li", "rep.li"))[1] is True
        # Remembered for the transaction: not read again, and the dialogue not looked at.
        assert (await member_store.sender_and_dialogue(session, "console", "rep.li", "elsewhere"))[1] is None
    async with transaction(sessions) as session:
        assert (await member_store.sender_and_dialogue(session, "console", "rep.li", "elsewhere"))[1] is False
        assert await member_store.sender_and_dialogue(session, "console", "nobody", "nobody") == (None, None)
        assert await member_store.sender_and_dialogue(session, "console", "", "rep.li") == (None, None)


@pytest.mark.parametrize("sessions", ["postgresql"], indirect=True)  # SQLite has no row locks
async def test_on_postgresql_the_sender_lookup_locks_the_stored_dialogue(sessions):
    async with transaction(sessions) as session:
        member = await member_store.member_by_code(session, "rep.li")
        assert member is not None
        session.add(Dialogue(platform="console", conversation="rep.li", member_id=member.id, state="x", data={},
                             updated_at=NOW, expires_at=NOW))
    locked = select(Dialogue.member_id).where(Dialogue.conversation == "rep.li").with_for_update(nowait=True)
    async with transaction(sessions) as session:
        assert (await member_store.sender_and_dialogue(session, "console", "rep.li", "rep.li"))[1] is True
        async with sessions() as other:
            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await other.execute(locked)
    async with transaction(sessions) as session:  # released with its transaction
        assert (await session.execute(locked)).scalar_one() == member.id


async def test_the_sqlite_adapter_reports_counts_keys_rows_and_errors_as_the_driver_does(sessions):
    async with transaction(sessions) as session:
        await session.execute(insert(Setting.__table__), [{"key": f"k{i}", "value": {}} for i in range(3)])
        result = await session.execute(update(Setting).where(Setting.key.like("k%")).values(value={"n": 1}))
        assert result.rowcount == 3  # type: ignore[attr-defined]
        rows = (await session.execute(select(Setting.key).where(Setting.key.like("k%")).order_by(Setting.key))).all()
        assert [row[0] for row in rows] == ["k0", "k1", "k2"]
    with pytest.raises(IntegrityError):
        async with transaction(sessions) as session:
            await session.execute(insert(Setting).values(key="k0", value={}))
    async with transaction(sessions) as session:  # the connection is usable after the error
        assert await session.scalar(select(Setting.value).where(Setting.key == "k0")) == {"n": 1}

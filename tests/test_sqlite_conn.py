"""SQLite connections run their own write transactions on the event loop, and wait for another
process's lock off it."""

from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy import text

from storage.db import create_engine, session_factory, transaction
from storage.sqlite_conn import InlineWriteConnection


async def driver(engine) -> InlineWriteConnection:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, InlineWriteConnection)
        return raw.driver_connection


async def test_a_transactions_statements_run_on_the_loop_not_on_the_thread(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/inline.db")
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
        connection = await driver(engine)
        before = connection.thread_calls
        async with transaction(sessions) as session:
            for i in range(20):
                await session.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
            total = (await session.execute(text("SELECT sum(x) FROM t"))).scalar_one()
        assert total == sum(range(20))
        assert connection.thread_calls == before
        async with sessions() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 20
    finally:
        await engine.dispose()


async def test_a_lock_held_by_another_process_is_waited_for_off_the_loop(tmp_path):
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (1)")

        async def write() -> int:
            async with transaction(sessions) as session:
                await session.execute(text("INSERT INTO t VALUES (2)"))
                return (await session.execute(text("SELECT count(*) FROM t"))).scalar_one()

        writer = asyncio.create_task(write())
        # The writer waits for the lock; the loop goes on meanwhile.
        for _ in range(50):
            await asyncio.sleep(0)
        assert not writer.done()
        other.execute("COMMIT")
        other.close()
        # It saw the other process's row: its transaction began after that commit.
        assert await writer == 2
        assert (await driver(engine)).thread_calls >= 1
    finally:
        await engine.dispose()


async def test_a_failed_statement_rolls_back_and_the_connection_goes_on(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/fail.db")
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            await session.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
            await session.execute(text("INSERT INTO t VALUES (1)"))
        try:
            async with transaction(sessions) as session:
                await session.execute(text("INSERT INTO t VALUES (2)"))
                await session.execute(text("INSERT INTO t VALUES (1)"))
        except Exception as exc:  # the duplicate key
            assert "UNIQUE" in str(exc)
        else:
            raise AssertionError("the duplicate was stored")
        async with transaction(sessions) as session:
            rows = (await session.execute(text("SELECT x FROM t ORDER BY x"))).scalars().all()
        assert rows == [1]
    finally:
        await engine.dispose()

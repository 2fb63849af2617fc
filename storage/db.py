"""Engine and sessions. One session per event, owned by the edge and committed there."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import String, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql.elements import KeyedColumnElement

from storage.sqlite_conn import async_creator

log = logging.getLogger(__name__)

def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(
    url: str, *, sqlite_synchronous: str = "NORMAL", echo: bool = False, sqlite_autocheckpoint: bool = True
) -> AsyncEngine:
    """An engine for the URL. A long-running service passes ``sqlite_autocheckpoint=False`` and runs
    a ``WalCheckpointer`` instead, so no request ever pays for a checkpoint's fsync."""
    if not is_sqlite(url):
        return create_async_engine(
            url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
        )
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # SQLite has one writer at a time. Queuing on a single pooled connection inside the process is
    # far cheaper than letting several connections spin in SQLite's sleeping busy handler.
    # hide_parameters: an error's message and traceback never carry the user text bound to a query.
    # Statements of a transaction that holds the write lock run on the event loop's thread rather
    # than being handed to aiosqlite's thread one call at a time (see storage.sqlite_conn).
    engine = create_async_engine(url, echo=echo, async_creator=async_creator(database or ":memory:", timeout_seconds=30),
                                 pool_size=1, max_overflow=0, pool_timeout=60, hide_parameters=True,
                                 json_deserializer=_json_loads)
    _make_sqlite_transactional(engine, sqlite_synchronous.upper(), sqlite_autocheckpoint)
    return engine


_EMPTY_JSON = {"[]": list, "{}": dict}


def _json_loads(text: str) -> Any:
    """``json.loads``, with the empty list and object — most JSON columns of most rows (a customer's
    aliases, custom fields, flags …) — made without the parser."""
    empty = _EMPTY_JSON.get(text)
    return empty() if empty is not None else json.loads(text)


def _make_sqlite_transactional(engine: AsyncEngine, synchronous: str, autocheckpoint: bool) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE.

    pysqlite's own transaction handling starts transactions lazily and deferred; a deferred
    transaction that reads and then writes can fail at once with "database is locked" when another
    connection wrote meanwhile. Taking the write lock at BEGIN makes concurrent writers queue on the
    busy timeout instead, which is what an inbox with several workers needs.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class WalCheckpointer:
    """Checkpoints an SQLite WAL from its own connection, in a thread, off the request path.

    SQLite's automatic checkpoint runs inside whichever commit crosses the threshold and makes it
    wait for an fsync of the database file (tens of milliseconds): one callback in a hundred was
    acknowledged late. A PASSIVE checkpoint from another connection does the same work without
    holding the write lock, so commits carry on meanwhile.
    """

    def __init__(
        self, url: str, *, interval_seconds: float = 2.0, wal_bytes: int = 16 * 1024 * 1024, idle_seconds: float = 30.0
    ) -> None:
        self.path = make_url(url).database or ""
        self.interval = interval_seconds
        # Checkpoint when the WAL has grown past ``wal_bytes``, or at least every ``idle_seconds``:
        # fewer, larger checkpoints disturb the request path least.
        self.wal_bytes = wal_bytes
        self.idle_seconds = idle_seconds
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def wanted(url: str) -> bool:
        database = make_url(url).database if is_sqlite(url) else None
        return bool(database) and database != ":memory:"

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="sqlite-checkpoint")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.checkpoint)

    async def _loop(self) -> None:
        since_last = 0.0
        while True:
            await asyncio.sleep(self.interval)
            since_last += self.interval
            if since_last < self.idle_seconds and self._wal_size() < self.wal_bytes:
                continue
            since_last = 0.0
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error as exc:  # a busy moment: the next round catches up
                log.warning("WAL checkpoint of %s failed: %s", self.path, exc)

    def _wal_size(self) -> int:
        try:
            return Path(self.path + "-wal").stat().st_size
        except OSError:
            return 0

    def checkpoint(self) -> tuple[int, int]:
        """Copy the WAL into the database; returns (frames in the WAL, frames checkpointed)."""
        connection = sqlite3.connect(self.path, timeout=30)
        try:
            _busy, frames, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            connection.close()
        return frames, done


def dialect_insert(session: AsyncSession) -> Any:
    """``insert`` of the session's dialect, for ``ON CONFLICT`` clauses (SQLite or PostgreSQL)."""
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert


def rowcount(result: Result[Any]) -> int:
    """Rows an INSERT, UPDATE or DELETE matched. ``AsyncSession.execute`` is typed as returning a
    plain ``Result``; for these statements it is a ``CursorResult``, which knows the count."""
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount


def string_length(column: KeyedColumnElement[Any]) -> int:
    """The declared length of a ``String`` column, for checking input against it before storing."""
    type_ = column.type
    assert isinstance(type_, String) and type_.length is not None, column
    return type_.length


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed on success and rolled back on any error."""
    async with sessions() as session, session.begin():
        yield session

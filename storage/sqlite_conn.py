"""An aiosqlite connection that runs a write transaction's statements on the event loop's thread.

aiosqlite hands every call (cursor, execute, fetch, close, commit) to its own thread and back. A
statement of this application takes microseconds in SQLite, but each hand-off wakes a thread and the
event loop and passes the GIL between them: measured at about 50 µs of CPU on an idle machine and far
more under load, four of them per statement. They were most of the pipeline's CPU per touch.

What may wait is what must stay off the loop: taking SQLite's write lock (another process — a
backup, ``pacebot jobs run`` — may hold it for up to the busy timeout). So:

* ``BEGIN IMMEDIATE`` (every transaction of this application starts with it, see ``storage.db``) is
  tried on the loop with a busy timeout of zero; only when the lock is held elsewhere does it go to
  the connection's thread and wait there, with the configured timeout, as before.
* While this connection holds the write lock (a transaction it began with ``BEGIN IMMEDIATE`` or
  ``EXCLUSIVE`` is open), its statements, fetches, commit and rollback run on the loop: in WAL mode
  none of them waits for another connection (commits need no other lock; readers never block a
  writer). A long query still takes the loop for as long as SQLite works on it — which on the
  service's one-connection engine holds up every other database user anyway.
* Making and closing cursors never touches the database and runs on the loop.
* Everything else (connecting, statements outside such a transaction, closing) runs on aiosqlite's
  thread as before.

It plugs in through SQLAlchemy's documented ``async_creator`` and keeps aiosqlite's connection
class, overriding only the method that queues a call for the thread (``_execute``, unchanged since
aiosqlite 0.17). Should a future aiosqlite stop calling it, every call simply goes to the thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite

# Cursor calls that run inline while this connection holds the write lock.
_STATEMENTS = frozenset({"execute", "executemany", "fetchone", "fetchmany", "fetchall", "close"})
_TAKES_LOCK = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")


class InlineWriteConnection(aiosqlite.Connection):
    """``aiosqlite.Connection`` running the calls of its own write transactions inline (see module)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_timeout_ms: int) -> None:
        super().__init__(connector, 64)
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.daemon = True  # as aiosqlite.connect() leaves it for SQLAlchemy
        self._busy_timeout_ms = busy_timeout_ms
        self._holds_lock = False
        # Calls run inline and on the thread, for tests and the benchmark.
        self.inline_calls = 0
        self.thread_calls = 0

    async def _on_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.thread_calls += 1
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        conn: sqlite3.Connection | None = self._connection
        if conn is None:
            return await self._on_thread(fn, *args, **kwargs)
        in_transaction = conn.in_transaction
        if not in_transaction:
            self._holds_lock = False
        owner = getattr(fn, "__self__", None)
        name = getattr(fn, "__name__", "")
        if isinstance(owner, sqlite3.Cursor):
            if name == "execute" and not in_transaction and _takes_lock(args):
                return await self._begin(fn, *args)
            if name == "close" or (self._holds_lock and name in _STATEMENTS):
                self.inline_calls += 1
                return fn(*args, **kwargs)
        elif owner is conn and (name in ("cursor", "commit", "rollback")):
            # commit/rollback: with the write lock held they wait for nobody; without a transaction
            # they do nothing.
            if name == "cursor" or self._holds_lock or not in_transaction:
                self.inline_calls += 1
                return fn(*args, **kwargs)
        return await self._on_thread(fn, *args, **kwargs)

    async def _begin(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``BEGIN IMMEDIATE``/``EXCLUSIVE``: on the loop when the lock is free, else on the thread."""
        conn: sqlite3.Connection | None = self._connection
        assert conn is not None
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            result = fn(*args)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            result = None
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        if conn.in_transaction:
            self.inline_calls += 1
            self._holds_lock = True
            return result
        # Held by another connection: wait for it on the thread, with the usual busy timeout.
        result = await self._on_thread(fn, *args)
        self._holds_lock = conn.in_transaction
        return result


def _takes_lock(args: tuple[Any, ...]) -> bool:
    return bool(args) and isinstance(args[0], str) and args[0].lstrip().upper().startswith(_TAKES_LOCK)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "locked" in str(exc) or "busy" in str(exc)


def async_creator(database: str, *, timeout_seconds: float) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: connections of this kind on ``database``."""

    def connector() -> sqlite3.Connection:
        # Used on the loop's thread and on aiosqlite's, never at the same time (one caller at a
        # time holds a pooled connection, and each call is awaited before the next).
        return sqlite3.connect(database, timeout=timeout_seconds, check_same_thread=False)

    async def create() -> InlineWriteConnection:
        connection = InlineWriteConnection(connector, int(timeout_seconds * 1000))
        await connection
        return connection

    return create


def connection_counts(engine_pool_connection: Any) -> tuple[int, int]:
    """(inline, thread) call counts of a pooled connection's driver connection, for tests."""
    driver = getattr(engine_pool_connection, "driver_connection", None)
    if isinstance(driver, InlineWriteConnection):
        return driver.inline_calls, driver.thread_calls
    return 0, 0


__all__ = ["InlineWriteConnection", "async_creator", "connection_counts"]

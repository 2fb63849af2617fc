"""Migrate once per test session, copy per test.

Running the Alembic migrations costs most of a second per database on SQLite (batch operations
re-create tables) and more on PostgreSQL, and almost every test starts from a fresh database. So the
first upgrade to ``head`` of a session runs Alembic for real into a *template*; every later upgrade
of a brand-new database to ``head`` gets a copy of that template instead:

- SQLite: the template file is copied to the database's path before anything connects to it;
- PostgreSQL: a scratch database of ``tests.pg.scratch_database`` that is still empty gets the
  template's ``pg_dump`` replayed in one transaction (or, without pg_dump, is re-created with
  ``CREATE DATABASE … TEMPLATE``).

Anything else — a database that already has tables, another revision than ``head``, an in-memory
SQLite database, a PostgreSQL database that is not a scratch database — goes to Alembic as before,
so migration tests (down and up again, to a given revision) still run the real migrations, and the
template itself is made by Alembic each session: what a test gets is what Alembic would produce.

``install()`` (called by ``tests/conftest.py`` before any test module is imported) puts
``upgrade`` in place of ``storage.migrate.upgrade``, for the application (``build_runtime``) and
for tests that import ``upgrade`` themselves.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage import migrate
from storage.db import create_engine, is_sqlite
from tests import pg

_alembic_upgrade = migrate.upgrade
_lock = threading.Lock()
_sqlite_template: Path | None = None
_template_dir: str | None = None
_postgres_template: str | None = None
_postgres_script: str | None = None


def install() -> None:
    migrate.upgrade = upgrade


async def alembic_only(engine: AsyncEngine, revision: str = "head") -> None:
    """The application's own ``storage.migrate.upgrade``, never served from the template."""
    await _alembic_upgrade(engine, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """``storage.migrate.upgrade``, served from the session's template when the database is new."""
    url = engine.url.render_as_string(hide_password=False)
    if revision == "head":
        if is_sqlite(url) and _is_new_sqlite_file(url):
            await engine.dispose()
            _copy_sqlite_template(url)
            return
        if pg.is_scratch(url) and await _is_empty(engine):
            await engine.dispose()  # its pooled connections would block re-creating the database
            await _recreate_from_template(url)
            return
    await _alembic_upgrade(engine, revision)


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _is_new_sqlite_file(url: str) -> bool:
    path = _sqlite_path(url)
    if path is None:
        return False
    wal = path.with_name(path.name + "-wal")
    return (not path.exists() or path.stat().st_size == 0) and not wal.exists()


def _copy_sqlite_template(url: str) -> None:
    path = _sqlite_path(url)
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sqlite_template(), path)


def sqlite_template() -> Path:
    """The migrated SQLite template of this session (made on first use, by Alembic)."""
    global _sqlite_template
    with _lock:
        if _sqlite_template is None:
            path = Path(template_dir()) / "template.db"
            _run_in_thread(_migrate_sqlite(f"sqlite+aiosqlite:///{path}"))
            # Fold the WAL into the file: the copy must be the whole database.
            connection = sqlite3.connect(path)
            try:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                connection.close()
            _sqlite_template = path
        return _sqlite_template


async def _migrate_sqlite(url: str) -> None:
    engine = create_engine(url)
    try:
        await _alembic_upgrade(engine)
    finally:
        await engine.dispose()


def template_dir() -> str:
    global _template_dir
    if _template_dir is None:
        _template_dir = tempfile.mkdtemp(prefix="pacebot-template-")
    return _template_dir


def cleanup() -> None:
    """Remove this session's templates (called at the end of the session)."""
    global _sqlite_template, _template_dir
    if _template_dir is not None:
        shutil.rmtree(_template_dir, ignore_errors=True)
    _sqlite_template = _template_dir = None
    _drop_postgres_template()


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_template() -> str:
    """The name of this session's migrated PostgreSQL template database (made on first use)."""
    global _postgres_template, _postgres_script
    with _lock:
        if _postgres_template is None:
            name = f"pacebot_tpl_{uuid.uuid4().hex[:12]}"
            _run_in_thread(_migrate_postgres(name))
            _postgres_template = name
            _postgres_script = _dump(name)
        return _postgres_template


async def _migrate_postgres(name: str) -> None:
    admin = create_async_engine(pg.POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = create_engine(pg.url_of(name))
        try:
            await _alembic_upgrade(engine)
        finally:
            await engine.dispose()
    finally:
        await admin.dispose()


def _libpq_url(database: str) -> str:
    return make_url(pg.url_of(database)).set(drivername="postgresql").render_as_string(hide_password=False)


def _dump(name: str) -> str | None:
    """The template as one SQL script (``pg_dump``), or None when pg_dump is not available.

    Replaying the script in one transaction is several times cheaper than ``CREATE DATABASE``,
    which writes and syncs a whole new database directory.
    """
    if shutil.which("pg_dump") is None:
        return None
    result = subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", "--inserts", f"--dbname={_libpq_url(name)}"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        return None
    # psql meta-commands (``\restrict`` …) are for psql only.
    return "\n".join(line for line in result.stdout.splitlines() if not line.startswith("\\"))


async def _recreate_from_template(url: str) -> None:
    template = postgres_template()
    name = make_url(url).database
    if _postgres_script is not None:
        connection = await asyncpg.connect(_libpq_url(name or ""))
        try:
            await connection.execute(_postgres_script)  # one implicit transaction
        finally:
            await connection.close()
        return
    admin = create_async_engine(pg.POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        await admin.dispose()


def _drop_postgres_template() -> None:
    global _postgres_template, _postgres_script
    name, _postgres_template, _postgres_script = _postgres_template, None, None
    if name is None:
        return

    async def drop() -> None:
        admin = create_async_engine(pg.POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            await admin.dispose()

    _run_in_thread(drop())


async def _is_empty(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()")
        )
    return count == 0


def _run_in_thread(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion on a loop of its own (callers may be inside a running loop)."""
    error: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="pacebot-template")
    thread.start()
    thread.join()
    if error:
        raise error[0]

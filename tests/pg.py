"""PostgreSQL for tests: a throw-away database per test, when PACEBOT_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_URL = os.environ.get("PACEBOT_TEST_POSTGRES_URL", "")
SKIP_REASON = "PostgreSQL tests need PACEBOT_TEST_POSTGRES_URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
SCRATCH_PREFIX = "pacebot_t_"

requires_postgres = pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)


def url_of(database: str) -> str:
    """The URL of another database on the configured server."""
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


def is_scratch(url: str) -> bool:
    """Whether ``url`` names a database made by ``scratch_database`` (on the configured server)."""
    if not POSTGRES_URL or not url.startswith("postgresql"):
        return False
    parsed, configured = make_url(url), make_url(POSTGRES_URL)
    return (
        (parsed.host, parsed.port) == (configured.host, configured.port)
        and (parsed.database or "").startswith(SCRATCH_PREFIX)
    )


@asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """Create an empty database next to the configured one; yield its URL; drop it afterwards.

    Upgrading it to ``head`` while it is still empty is served from the session's migrated
    template (see ``tests/migrated.py``).
    """
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url_of(name)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@asynccontextmanager
async def database_on(store: str, tmp_path: Path) -> AsyncIterator[str]:
    """A new database's URL on ``store``: ``"sqlite"`` (a file in ``tmp_path``) or ``"postgresql"``
    (a scratch database; the test is skipped without PACEBOT_TEST_POSTGRES_URL)."""
    if store == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/pacebot.db"
        return
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    async with scratch_database() as url:
        yield url

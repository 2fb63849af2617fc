"""PostgreSQL for tests: a throw-away database per test, when PACEBOT_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_URL = os.environ.get("PACEBOT_TEST_POSTGRES_URL", "")
SKIP_REASON = "PostgreSQL tests need PACEBOT_TEST_POSTGRES_URL (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"

requires_postgres = pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)


@asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """Create an empty database next to the configured one; yield its URL; drop it afterwards."""
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"pacebot_t_{uuid.uuid4().hex[:12]}"
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

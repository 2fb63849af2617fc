"""Counting metered DingTalk calls in the database: exact under concurrency, warning admins once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.observability import METRICS
from bot.platforms.dingtalk.usage import ApiUsage
from storage import api_usage
from storage.db import create_engine, session_factory, transaction
from storage.migrate import upgrade
from storage.models import Member, OutboxItem
from tests.conftest import START
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request, tmp_path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/usage.db"
        return
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    async with scratch_database() as url:
        yield url


@pytest.fixture
async def sessions(database_url):
    engine = create_engine(database_url)
    await upgrade(engine)
    factory = session_factory(engine)
    async with transaction(factory) as session:
        session.add(Member(code="admin.he", name="何敏", role="admin", dingtalk_staff_id="0900", created_at=START))
        session.add(Member(code="admin.wu", name="吴", role="admin", created_at=START))  # no DingTalk account
    yield factory
    await engine.dispose()


async def test_concurrent_calls_are_all_counted_and_the_warning_is_queued_once(sessions):
    usage = ApiUsage(sessions, FrozenClock(START), quota=50, tz=ZoneInfo("Asia/Shanghai"))
    exported = METRICS.api_calls.labels(platform="dingtalk")
    before = exported._value.get()
    await asyncio.gather(*(usage.count("x") for _ in range(60)))
    assert await usage.calls_this_month() == 60
    assert exported._value.get() == before + 60  # /metrics shows the same count
    async with sessions() as session:
        warnings = list(await session.scalars(select(OutboxItem)))
    assert [(w.platform, w.target, w.kind) for w in warnings] == [("dingtalk", "0900", "text")]
    assert "40 次" in warnings[0].payload["text"] and "80%" in warnings[0].payload["text"]


async def test_each_month_is_counted_on_its_own(sessions):
    async with transaction(sessions) as session:
        await api_usage.add_api_calls(session, "dingtalk", "2026-11", 3, warn_at=100)
        await api_usage.add_api_calls(session, "dingtalk", "2026-12", 1, warn_at=100)
    async with sessions() as session:
        assert await api_usage.api_calls(session, "dingtalk", "2026-11") == 3
        assert await api_usage.api_calls(session, "dingtalk", "2026-12") == 1
        assert await api_usage.api_calls(session, "dingtalk", "2027-01") == 0

"""The statements every message runs read through indexes, whatever history the tables hold.

The inbox and the outbox keep every processed item for the retention period (30 days by default):
hundreds of thousands of rows at a large team. A statement that walks them once per batch (or
once per claimed item) makes each batch slower as the history grows, until the pipeline stalls.
Here the hot statements run on a SQLite database holding such a history, each one is captured as
executed, and SQLite's own plan for it (EXPLAIN QUERY PLAN, with the same parameters) must not
scan the inbox or the outbox.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import InboxStatus, OutboxStatus
from storage import inbox as inbox_store
from storage import outbox as outbox_store
from storage.db import create_engine, session_factory, transaction
from storage.inbox import Incoming
from storage.migrate import upgrade
from storage.models import InboxItem, OutboxItem
from tests.conftest import START

HISTORY = 500  # sent messages and processed inbox items already stored
TARGETS = 40
PENDING = HISTORY + 2 * TARGETS + 1  # the first pending reply and message
NOW = START + dt.timedelta(days=1)
LEASE = dt.timedelta(seconds=60)
WINDOWS = [NOW - dt.timedelta(minutes=1), NOW - dt.timedelta(hours=1), NOW - dt.timedelta(days=1)]


async def _build(path: Path, history: int) -> None:
    """A migrated SQLite database holding ``history`` replies sent two days ago and messages processed
    then, two replies sent half an hour ago to each of ``TARGETS`` recipients, and two replies and
    two messages of each recipient still pending."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)
    sessions = session_factory(engine)
    long_ago, recently = NOW - dt.timedelta(days=2), NOW - dt.timedelta(minutes=30)
    total = history + 4 * TARGETS
    replies = [dict(platform="wecom", target_kind="member", target_id=i % TARGETS, target=f"user{i % TARGETS}",
                    kind="text", payload={"text": f"回复 {i}"}, source_event_id=None) for i in range(total)]
    messages = [Incoming("wecom", f"msg-{i}", f"wecom:user{i % TARGETS}", {"text": f"消息 {i}"}) for i in range(total)]
    async with transaction(sessions) as session:
        await outbox_store.enqueue_many(session, replies, now=long_ago)
        await session.execute(update(OutboxItem).where(OutboxItem.id <= history)
                              .values(status=OutboxStatus.SENT, sent_at=long_ago))
        await session.execute(update(OutboxItem).where(OutboxItem.id > history, OutboxItem.id <= history + 2 * TARGETS)
                              .values(status=OutboxStatus.SENT, sent_at=recently))
        await inbox_store.store_incoming_many(session, messages, now=long_ago)
        await session.execute(update(InboxItem).where(InboxItem.id <= history + 2 * TARGETS)
                              .values(status=InboxStatus.DONE, processed_at=long_ago))
    await engine.dispose()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """The database with ``HISTORY``, and the same with ten times the history (built once each)."""
    folder = tmp_path_factory.mktemp("plans")
    paths = folder / "history.db", folder / "larger.db"
    asyncio.run(_build(paths[0], HISTORY))
    asyncio.run(_build(paths[1], HISTORY * 10))
    return paths


@pytest.fixture
async def database(built, tmp_path):
    """A copy of the database with ``HISTORY`` for this test alone."""
    path = tmp_path / "plans.db"
    shutil.copyfile(built[0], path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    sessions = session_factory(engine)
    captured: list[tuple[str, Any]] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, params, _ctx, _many: captured.append((statement, params)))
    yield path, sessions, captured
    await engine.dispose()


@pytest.fixture
def larger(built) -> Path:
    return built[1]


def _vm_steps(path: Path, statement: str, params: Any) -> int:
    """SQLite's virtual-machine instructions (in thousands) to run ``statement``, rolled back."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    plain = sqlite3.connect(path, isolation_level=None)
    try:
        plain.set_progress_handler(count, 1000)
        plain.execute("BEGIN")
        plain.execute(statement, params).fetchall()
        plain.execute("ROLLBACK")
    finally:
        plain.close()
    return steps


HOT: dict[str, Callable[[AsyncSession], Awaitable[Any]]] = {
    "outbox claim with rate-limit counts": lambda s: outbox_store.claim_heads(s, ["wecom"], NOW, LEASE, 50,
                                                                              count_since=WINDOWS),
    "outbox claim": lambda s: outbox_store.claim_heads(s, ["wecom"], NOW, LEASE, 50),
    "sent counts": lambda s: outbox_store.sent_counts_within(s, "wecom", ["user1", "user2"], WINDOWS),
    "sent mark and successor": lambda s: outbox_store.mark_sent_one(s, PENDING, "msgid", NOW),
    "sent marks": lambda s: outbox_store.mark_sent_many(s, [(PENDING, "a"), (PENDING + 1, "b")], NOW),
    "unsent left for recipients": lambda s: outbox_store.any_unsent(s, [("wecom", "user1"), ("wecom", "user2")]),
    "outbox backlog": lambda s: outbox_store.backlog(s),
    "inbox claim": lambda s: inbox_store.claim_heads(s, NOW, LEASE, 50),
    "inbox finish": lambda s: inbox_store.finish_many(s, [PENDING, PENDING + 1], NOW),
    "inbox conversations waiting": lambda s: inbox_store.any_pending(s, ["wecom:user1", "wecom:user2"]),
    "inbox backlog": lambda s: inbox_store.backlog(s),
}


@pytest.mark.parametrize("name", list(HOT))
async def test_a_hot_statement_does_not_scan_the_inbox_or_the_outbox(database, name):
    path, sessions, captured = database
    statements = await _run(sessions, captured, name)
    with sqlite3.connect(path) as plain:
        for statement, params in statements:
            steps = [row[3] for row in plain.execute("EXPLAIN QUERY PLAN " + statement, params)]
            scans = [step for step in steps if step.startswith("SCAN") and ("outbox" in step or "inbox" in step
                                                                            or " sent" in step or " earlier" in step)]
            assert not scans, f"{name}: {statement}\nplan: {steps}"


@pytest.mark.parametrize("name", list(HOT))
async def test_a_hot_statements_work_does_not_grow_with_the_history(database, larger, name):
    # An index can still be walked end to end (e.g. "all rows of this platform"): the work SQLite
    # does for the same statement on ten times the history must stay about the same.
    path, sessions, captured = database
    statements = await _run(sessions, captured, name)
    for statement, params in statements:
        small, large = _vm_steps(path, statement, params), _vm_steps(larger, statement, params)
        assert large <= 2 * small + 5, f"{name}: {small}k → {large}k instructions\n{statement}"


async def _run(sessions: Any, captured: list[tuple[str, Any]], name: str) -> list[tuple[str, Any]]:
    """The statements ``HOT[name]`` executes, each with its first set of parameters."""
    async with sessions() as session, session.begin():
        captured.clear()
        await HOT[name](session)
        statements = [(s, _first(p)) for s, p in captured if not s.lstrip().upper().startswith(("BEGIN", "PRAGMA"))]
        await session.rollback()
    assert statements, "nothing was executed"
    return statements


def _first(params: Any) -> Any:
    return params[0] if isinstance(params, list) else params


async def test_the_claim_counts_what_was_sent_to_each_target_in_each_window(database):
    _, sessions, _ = database
    async with transaction(sessions) as session:
        claimed = await outbox_store.claim_heads(session, ["wecom"], NOW, LEASE, 50, count_since=WINDOWS)
    # One head per target, its oldest pending reply; two replies went to each half an hour ago
    # (within the hour and the day, not the minute), the rest two days ago.
    assert [item.id for item in claimed] == list(range(PENDING, PENDING + TARGETS))
    assert {item.target for item in claimed} == {f"user{n}" for n in range(TARGETS)}
    assert {item.sent_since for item in claimed} == {(0, 2, 2)}

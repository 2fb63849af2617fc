"""SQLite's stored text read back as values: instants by ``fromisoformat``, empty JSON without the parser.

Both are the fast paths of every row read on SQLite; they must give exactly what SQLAlchemy's
generic DateTime and JSON processing gave, for every form a database may hold.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import DateTime, select, text
from sqlalchemy.dialects import sqlite

from storage import inbox as inbox_store
from storage.db import _json_loads, create_engine, session_factory, transaction
from storage.inbox import Incoming
from storage.migrate import upgrade
from storage.models import InboxItem, Timestamp

FORMS = [
    "2026-12-01 01:30:15.123456",  # as SQLAlchemy writes it
    "2026-12-01 01:30:15.000000",
    "2026-12-01 05:45:06",  # SQLite's CURRENT_TIMESTAMP, datetime('now')
    "2026-12-01T05:45:06",
    "2026-12-01 05:45",
    "2026-12-01",
]


@pytest.mark.parametrize("stored", FORMS)
def test_an_instant_is_read_as_the_generic_datetime_type_reads_it_in_utc(stored):
    dialect = sqlite.dialect()
    fast = Timestamp().result_processor(dialect, None)
    generic = DateTime().dialect_impl(dialect).result_processor(dialect, None)
    expected = generic(stored).replace(tzinfo=dt.UTC)
    assert fast(stored) == expected
    assert fast(stored).tzinfo is dt.UTC


def test_an_instant_with_an_offset_is_converted_and_none_stays_none():
    fast = Timestamp().result_processor(sqlite.dialect(), None)
    assert fast("2026-12-01 09:30:00+08:00") == dt.datetime(2026, 12, 1, 1, 30, tzinfo=dt.UTC)
    assert fast(None) is None


async def test_instants_written_by_the_application_and_by_sqlite_read_back(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'v.db'}")
    await upgrade(engine)
    sessions = session_factory(engine)
    shanghai = dt.timezone(dt.timedelta(hours=8))
    written = dt.datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=shanghai)
    try:
        async with transaction(sessions) as session:
            await inbox_store.store_incoming_many(session, [Incoming("console", "a", "k", {})], now=written)
            await session.execute(text(
                "INSERT INTO inbox (platform, platform_msg_id, conversation_key, payload, status, attempts, received_at)"
                " VALUES ('console', 'b', 'k', '{}', 'pending', 0, '2026-12-01 05:45:06')"
            ))
        async with sessions() as session:
            read = list(await session.scalars(select(InboxItem.received_at).order_by(InboxItem.id)))
    finally:
        await engine.dispose()
    assert read == [written, dt.datetime(2026, 12, 1, 5, 45, 6, tzinfo=dt.UTC)]
    assert all(value.tzinfo is dt.UTC for value in read)


@pytest.mark.parametrize("stored", ["[]", "{}", '["张总"]', '{"来源": "展会"}', "[ ]", "3", "null", '"文本"'])
def test_json_is_read_as_the_parser_reads_it_and_empties_are_fresh_objects(stored):
    assert _json_loads(stored) == json.loads(stored)
    if stored in ("[]", "{}"):
        first = _json_loads(stored)
        first.append(1) if isinstance(first, list) else first.update(x=1)
        assert _json_loads(stored) == json.loads(stored)  # a change to one read never shows in the next

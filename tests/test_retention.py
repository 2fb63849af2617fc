"""Retention: the purge job deletes finished rows past their age, and media nothing refers to."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.bootstrap import build_runtime
from bot.clock import FrozenClock, ShiftableClock
from bot.config import ConfigError, config_from_dict
from bot.scheduler import JOBS_BY_NAME, accept_job
from domain.enums import EvidenceKind, InboxStatus, OutboxStatus
from storage import members as member_store
from storage.models import CardRecord, Dialogue, Evidence, InboxItem, JobRun, OutboxItem
from tests.conftest import START, make_config
from tests.pg import POSTGRES_URL, SKIP_REASON, scratch_database
from tests.seed import add_customer

DAY = dt.timedelta(days=1)


def inbox(msg_id: str, status: InboxStatus, processed: dt.datetime | None) -> InboxItem:
    return InboxItem(
        platform="console", platform_msg_id=msg_id, conversation_key=f"console:{msg_id}", payload={"text": "x"},
        status=status, attempts=1, received_at=processed or START, processed_at=processed,
    )


def outbox(status: OutboxStatus, sent: dt.datetime | None, *, kind: str = "text", payload: Any = None) -> OutboxItem:
    return OutboxItem(
        platform="console", target_kind="member", target_id=1, target="rep.li", kind=kind,
        payload=payload or {"text": "hi"}, status=status, attempts=1, next_attempt_at=START - 100 * DAY,
        created_at=START - 100 * DAY, sent_at=sent,
    )


def media_file(root: Path, relative: str, mtime: float) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    return path


def sha(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


async def count(runtime: Any, model: Any, *where: Any) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def runtime(request: Any, tmp_path: Path) -> Any:
    clock = ShiftableClock(base=FrozenClock(START))
    async with contextlib.AsyncExitStack() as stack:
        sections: dict[str, Any] = {}
        if request.param == "postgres":
            if not POSTGRES_URL:
                pytest.skip(SKIP_REASON)
            sections["storage"] = {"url": await stack.enter_async_context(scratch_database())}
        runtime = await build_runtime(make_config(tmp_path, **sections), clock=clock)
        await runtime.start(workers=True, scheduler=False)
        try:
            yield runtime
        finally:
            await runtime.stop()


async def run_purge(runtime: Any) -> JobRun:
    accepted, period = await accept_job(runtime, "purge", replay=True)
    await runtime.inbox.wait_processed(accepted.inbox_id)
    async with runtime.sessions() as session:
        run = await session.scalar(select(JobRun).where(JobRun.job == "purge").order_by(JobRun.id.desc()))
    assert run is not None
    return run


async def test_the_purge_deletes_only_finished_rows_older_than_their_age(runtime):
    old, recent = START - 40 * DAY, START - 2 * DAY
    customer = await add_customer(runtime, "rep.li", "华东建材")
    async with runtime.sessions() as session, session.begin():
        member = await member_store.member_by_code(session, "rep.li")
        assert member is not None
        old_done = inbox("old-done", InboxStatus.DONE, old)
        session.add_all([old_done, inbox("new-done", InboxStatus.DONE, recent), inbox("old-failed", InboxStatus.FAILED, old)])
        await session.flush()
        session.add(Evidence(customer_id=customer.id, member_id=member.id, kind=EvidenceKind.TEXT, note="纪要",
                             created_at=old, source_event_id=old_done.id))
        session.add_all([
            outbox(OutboxStatus.SENT, old), outbox(OutboxStatus.SENT, recent), outbox(OutboxStatus.DEAD, None),
            Dialogue(platform="console", conversation="a", member_id=member.id, state="s", data={},
                     updated_at=old, expires_at=START - 8 * DAY),
            Dialogue(platform="console", conversation="b", member_id=member.id, state="s", data={},
                     updated_at=recent, expires_at=START - DAY),
            CardRecord(task_id="old-answered", kind="k", payload={}, created_at=START - 400 * DAY,
                       answered_at=START - 200 * DAY),
            CardRecord(task_id="old-open", kind="k", payload={}, created_at=START - 200 * DAY),
            CardRecord(task_id="late-answer", kind="k", payload={}, created_at=START - 200 * DAY,
                       answered_at=START - 10 * DAY),
        ])
    run = await run_purge(runtime)
    assert run.status == "done", run.summary
    assert "inbox 1, outbox 1, dialogues 1, cards 2" in run.summary
    assert await count(runtime, InboxItem, InboxItem.platform_msg_id.in_(["old-done"])) == 0
    assert await count(runtime, InboxItem, InboxItem.platform_msg_id.in_(["new-done", "old-failed"])) == 2
    assert await count(runtime, OutboxItem, OutboxItem.status == OutboxStatus.DEAD) == 1
    assert await count(runtime, OutboxItem, OutboxItem.status == OutboxStatus.SENT) == 1
    assert await count(runtime, Dialogue) == 1
    assert await count(runtime, CardRecord, CardRecord.task_id == "late-answer") == 1
    assert await count(runtime, CardRecord) == 1
    # The evidence stays, without the link to its purged event.
    assert await count(runtime, Evidence, Evidence.note == "纪要", Evidence.source_event_id.is_(None)) == 1


async def test_a_second_purge_finds_nothing_more(runtime):
    async with runtime.sessions() as session, session.begin():
        session.add(outbox(OutboxStatus.SENT, START - 40 * DAY))
    assert "outbox 1" in (await run_purge(runtime)).summary
    assert "inbox 0, outbox 0, dialogues 0, cards 0, media files 0" in (await run_purge(runtime)).summary


async def test_the_clock_decides_what_is_old(runtime):
    async with runtime.sessions() as session, session.begin():
        session.add(outbox(OutboxStatus.SENT, START - 20 * DAY))
    assert "outbox 0" in (await run_purge(runtime)).summary
    runtime.clock.offset += 11 * DAY
    assert "outbox 1" in (await run_purge(runtime)).summary


async def test_unreferenced_media_past_the_grace_period_is_removed_and_referenced_media_kept(runtime):
    root = runtime.media.root
    long_ago = (START - 10 * DAY).timestamp()
    just_now = (START - dt.timedelta(hours=1)).timestamp()
    kept, orphan, fresh, chart = sha("kept"), sha("orphan"), sha("fresh"), sha("chart")
    kept_files = [media_file(root, f"evidence/{kept[:2]}/{kept}.jpg", long_ago),
                  media_file(root, f"thumbs/{kept[:2]}/{kept}.jpg", long_ago),
                  media_file(root, f"generated/{chart}.png", long_ago)]
    orphans = [media_file(root, f"evidence/{orphan[:2]}/{orphan}.png", long_ago),
               media_file(root, f"thumbs/{orphan[:2]}/{orphan}.jpg", long_ago),
               media_file(root, f"incoming/{orphan}", long_ago)]
    fresh_file = media_file(root, f"incoming/{fresh}", just_now)
    customer = await add_customer(runtime, "rep.li", "华东建材")
    async with runtime.sessions() as session, session.begin():
        member = await member_store.member_by_code(session, "rep.li")
        assert member is not None
        session.add(Evidence(customer_id=customer.id, member_id=member.id, kind=EvidenceKind.PHOTO, sha256=kept,
                             path=f"evidence/{kept[:2]}/{kept}.jpg", thumb_path=f"thumbs/{kept[:2]}/{kept}.jpg",
                             created_at=START - 10 * DAY))
        session.add(outbox(OutboxStatus.PENDING, None, kind="image", payload={"sha256": chart}))
    run = await run_purge(runtime)
    assert "media files 3" in run.summary, run.summary
    assert all(p.exists() for p in kept_files) and fresh_file.exists()
    assert not any(p.exists() for p in orphans)


async def test_a_disabled_retention_purges_nothing(tmp_path):
    runtime = await build_runtime(make_config(tmp_path, retention={"enabled": False}),
                                  clock=ShiftableClock(base=FrozenClock(START)))
    await runtime.start(workers=True, scheduler=False)
    try:
        async with runtime.sessions() as session, session.begin():
            session.add(outbox(OutboxStatus.SENT, START - 400 * DAY))
        run = await run_purge(runtime)
        assert "disabled" in run.summary
        assert await count(runtime, OutboxItem) == 1
    finally:
        await runtime.stop()


def test_the_purge_is_a_daily_job_at_the_configured_time():
    config = config_from_dict({"retention": {"run_at": "04:15"}})
    assert JOBS_BY_NAME["purge"].schedule(config).describe().endswith("04:15")


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"inbox_days": 0}, "retention.inbox_days"),
        ({"run_at": "25:00"}, "retention.run_at"),
        ({"media_grace_hours": -1}, "retention.media_grace_hours"),
    ],
)
def test_invalid_retention_settings_stop_start_up(section, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict({"retention": section})


def test_the_inbox_must_outlive_the_replay_window():
    with pytest.raises(ConfigError, match="retention.inbox_days"):
        config_from_dict({"retention": {"inbox_days": 1}, "wecom": {"timestamp_window_seconds": 2 * 86400}})

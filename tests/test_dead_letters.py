"""Dead letters reach the admins once; /死信 lists and redrives them; platform faults are retried
for a period (driven by the controllable clock against the fake WeCom server), not a count."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select, update

from bot.app import RUNTIME, create_app
from bot.clock import FrozenClock, ShiftableClock
from bot.config import config_from_dict
from domain.enums import InboxStatus, OutboxStatus
from handlers import texts_deadletters as dl_texts
from storage import audit
from storage import members as member_store
from storage import outbox as outbox_store
from storage.db import transaction
from storage.models import Evidence, InboxItem, OutboxItem
from tests.conftest import START, Console, texts_of
from tests.fakes import wecom as fakes
from tests.seed import add_customer

crypto = fakes.default_crypto()


@pytest.fixture
async def fake():
    server = fakes.FakeWeCom()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def clock() -> ShiftableClock:
    return ShiftableClock(base=FrozenClock(START))


@pytest.fixture
async def wecom(aiohttp_client, tmp_path: Path, fake, clock) -> Any:
    """The app on WeCom with its worker loops off: the test drives each batch and the clock."""
    config = config_from_dict({
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/t.db", "data_dir": str(tmp_path / "data")},
        "org": {"directory": str(Path(__file__).parent / "fixtures/org_small.toml")},
        "scheduler": {"enabled": False},
        "wecom": fakes.wecom_config(fake.base_url),
    })
    client = await aiohttp_client(create_app(config, clock=clock, workers=False))
    return client


def runtime(client: Any) -> Any:
    return client.server.app[RUNTIME]


async def queue_text(rt: Any, clock: ShiftableClock, code: str, text: str) -> int:
    async with transaction(rt.sessions) as session:
        member = await member_store.member_by_code(session, code)
        item = outbox_store.enqueue(
            session, platform="wecom", target_kind="member", target_id=member.id, target="LiMing", kind="text",
            payload={"text": text}, now=clock.now(),
        )
        await session.flush()
        return item.id


async def item(rt: Any, item_id: int) -> OutboxItem:
    async with rt.sessions() as session:
        return await session.get(OutboxItem, item_id)


async def notices(rt: Any) -> list[OutboxItem]:
    async with rt.sessions() as session:
        rows = await session.scalars(select(OutboxItem).order_by(OutboxItem.id))
        return [r for r in rows if str(r.payload.get("text", "")).startswith(dl_texts.NOTICE_HEADER)]


def sent_texts(fake: fakes.FakeWeCom) -> list[str]:
    return [m["text"]["content"] for m in fake.messages if m.get("msgtype") == "text"]


async def test_a_token_error_outlasting_one_refresh_is_delivered_exactly_once_after_recovery(wecom, fake, clock):
    rt = runtime(wecom)
    item_id = await queue_text(rt, clock, "rep.li", "报价单已发")
    fake.inject("message/send", errcode=42001, times=5)  # two refreshes' worth and more
    for _ in range(20):
        await rt.outbox.deliver_due()
        if (await item(rt, item_id)).status is OutboxStatus.SENT:
            break
        clock.offset += dt.timedelta(minutes=5)
    sent = await item(rt, item_id)
    assert sent.status is OutboxStatus.SENT and sent.attempts == 3
    assert sent_texts(fake).count("报价单已发") == 1
    assert len(fake.calls("gettoken")) >= 3
    assert await notices(rt) == []


async def test_a_45009_outage_for_the_whole_period_dead_letters_and_tells_the_admins_once(wecom, fake, clock):
    rt = runtime(wecom)
    item_id = await queue_text(rt, clock, "rep.li", "明天拜访")
    fake.inject("message/send", errcode=45009, times=100_000)
    period = dt.timedelta(hours=rt.config.outbox.retry_period_hours)
    started = clock.now()
    attempts_before_end = None
    while clock.now() - started <= period + dt.timedelta(minutes=20):
        await rt.outbox.deliver_due()
        state = await item(rt, item_id)
        if state.status is OutboxStatus.DEAD:
            break
        attempts_before_end = state.attempts
        # Nothing happens before the next attempt is due: go straight there (at least a minute on).
        clock.offset += max(state.next_attempt_at - clock.now(), dt.timedelta(minutes=1))
    dead = await item(rt, item_id)
    assert dead.status is OutboxStatus.DEAD and "45009" in dead.last_error
    assert clock.now() - started >= period  # retried for the period, not given up after a count
    assert attempts_before_end is not None and attempts_before_end > 8
    assert sent_texts(fake).count("明天拜访") == 0
    for _ in range(3):  # more sweeps, more minutes: still one notice
        clock.offset += dt.timedelta(minutes=2)
        await rt.outbox.report_failures()
        await rt.outbox.deliver_due()
    async with rt.sessions() as session:
        admins = await member_store.admins(session)
    found = await notices(rt)
    assert sorted(n.target_id for n in found) == sorted(a.id for a in admins) and len(admins) == 1
    assert "明天拜访" in found[0].payload["text"] and "45009" in found[0].payload["text"]


async def until_sent(rt: Any, item_id: int) -> None:
    """The running outbox worker delivers it (bounded wait; the outcome is asserted, not the time)."""
    for _ in range(100):
        if (await item(rt, item_id)).status is OutboxStatus.SENT:
            return
        rt.outbox.wake()
        await asyncio.sleep(0.1)


async def test_an_admin_lists_dead_letters_and_redrives_one(aiohttp_client, config, clock):
    console = Console(await aiohttp_client(create_app(config, clock=clock)))
    rt = console.runtime
    ids = []
    async with transaction(rt.sessions) as session:
        rep = await member_store.member_by_code(session, "rep.li")
        for n, text in enumerate(("第一条", "第二条")):
            row = outbox_store.enqueue(session, platform="console", target_kind="member", target_id=rep.id,
                                       target="rep.li", kind="text", payload={"text": text}, now=clock.now())
            row.status = OutboxStatus.DEAD  # given up on, one minute apart
            row.attempts = 1
            row.last_error = f"81013 user not found #{n}"
            row.next_attempt_at = clock.now() + dt.timedelta(minutes=n + 1)
            await session.flush()
            ids.append(row.id)

    listing = texts_of(await console.send("admin.he", "/死信", msg_id="dl-1"))[0]
    assert "死信(2 条" in listing
    assert listing.index("1. 发给 rep.li") < listing.index("第二条") < listing.index("2. 发给") < listing.index("第一条")
    assert "81013 user not found #1" in listing

    reply = texts_of(await console.send("admin.he", "/死信 重发 1", msg_id="dl-2"))[0]
    assert "已重发第 1 条" in reply
    assert (await item(rt, ids[0])).status is OutboxStatus.DEAD
    await until_sent(rt, ids[1])
    assert (await item(rt, ids[1])).status is OutboxStatus.SENT
    async with rt.sessions() as session:
        [entry] = await audit.entries(session, action="dead_letter.redrive")
    assert entry.subject == f"outbox:{ids[1]}"

    bad = texts_of(await console.send("admin.he", "/死信 重发 9", msg_id="dl-3"))[0]
    assert "没有第 9 条死信" in bad


async def test_a_non_admin_is_refused_dead_letters_and_nothing_changes(aiohttp_client, config, clock):
    console = Console(await aiohttp_client(create_app(config, clock=clock)))
    rt = console.runtime
    async with transaction(rt.sessions) as session:
        rep = await member_store.member_by_code(session, "rep.li")
        row = outbox_store.enqueue(session, platform="console", target_kind="member", target_id=rep.id,
                                   target="rep.li", kind="text", payload={"text": "x"}, now=clock.now())
        await session.flush()
        await session.execute(update(OutboxItem).where(OutboxItem.id == row.id).values(
            status=OutboxStatus.DEAD, last_error="gone"))
        item_id = row.id
    for text in ("/死信", "/死信 重发 1"):
        reply = texts_of(await console.send("rep.li", text))[0]
        assert "死信(" not in reply and "已重发" not in reply
        assert "管理员" in reply or "权限" in reply or "无权" in reply
    assert (await item(rt, item_id)).status is OutboxStatus.DEAD


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


async def test_a_photo_whose_media_get_fails_for_150_seconds_is_fetched_after_recovery(wecom, fake, clock):
    rt = runtime(wecom)
    await add_customer(rt, "rep.li", "华东建材", contacts=("张总",))
    touch = fakes.text_xml("LiMing", "华东建材 电话20分钟 聊了报价细节,明天发报价单", "m-touch")
    params, body = fakes.encrypted_callback(crypto, touch)
    assert (await wecom.post("/wecom/callback", params=params, data=body)).status == 200
    await rt.inbox.process_due()
    media_id = fake.add_media(jpeg_bytes(), filename="IMG_0001.jpg")
    fake.inject("media/get", status=503, times=100_000)
    params, body = fakes.encrypted_callback(crypto, fakes.image_xml("LiMing", media_id, "m-photo"))
    assert (await wecom.post("/wecom/callback", params=params, data=body)).status == 200
    started = clock.now()
    async with rt.sessions() as session:
        inbox_id = await session.scalar(select(InboxItem.id).where(InboxItem.platform_msg_id == "m-photo"))
    for _ in range(400):
        if clock.now() - started >= dt.timedelta(seconds=150):
            fake.faults.clear()  # the platform recovers
        await rt.inbox.process_due()
        async with rt.sessions() as session:
            state = await session.get(InboxItem, inbox_id)
        if state.status is not InboxStatus.PENDING:
            break
        clock.offset += dt.timedelta(seconds=1)
    assert state.status is InboxStatus.DONE
    calls = len(fake.calls("media/get"))
    assert 3 <= calls < 20  # backed off, not tried every second
    async with rt.sessions() as session:
        assert len(list(await session.scalars(select(Evidence)))) == 1
    assert await notices(rt) == []


async def test_an_inbox_failure_is_reported_to_the_admin_once(aiohttp_client, config, clock, monkeypatch):
    console = Console(await aiohttp_client(create_app(config, clock=clock, workers=False)))
    rt = console.runtime
    from storage import inbox as inbox_store

    async with transaction(rt.sessions) as session:
        inbox_id, _ = await inbox_store.store_incoming(
            session, platform="console", platform_msg_id="bad", conversation_key="console:x",
            payload={"kind": "no-such-kind"}, now=clock.now(),
        )
    for _ in range(rt.config.inbox.max_attempts + 1):
        await rt.inbox.process(inbox_id)
        clock.offset += dt.timedelta(minutes=10)
    assert await rt.outbox.report_failures() == 1
    assert await rt.outbox.report_failures() == 0
    [notice] = await notices(rt)
    assert "收到" in notice.payload["text"] and "no-such-kind" in notice.payload["text"]


def test_the_cli_redrives_one_dead_outbox_message_and_refuses_an_unknown_id(tmp_path, capsys):
    from bot.cli import main
    from storage.db import create_engine, session_factory

    path = tmp_path / "pacebot.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\ndata_dir = "{tmp_path}/data"\n', encoding="utf-8"
    )
    assert main(["--config", str(path), "db", "upgrade"]) == 0

    async def run(statement_or_rows):
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
        try:
            async with transaction(session_factory(engine)) as session:
                if statement_or_rows == "add":
                    for n in range(2):
                        row = outbox_store.enqueue(session, platform="console", target_kind="member", target_id=1,
                                                   target="rep.li", kind="text", payload={"text": f"t{n}"},
                                                   now=START)
                        row.status = OutboxStatus.DEAD
                        row.attempts = 3
                        row.last_error = "gone"
                    return None
                return {r.id: (r.status, r.attempts) for r in await session.scalars(select(OutboxItem))}
        finally:
            await engine.dispose()

    asyncio.run(run("add"))
    assert main(["--config", str(path), "outbox", "redrive", "--id", "99"]) == 2
    assert "not a dead letter" in capsys.readouterr().err
    assert asyncio.run(run("read")) == {1: (OutboxStatus.DEAD, 3), 2: (OutboxStatus.DEAD, 3)}
    assert main(["--config", str(path), "outbox", "redrive", "--id", "2"]) == 0
    assert asyncio.run(run("read")) == {1: (OutboxStatus.DEAD, 3), 2: (OutboxStatus.PENDING, 0)}
    assert main(["--config", str(path), "outbox", "redrive", "--all"]) == 0
    assert asyncio.run(run("read")) == {1: (OutboxStatus.PENDING, 0), 2: (OutboxStatus.PENDING, 0)}


async def test_without_an_admin_the_sender_is_not_told_an_admin_was_notified(aiohttp_client, config, clock):
    from bot import texts
    from bot.events import Event, EventKind
    from storage import inbox as inbox_store
    from storage.models import Member

    rt = Console(await aiohttp_client(create_app(config, clock=clock, workers=False))).runtime
    async with transaction(rt.sessions) as session:
        await session.execute(update(Member).where(Member.code == "admin.he").values(active=False))
    event = Event(platform="console", platform_msg_id="m-crash", kind=EventKind.TEXT, sender="rep.li",
                  conversation="rep.li", text="华东建材 电话20分钟")
    accepted = await rt.inbox.accept(event)
    lease = dt.timedelta(seconds=config.inbox.lease_seconds)
    for _ in range(config.inbox.max_attempts):  # each attempt claimed, then the process died
        async with transaction(rt.sessions) as session:
            assert await inbox_store.claim(session, accepted.inbox_id, clock.now(), lease)
        clock.offset += lease + dt.timedelta(seconds=1)
    await rt.inbox.process(accepted.inbox_id)
    async with rt.sessions() as session:
        replies = [r.payload["text"] for r in await session.scalars(select(OutboxItem))]
    assert replies == [texts.PROCESSING_FAILED_NO_ADMIN] and "管理员" not in replies[0]

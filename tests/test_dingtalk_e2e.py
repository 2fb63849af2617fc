"""DingTalk end to end, in both modes: callbacks (HTTP posts or Stream frames) into the real app,
replies out to the fake DingTalk (tests/fakes/dingtalk.py)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from bot import texts
from bot.app import create_app
from bot.clock import FrozenClock, ShiftableClock
from bot.platforms.dingtalk.routes import STREAM
from storage.models import Customer, Evidence, InboxItem, Obstacle, Touch
from tests.conftest import START
from tests.dingtalk_support import ADMIN, REP, app_config, count, processed, runtime, until, wait_stored
from tests.fakes import dingtalk as fakes
from tests.seed import add_customer

PATH = "/dingtalk/callback"
TOUCH = "华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访"


@pytest.fixture
async def fake():
    server = fakes.FakeDingTalk(ack_timeout=1.0)
    await server.start()
    yield server
    await server.close()


@pytest.fixture(params=["http", "stream"])
def mode(request) -> str:
    return request.param


@pytest.fixture
async def client(aiohttp_client, tmp_path, fake, mode):
    config = app_config(tmp_path, fake.base_url, mode=mode, card_template_id=fakes.CARD_TEMPLATE)
    app = await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START))))
    if mode == "stream":
        await asyncio.wait_for(app.server.app[STREAM].connected.wait(), 10)
    return app


async def deliver(client, fake, mode: str, body: dict[str, Any]) -> None:
    """DingTalk hands a callback over: an HTTP post answered 200, or a Stream frame that gets ACKed."""
    if mode == "http":
        resp = await client.post(PATH, data=json.dumps(body), headers=fakes.signed_headers())
        assert resp.status == 200, await resp.text()
    else:
        message_id = await fake.push(
            "/v1.0/card/instances/callback" if "outTrackId" in body else "/v1.0/im/bot/messages/get", body)
        await until(lambda: message_id in fake.acked)


def texts_to(fake: fakes.FakeDingTalk, user: str) -> list[str]:
    return fake.all_texts(user)


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 120, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


async def log_touch(client, fake, mode, msg_id: str = "m-1") -> None:
    hook = fake.session_webhook(REP)
    await deliver(client, fake, mode, fakes.bot_message(REP, msg_id, text=TOUCH, session_webhook=hook))
    await processed(client, msg_id)


async def test_a_text_becomes_a_touch_and_the_reply_goes_out_through_the_session_webhook(client, fake, mode):
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    await log_touch(client, fake, mode)

    async with runtime(client).sessions() as session:
        (touch,) = list(await session.scalars(select(Touch)))
    assert touch.duration_minutes == 20 and "报价细节" in touch.summary
    # The confirmation card (a template card) and nothing through the metered robot API for text.
    await until(lambda: len(fake.cards) == 1)
    (card,) = fake.cards.values()
    assert card["openSpaceId"] == f"dtv1.card//IM_ROBOT.{REP}"
    params = card["cardData"]["cardParamMap"]
    assert params["title"] == "已记录跟进 · 华东建材"
    assert json.loads(params["buttons"])[0]["action"] == f"undo:{touch.id}"
    assert card["callbackType"] == ("STREAM" if mode == "stream" else "HTTP")
    assert fake.messages == []


async def test_a_picture_is_downloaded_and_stored_as_evidence(client, fake, mode):
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    await log_touch(client, fake, mode)
    photo = jpeg_bytes()
    code = fake.add_file(photo)

    body = fakes.bot_message(REP, "m-2", msgtype="picture", content={"downloadCode": code},
                             session_webhook=fake.session_webhook(REP))
    await deliver(client, fake, mode, body)
    await processed(client, "m-2")

    assert [c.body["downloadCode"] for c in fake.calls("/v1.0/robot/messageFiles/download")] == [code]
    async with runtime(client).sessions() as session:
        (evidence,) = list(await session.scalars(select(Evidence)))
        (touch,) = list(await session.scalars(select(Touch)))
    assert evidence.sha256 == hashlib.sha256(photo).hexdigest()
    assert evidence.kind.value == "photo" and evidence.touch_id == touch.id
    await until(lambda: any("凭证" in t for t in texts_to(fake, REP)))


async def test_an_obstacle_card_click_answers_the_obstacle_and_updates_the_card(client, fake, mode):
    customer = await add_customer(runtime(client), "rep.li", "华东建材")
    await deliver(client, fake, mode, fakes.bot_message(REP, "m-move", text="华东建材 进入方案报价",
                                                        session_webhook=fake.session_webhook(REP)))
    await processed(client, "m-move")
    await until(lambda: any(c["cardData"]["cardParamMap"]["title"] == "当前最大障碍是?" for c in fake.cards.values()))
    track, card = next((t, c) for t, c in fake.cards.items() if c["cardData"]["cardParamMap"]["title"] == "当前最大障碍是?")
    button = next(b for b in json.loads(card["cardData"]["cardParamMap"]["buttons"]) if "预算审批未启动" in b["text"])

    await deliver(client, fake, mode, fake.click(REP, track, {"action": button["action"]}))
    async with runtime(client).sessions() as session:
        (inbox_id,) = list(await session.scalars(
            select(InboxItem.id).where(InboxItem.payload["kind"].as_string() == "action")))
    await runtime(client).inbox.wait_processed(inbox_id)

    await until(lambda: len(fake.card_updates) == 1)
    (update,) = fake.card_updates
    assert update["outTrackId"] == track
    assert update["cardData"]["cardParamMap"]["closed"] == "true"
    async with runtime(client).sessions() as session:
        (obstacle,) = list(await session.scalars(select(Obstacle)))
        moved = await session.get(Customer, customer.id)
    assert obstacle.option == "预算审批未启动" and moved.stage_id == obstacle.stage_id


async def test_the_same_msgid_delivered_three_times_is_one_item_and_one_touch(client, fake, mode):
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    body = fakes.bot_message(REP, "m-dup", text=TOUCH, session_webhook=fake.session_webhook(REP))
    if mode == "http":
        responses = await asyncio.gather(*(client.post(PATH, data=json.dumps(body), headers=fakes.signed_headers())
                                           for _ in range(3)))
        assert [r.status for r in responses] == [200, 200, 200]
    else:
        fake.redeliver_every = 2  # each frame pushed three times, ACKed or not
        await fake.push_bot_message(body)
        await until(lambda: len(fake.pushed) >= 3 and len(fake.acked) >= 1)
    await processed(client, "m-dup")
    assert await count(client, InboxItem) == 1
    assert await count(client, Touch) == 1
    await until(lambda: len(fake.cards) == 1)
    await asyncio.sleep(0.3)  # a second reply, if there were one, would have gone out by now
    assert len(fake.cards) == 1


async def test_a_redelivery_after_a_reconnect_is_one_touch(client, fake, mode):
    if mode == "http":
        pytest.skip("a reconnect is a Stream matter")
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    stream = client.server.app[STREAM]
    body = fakes.bot_message(REP, "m-late", text=TOUCH, session_webhook=fake.session_webhook(REP))
    message_id = await fake.push_bot_message(body)
    await until(lambda: message_id in fake.acked)
    await processed(client, "m-late")

    # DingTalk redelivers late (field reports: 16-60 s after a slow ACK), on a new connection.
    await fake.drop()
    await until(lambda: stream.connections == 2 and stream.connected.is_set())
    await fake.push("/v1.0/im/bot/messages/get", body, message_id=message_id)
    await until(lambda: fake.acked.count(message_id) == 2)
    assert await count(client, InboxItem) == 1
    assert await count(client, Touch) == 1


async def test_a_stream_dropped_mid_load_reconnects_and_loses_and_doubles_nothing(client, fake, mode):
    if mode == "http":
        pytest.skip("a dropped connection is a Stream matter")
    stream = client.server.app[STREAM]
    ids = [f"load-{i}" for i in range(40)]
    for n, msg_id in enumerate(ids):
        await fake.push_bot_message(fakes.bot_message(ADMIN, msg_id, text=f"/帮助 {n}"))
        if n == 15:
            await fake.drop()  # frames in flight and un-ACKed stay pending at DingTalk
    await until(lambda: not fake.pending, timeout=30)
    assert stream.connections >= 2
    async with runtime(client).sessions() as session:
        stored = list(await session.scalars(select(InboxItem.platform_msg_id).where(InboxItem.platform == "dingtalk")))
    assert sorted(stored) == sorted(ids)


async def test_a_group_message_is_answered_in_the_group(client, fake, mode):
    hook = fake.session_webhook(fakes.GROUP_CID)
    body = fakes.bot_message(REP, "m-group", text="/帮助", group=fakes.GROUP_CID, session_webhook=hook)
    await deliver(client, fake, mode, body)
    await processed(client, "m-group")
    await until(lambda: len(fake.all_texts(fakes.GROUP_CID)) >= 1)
    assert fake.messages == [] and fake.group_messages == []


async def test_an_unknown_staff_id_gets_one_polite_reply_and_admins_a_note(client, fake, mode):
    for msg_id in ("s-1", "s-2"):
        body = fakes.bot_message("9999", msg_id, text="你好", session_webhook=fake.session_webhook("9999"))
        await deliver(client, fake, mode, body)
        await processed(client, msg_id)
    await until(lambda: len(texts_to(fake, "9999")) >= 1 and len(texts_to(fake, ADMIN)) >= 1)
    await asyncio.sleep(0.3)
    assert texts_to(fake, "9999") == [texts.UNKNOWN_MEMBER]
    (note,) = texts_to(fake, ADMIN)
    assert "9999" in note


async def test_every_request_to_dingtalk_went_over_https(client, fake, mode):
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    await log_touch(client, fake, mode)
    await until(lambda: len(fake.cards) == 1)
    assert fake.calls("/v1.0/oauth2/accessToken")
    assert {r.scheme for r in fake.requests} == {"https"}


async def test_a_stored_event_is_not_lost_when_the_ack_is(client, fake, mode):
    """Stored, then the socket drops before the ACK: DingTalk redelivers, the inbox absorbs it."""
    if mode == "http":
        pytest.skip("ACKs are a Stream matter")
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    fake.ack_delay = 0.0
    message_id = await fake.push_bot_message(fakes.bot_message(REP, "m-noack", text=TOUCH))
    await wait_stored(client, "m-noack")
    await fake.drop()
    await until(lambda: message_id not in fake.pending, timeout=30)
    await processed(client, "m-noack")
    assert await count(client, Touch) == 1

"""Bad input from (or pretending to be) DingTalk: a clear refusal, nothing stored, nothing lost."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from sqlalchemy import select

from bot import texts
from bot.app import create_app
from bot.clock import FrozenClock, ShiftableClock
from bot.platforms.dingtalk.routes import STREAM
from storage.models import InboxItem, Touch
from tests.conftest import START
from tests.dingtalk_support import REP, app_config, count, processed, runtime, until
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


async def make_client(aiohttp_client, tmp_path, fake, **dingtalk):
    config = app_config(tmp_path, fake.base_url, **dingtalk)
    return await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START))))


@pytest.fixture
async def http(aiohttp_client, tmp_path, fake):
    return await make_client(aiohttp_client, tmp_path, fake, mode="http", card_template_id=fakes.CARD_TEMPLATE)


@pytest.fixture
async def stream(aiohttp_client, tmp_path, fake):
    client = await make_client(aiohttp_client, tmp_path, fake, mode="stream")
    await asyncio.wait_for(client.server.app[STREAM].connected.wait(), 10)
    return client


def body(msg_id: str = "m-1", **kw) -> bytes:
    return json.dumps(fakes.bot_message(REP, msg_id, text="/帮助", **kw)).encode()


# ---------------------------------------------------------------------- HTTP callbacks


@pytest.mark.parametrize(
    "headers",
    [
        {"timestamp": str(int(time.time() * 1000)), "sign": "AAAA"},
        fakes.signed_headers("another-secret"),
        fakes.signed_headers(timestamp_ms=int(time.time() * 1000) - 2 * 3600 * 1000),
        fakes.signed_headers(timestamp_ms=int(time.time() * 1000) + 2 * 3600 * 1000),
        {"timestamp": "abc", "sign": "x"},
        {"timestamp": str(int(time.time() * 1000)), "sign": "é" * 44},
        {},
    ],
    ids=["wrong", "other-secret", "stale", "future", "not-a-number", "non-ascii", "missing"],
)
async def test_a_bad_or_stale_signature_is_refused_with_403_and_nothing_is_stored(http, headers):
    resp = await http.post(PATH, data=body(), headers=headers)
    assert resp.status == 403
    assert await count(http, InboxItem) == 0


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b'{"msgtype": "text"}', b'"x"',
                                     json.dumps({**fakes.bot_message(REP, "m"), "text": "no object"}).encode(),
                                     json.dumps({**fakes.bot_message(REP, "m"), "createAt": "yesterday"}).encode()],
                         ids=["broken", "array", "no-msgid", "string", "text-not-object", "bad-createAt"])
async def test_malformed_json_is_refused_with_400_and_nothing_is_stored(http, payload):
    resp = await http.post(PATH, data=payload, headers=fakes.signed_headers())
    assert resp.status == 400
    assert await count(http, InboxItem) == 0


async def test_a_body_over_1_mb_is_refused_with_413(http):
    big = json.dumps(fakes.bot_message(REP, "m-big", text="x" * 1_100_000)).encode()
    resp = await http.post(PATH, data=big, headers=fakes.signed_headers())
    assert resp.status == 413
    assert await count(http, InboxItem) == 0


async def test_a_chunked_body_over_1_mb_is_refused_with_413_without_a_declared_length(http):
    big = json.dumps(fakes.bot_message(REP, "m-big", text="x" * 1_100_000)).encode()

    async def chunks():
        for start in range(0, len(big), 65_536):
            yield big[start : start + 65_536]

    resp = await http.post(PATH, data=chunks(), headers=fakes.signed_headers())
    assert resp.status == 413
    assert await count(http, InboxItem) == 0


async def test_a_message_for_another_robot_is_refused_with_403(http):
    resp = await http.post(PATH, data=body(robot_code="dingotherrobot"), headers=fakes.signed_headers())
    assert resp.status == 403
    assert await count(http, InboxItem) == 0


async def test_message_types_pacebot_does_not_use_are_acknowledged_and_not_stored(http):
    payload = json.dumps(fakes.bot_message(REP, "m-x", msgtype="interactiveCard", content={})).encode()
    resp = await http.post(PATH, data=payload, headers=fakes.signed_headers())
    assert resp.status == 200
    assert await count(http, InboxItem) == 0


async def test_a_click_on_an_unknown_card_changes_nothing(http, fake):
    click = fake.click(REP, "undo-0123456789abcdef", {"action": "undo:999"})
    resp = await http.post(PATH, data=json.dumps(click), headers=fakes.signed_headers())
    assert resp.status == 200
    async with runtime(http).sessions() as session:
        (inbox_id,) = list(await session.scalars(select(InboxItem.id)))
    await runtime(http).inbox.wait_processed(inbox_id)
    await until(lambda: len(fake.all_texts(REP)) >= 1)
    assert fake.all_texts(REP) == [texts.CARD_UNKNOWN]  # told once; nothing else happens
    assert fake.card_updates == [] and await count(http, Touch) == 0


async def test_a_second_click_on_an_answered_card_changes_nothing(http, fake):
    await add_customer(runtime(http), "rep.li", "华东建材", contacts=("张总",))
    resp = await http.post(PATH, data=json.dumps(fakes.bot_message(REP, "m-t", text=TOUCH)),
                           headers=fakes.signed_headers())
    assert resp.status == 200
    await processed(http, "m-t")
    await until(lambda: len(fake.cards) == 1)
    (track, card), = fake.cards.items()
    action = json.loads(card["cardData"]["cardParamMap"]["buttons"])[0]["action"]
    for values in (["a"], ["b"]):  # two different clicks: two events
        click = fake.click(REP, track, {"action": action, "values": values})
        assert (await http.post(PATH, data=json.dumps(click), headers=fakes.signed_headers())).status == 200
    async with runtime(http).sessions() as session:
        ids = list(await session.scalars(select(InboxItem.id).where(InboxItem.payload["kind"].as_string() == "action")))
    for inbox_id in ids:
        await runtime(http).inbox.wait_processed(inbox_id)
    await until(lambda: len(fake.card_updates) >= 1)
    await asyncio.sleep(0.5)
    assert len(fake.card_updates) == 1  # the touch was undone once; the second click was refused
    async with runtime(http).sessions() as session:
        (touch,) = list(await session.scalars(select(Touch)))
    assert touch.undone_at is not None


# ---------------------------------------------------------------------- Stream frames


async def test_a_stream_frame_that_is_not_json_is_skipped_and_the_next_one_stored(stream, fake):
    await fake.send_raw("this is not json")
    await fake.send_raw("[1,2,3]")
    message_id = await fake.push_bot_message(fakes.bot_message(REP, "m-after", text="/帮助"))
    await until(lambda: message_id in fake.acked)
    assert stream.server.app[STREAM].connections == 1
    assert await count(stream, InboxItem) == 1


async def test_a_frame_with_malformed_data_is_acknowledged_and_not_stored(stream, fake):
    message_id = await fake.push("/v1.0/im/bot/messages/get", {"msgtype": "text"})
    await until(lambda: message_id in fake.acked)
    assert await count(stream, InboxItem) == 0


async def test_an_unknown_topic_is_acknowledged_as_unknown_and_not_stored(stream, fake):
    message_id = await fake.push("/v1.0/unknown/topic", {"x": 1})
    await until(lambda: message_id in fake.acked)
    assert await count(stream, InboxItem) == 0


async def test_a_ping_is_echoed_with_its_data(stream, fake):
    message_id = await fake.system("ping", json.dumps({"opaque": "abc-123"}))
    await until(lambda: len(fake.pongs) == 1)
    (pong,) = fake.pongs
    assert pong["code"] == 200 and pong["headers"]["messageId"] == message_id
    assert json.loads(pong["data"]) == {"opaque": "abc-123"}


async def test_a_disconnect_announcement_reconnects_with_a_fresh_ticket(stream, fake):
    client = stream.server.app[STREAM]
    await fake.system("disconnect")
    await until(lambda: client.connections == 2 and client.connected.is_set())
    assert len(fake.calls("/v1.0/gateway/connections/open")) == 2
    message_id = await fake.push_bot_message(fakes.bot_message(REP, "m-new", text="/帮助"))
    await until(lambda: message_id in fake.acked)
    assert await count(stream, InboxItem) == 1


async def test_a_disconnect_in_the_middle_of_a_frame_reconnects_and_loses_nothing(stream, fake):
    client = stream.server.app[STREAM]
    await fake.drop_mid_frame()
    message_id = await fake.push_bot_message(fakes.bot_message(REP, "m-mid", text="/帮助"))  # pending: no socket
    await until(lambda: message_id in fake.acked, timeout=30)
    assert client.connections == 2
    assert await count(stream, InboxItem) == 1


async def test_refused_tickets_are_retried_until_the_gateway_answers(stream, fake):
    client = stream.server.app[STREAM]
    client.backoff_base = 0.05  # the back-off's doubling is tested on its own (backoff_delay)
    fake.refuse_tickets = 2
    await fake.drop()
    await until(lambda: client.connections == 2 and client.connected.is_set(), timeout=30)
    assert len(fake.calls("/v1.0/gateway/connections/open")) == 4  # first, two refused, the good one

"""WeCom end to end: encrypted callbacks into the real app, replies out to the fake WeCom server."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot import texts
from bot.app import RUNTIME, create_app
from bot.clock import FrozenClock, ShiftableClock
from bot.config import config_from_dict
from domain.enums import OutboxStatus
from handlers import texts as handler_texts
from storage.models import Evidence, InboxItem, OutboxItem, Touch
from tests.conftest import START, settle
from tests.fakes import wecom as fakes
from tests.seed import add_customer

PATH = "/wecom/callback"


@pytest.fixture
async def fake():
    server = fakes.FakeWeCom()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path, fake):
    config = config_from_dict({
        "storage": {"url": f"sqlite+aiosqlite:///{tmp_path}/t.db", "data_dir": str(tmp_path / "data")},
        "org": {"directory": str(Path(__file__).parent / "fixtures/org_small.toml")},
        "inbox": {"poll_seconds": 0.2},
        "outbox": {"poll_seconds": 0.2},
        "scheduler": {"enabled": False},
        "wecom": fakes.wecom_config(fake.base_url),
    })
    app = create_app(config, clock=ShiftableClock(base=FrozenClock(START)))
    return await aiohttp_client(app)


def runtime(client) -> Any:
    return client.server.app[RUNTIME]


crypto = fakes.default_crypto()


async def post(client, plaintext: str | bytes, **kw: Any):
    params, body = fakes.encrypted_callback(crypto, plaintext)
    return await client.post(PATH, params=params, data=body, **kw)


async def inbox_ids(client, msg_id: str) -> list[int]:
    async with runtime(client).sessions() as session:
        return list(await session.scalars(
            select(InboxItem.id).where(InboxItem.platform == "wecom", InboxItem.platform_msg_id == msg_id)))


async def processed(client, msg_id: str) -> int:
    (inbox_id,) = await inbox_ids(client, msg_id)
    await runtime(client).inbox.wait_processed(inbox_id)
    return inbox_id


async def until(predicate, timeout: float = 15.0) -> None:
    """Wait (bounded) until the outbox has delivered what the test expects."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def stored_count(client, model) -> int:
    async with runtime(client).sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


def to(fake: fakes.FakeWeCom, userid: str) -> list[dict[str, Any]]:
    return [m for m in fake.messages if m["touser"] == userid]


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 120, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


async def log_touch(client, fake, msg_id: str = "m-1") -> dict[str, Any]:
    text = "华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访"
    resp = await post(client, fakes.text_xml("LiMing", text, msg_id))
    assert resp.status == 200 and await resp.read() == b""
    await processed(client, msg_id)
    await until(lambda: any(m["msgtype"] == "template_card" for m in to(fake, "LiMing")))
    return next(m for m in to(fake, "LiMing") if m["msgtype"] == "template_card")


async def test_url_verification_through_the_app(client):
    encrypted = crypto.encrypt(b"echo-1234567890")
    params = {"msg_signature": crypto.sign("1790000000", "77", encrypted), "timestamp": "1790000000",
              "nonce": "77", "echostr": encrypted}
    resp = await client.get(PATH, params=params)
    assert resp.status == 200
    assert await resp.read() == b"echo-1234567890"


async def test_a_text_callback_is_stored_logged_as_a_touch_and_answered_with_a_card(client, fake):
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    message = await log_touch(client, fake)

    async with runtime(client).sessions() as session:
        (touch,) = list(await session.scalars(select(Touch)))
    assert touch.duration_minutes == 20 and "报价细节" in touch.summary
    card = message["template_card"]
    assert card["card_type"] == "button_interaction"
    assert card["main_title"]["title"] == "已记录跟进 · 华东建材"
    assert card["button_list"] == [{"text": "撤销", "style": 3, "key": f"undo:{touch.id}"}]
    assert message["agentid"] == fakes.AGENT_ID and message["enable_duplicate_check"] == 1


async def test_a_photo_callback_fetches_the_media_and_stores_it_as_evidence(client, fake):
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    await log_touch(client, fake)
    photo = jpeg_bytes()
    media_id = fake.add_media(photo, filename="IMG_0001.jpg")

    resp = await post(client, fakes.image_xml("LiMing", media_id, "m-2"))
    assert resp.status == 200
    await processed(client, "m-2")

    assert [c.query["media_id"] for c in fake.calls("media/get")] == [media_id]
    async with runtime(client).sessions() as session:
        (evidence,) = list(await session.scalars(select(Evidence)))
        (touch,) = list(await session.scalars(select(Touch)))
    assert evidence.sha256 == hashlib.sha256(photo).hexdigest()
    assert evidence.kind.value == "photo" and evidence.touch_id == touch.id
    await until(lambda: any("凭证" in m.get("text", {}).get("content", "") for m in to(fake, "LiMing")))


async def test_a_card_click_updates_the_card_through_update_template_card(client, fake):
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    message = await log_touch(client, fake)
    task_id = message["template_card"]["task_id"]
    key = message["template_card"]["button_list"][0]["key"]
    code = fake.click("LiMing", task_id)

    resp = await post(client, fakes.card_event_xml("LiMing", task_id=task_id, event_key=key, response_code=code))
    assert resp.status == 200
    async with runtime(client).sessions() as session:
        (inbox_id,) = list(await session.scalars(
            select(InboxItem.id).where(InboxItem.payload["kind"].as_string() == "action")))
    await runtime(client).inbox.wait_processed(inbox_id)

    await until(lambda: len(fake.card_updates) == 1)
    (update,) = fake.card_updates
    assert update["_task_id"] == task_id and update["response_code"] == code
    assert update["button"] == {"replace_name": handler_texts.UNDONE_NOTE}
    await until(lambda: any("已撤销" in m.get("text", {}).get("content", "") for m in to(fake, "LiMing")))
    async with runtime(client).sessions() as session:
        (touch,) = list(await session.scalars(select(Touch)))
    assert touch.undone_at is not None


async def test_the_same_msgid_delivered_three_times_at_once_is_one_item_and_one_touch(client, fake):
    await add_customer(runtime(client), "rep.li", "华东建材", contacts=("张总",))
    xml = fakes.text_xml("LiMing", "华东建材 张总 电话20分钟 聊了报价细节,下周三上门拜访", "m-dup")
    responses = await asyncio.gather(*(post(client, xml) for _ in range(3)))
    assert [r.status for r in responses] == [200, 200, 200]

    assert len(await inbox_ids(client, "m-dup")) == 1
    await processed(client, "m-dup")
    assert await stored_count(client, Touch) == 1
    await until(lambda: len(to(fake, "LiMing")) >= 1)
    await settle(runtime(client))  # a second reply, if there were one, has gone out now
    assert len(to(fake, "LiMing")) == 1


async def test_a_bad_signature_is_refused_with_403_and_nothing_is_stored(client):
    params, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "hi", "m-sig"))
    params["msg_signature"] = "0" * 40
    resp = await client.post(PATH, params=params, data=body)
    assert resp.status == 403
    assert await stored_count(client, InboxItem) == 0


async def test_a_non_ascii_signature_is_refused_with_403(client):
    params, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "hi", "m-sig"))
    params["msg_signature"] = "é" * 40
    resp = await client.post(PATH, params=params, data=body)
    assert resp.status == 403
    assert await stored_count(client, InboxItem) == 0


async def test_a_create_time_out_of_range_is_refused_with_400(client):
    resp = await post(client, fakes.message_xml("text", sender="LiMing", fields={"Content": "hi"}, msg_id="m-t",
                                                 created=10**20))
    assert resp.status == 400
    assert await stored_count(client, InboxItem) == 0


async def test_an_envelope_for_another_corp_is_refused_with_403(client):
    other = fakes.WeComCrypto(fakes.TOKEN, fakes.AES_KEY, "wwanothercorp")
    params, body = fakes.encrypted_callback(other, fakes.text_xml("LiMing", "hi", "m-corp"))
    resp = await client.post(PATH, params=params, data=body)
    assert resp.status == 403
    assert await stored_count(client, InboxItem) == 0


@pytest.mark.parametrize("fixture", ["hostile_xxe.xml", "hostile_billion_laughs.xml", "hostile_external_dtd.xml"])
async def test_hostile_xml_inside_the_envelope_is_refused_with_400(client, fixture):
    hostile = (Path(__file__).parent / "fixtures" / "wecom" / fixture).read_bytes()
    resp = await post(client, hostile)
    assert resp.status == 400
    assert await stored_count(client, InboxItem) == 0


async def test_hostile_xml_as_the_envelope_is_refused_with_400(client):
    hostile = (Path(__file__).parent / "fixtures" / "wecom" / "hostile_xxe.xml").read_bytes()
    params, _ = fakes.encrypted_callback(crypto, b"<xml/>")
    resp = await client.post(PATH, params=params, data=hostile)
    assert resp.status == 400
    assert await stored_count(client, InboxItem) == 0


async def test_a_body_over_1_mb_is_refused_with_413(client):
    params, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "x" * 1_100_000, "m-big"))
    assert len(body) > 1_048_576
    resp = await client.post(PATH, params=params, data=body)
    assert resp.status == 413
    assert await stored_count(client, InboxItem) == 0


async def test_a_chunked_body_over_1_mb_is_refused_with_413_without_a_declared_length(client):
    params, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "x" * 1_100_000, "m-big2"))

    async def chunks():
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    resp = await client.post(PATH, params=params, data=chunks())
    assert resp.status == 413
    assert await stored_count(client, InboxItem) == 0


async def test_missing_query_parameters_are_refused_with_400(client):
    _, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "hi", "m-q"))
    resp = await client.post(PATH, data=body)
    assert resp.status == 400


async def test_message_types_pacebot_does_not_use_are_acknowledged_and_not_stored(client):
    link = (Path(__file__).parent / "fixtures" / "wecom" / "link.xml").read_bytes()
    resp = await post(client, link)
    assert resp.status == 200
    assert await stored_count(client, InboxItem) == 0


async def test_an_unknown_userid_gets_one_polite_reply(client, fake):
    for msg_id in ("s-1", "s-2"):
        resp = await post(client, fakes.text_xml("Stranger", "你好", msg_id))
        assert resp.status == 200
        await processed(client, msg_id)
    await until(lambda: len(to(fake, "Stranger")) >= 1)
    await settle(runtime(client))
    (reply,) = to(fake, "Stranger")
    assert reply["text"]["content"] == texts.UNKNOWN_MEMBER
    async with runtime(client).sessions() as session:
        statuses = list(await session.scalars(select(OutboxItem.status).where(OutboxItem.platform == "wecom")))
    assert statuses == [OutboxStatus.SENT]


async def test_an_obstacle_card_click_answers_the_obstacle_and_updates_the_card(client, fake):
    from storage.models import Customer, Obstacle

    customer = await add_customer(runtime(client), "rep.li", "华东建材")
    resp = await post(client, fakes.text_xml("LiMing", "华东建材 进入方案报价", "m-move"))
    assert resp.status == 200
    await processed(client, "m-move")
    await until(lambda: any(m["msgtype"] == "template_card" for m in to(fake, "LiMing")))
    card = next(m for m in to(fake, "LiMing") if m["msgtype"] == "template_card")["template_card"]
    assert card["main_title"]["title"] == "当前最大障碍是?"
    button = next(b for b in card["button_list"] if "预算审批未启动" in b["text"])
    code = fake.click("LiMing", card["task_id"])

    resp = await post(client, fakes.card_event_xml("LiMing", task_id=card["task_id"], event_key=button["key"],
                                                   response_code=code))
    assert resp.status == 200
    async with runtime(client).sessions() as session:
        (inbox_id,) = list(await session.scalars(
            select(InboxItem.id).where(InboxItem.payload["kind"].as_string() == "action")))
    await runtime(client).inbox.wait_processed(inbox_id)

    await until(lambda: len(fake.card_updates) == 1)
    (update,) = fake.card_updates
    assert update["_task_id"] == card["task_id"] and update["response_code"] == code
    async with runtime(client).sessions() as session:
        (obstacle,) = list(await session.scalars(select(Obstacle)))
        moved = await session.get(Customer, customer.id)
    assert obstacle.option == "预算审批未启动" and moved.stage_id == obstacle.stage_id

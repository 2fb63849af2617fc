"""Bad input gets a clear Chinese answer and changes nothing."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib

import pytest
from PIL import Image
from sqlalchemy import func, select

from storage.models import Customer, Dialogue, Evidence, InboxItem, OutboxItem, Touch
from tests.conftest import cards_of, texts_of
from tests.seed import add_customer


async def count(console, model) -> int:
    async with console.runtime.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def domain_rows(console) -> tuple[int, int, int, int]:
    return (
        await count(console, Touch),
        await count(console, Evidence),
        await count(console, Customer),
        await count(console, Dialogue),
    )


def huge_png(width: int = 20_000, height: int = 20_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


async def test_unknown_member_is_answered_politely_once_and_admins_are_told(console):
    first = await console.send("stranger", "华东建材 电话20分钟 聊了报价,明天回电")
    assert texts_of(first)[0].startswith("您好,您还不是 Pacebot 的成员")
    admin_notes = await console.feed(member="admin.he")
    assert any("stranger" in item["payload"]["text"] for item in admin_notes)
    second = await console.send("stranger", "在吗")
    assert second["replies"] == []
    assert await domain_rows(console) == (0, 0, 0, 0)


async def test_empty_message_is_refused(console):
    reply = await console.send("rep.li", "   ")
    assert texts_of(reply)[0].startswith("消息是空的")
    assert await domain_rows(console) == (0, 0, 0, 0)


async def test_a_message_of_zero_width_characters_creates_no_customer(console):
    reply = await console.send("rep.li", "\u200b\u200c\u200d\ufeff\u2060")
    assert texts_of(reply)[0].startswith("消息是空的")
    assert await domain_rows(console) == (0, 0, 0, 0)


async def test_a_new_lead_name_keeps_only_its_visible_characters(console):
    reply = await console.send("rep.li", "华东\u200b新材 电话20分钟 聊了报价,明天回电")
    [card] = cards_of(reply)
    await console.click("rep.li", card, "新建线索「华东新材」")
    async with console.runtime.sessions() as session:
        names = list(await session.scalars(select(Customer.name)))
    assert names == ["华东新材"]


async def test_a_5000_character_message_is_refused(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "华东建材 " + "聊" * 5000)
    assert texts_of(reply) == ["消息太长了(5005字),请控制在1000字以内,分几条发送。"]
    assert await domain_rows(console) == (0, 0, 1, 0)


async def test_a_text_file_renamed_jpg_is_refused(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    reply = await console.upload("rep.li", "这不是图片".encode() * 20, "photo.jpg")
    assert "图片" in texts_of(reply)[0]
    assert await count(console, Evidence) == 0
    touch = (await _touches(console))[0]
    assert touch.evidence_status.value == "pending"


async def test_a_20000_by_20000_png_is_refused_without_decoding(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单")
    reply = await console.upload("rep.li", huge_png(), "big.png", content_type="image/png")
    assert "像素" in texts_of(reply)[0]
    assert await count(console, Evidence) == 0


async def test_an_ambiguous_customer_saves_nothing_until_chosen(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    await add_customer(console.runtime, "rep.li", "华东建材二厂")
    await add_customer(console.runtime, "rep.li", "华东建筑")
    reply = await console.send("rep.li", "华东 电话20分钟 聊了报价,明天回电")
    assert cards_of(reply)[0]["title"] == "是哪个客户?"
    assert await count(console, Touch) == 0


async def test_a_next_action_date_in_the_past_is_asked_again(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    reply = await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,11月20日发报价单")
    assert texts_of(reply)[0].startswith("下次动作的日期11月20日 周五已经过去了")
    assert await count(console, Touch) == 0
    reply = await console.send("rep.li", "明天")
    assert cards_of(reply)[0]["title"] == "已记录跟进 · 华东建材"
    assert (await _touches(console))[0].next_action == "发报价单"


async def test_the_same_message_id_delivered_three_times_concurrently_logs_one_touch(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    text = "华东建材 电话20分钟 聊了报价细节,明天发报价单"
    replies = await asyncio.gather(*(console.send("rep.li", text, msg_id="wx-123") for _ in range(3)))
    assert sorted(r["status"] for r in replies) == ["accepted", "duplicate", "duplicate"]
    assert all(r["event_id"] == replies[0]["event_id"] for r in replies)
    duplicate = next(r for r in replies if r["status"] == "duplicate")
    assert duplicate["notice"].startswith("重复的消息")
    assert await count(console, Touch) == 1
    assert await count(console, InboxItem) == 1
    assert await count(console, OutboxItem) == 1


async def test_clock_control_is_refused_unless_enabled(aiohttp_client, tmp_path, clock):
    from bot.app import create_app
    from tests.conftest import make_config

    config = make_config(tmp_path, console={"clock_control": False})
    client = await aiohttp_client(create_app(config, clock=clock))
    response = await client.post("/console/api/clock", json={"advance_minutes": 60})
    assert response.status == 403
    assert "clock_control" in (await response.json())["error"]


async def test_malformed_console_requests_get_400(console):
    for body in ("not json", '["a list"]', '{"text": "no member"}'):
        response = await console.client.post(
            "/console/api/messages", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400
    response = await console.client.post("/console/api/actions", json={"member": "rep.li", "task_id": "x", "action": 3})
    assert response.status == 400


async def test_a_console_message_id_longer_than_the_inbox_allows_gets_400(console):
    response = await console.client.post(
        "/console/api/messages", json={"member": "rep.li", "text": "你好", "msg_id": "m" * 129}
    )
    assert response.status == 400
    assert "msg_id" in (await response.json())["error"]
    reply = await console.send("rep.li", "你好", msg_id="m" * 128)
    assert reply["status"] == "accepted"


async def test_a_forged_card_action_is_refused(console):
    response = await console.client.post(
        "/console/api/actions", json={"member": "rep.li", "task_id": "touch-deadbeef", "action": "undo:1"}
    )
    assert texts_of(await response.json()) == ["找不到这张卡片,可能已过期。"]


async def test_another_members_card_cannot_be_clicked(console):
    await add_customer(console.runtime, "rep.li", "华东建材")
    card = cards_of(await console.send("rep.li", "华东建材 电话20分钟 聊了报价细节,明天发报价单"))[0]
    reply = await console.click("rep.zhao", card, "撤销")
    assert texts_of(reply) == ["这张卡片不是发给您的,无法操作。"]
    assert (await _touches(console))[0].undone_at is None


async def _touches(console) -> list[Touch]:
    async with console.runtime.sessions() as session:
        return list(await session.scalars(select(Touch)))


def test_huge_png_helper_declares_the_size():
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(huge_png()))


async def test_uploaded_files_are_served_sandboxed_and_traversal_is_refused(console):
    store = console.runtime.media
    stored = store.store(b"<html><script>alert(1)</script></html>", kind_hint="file", filename="x.html")
    response = await console.client.get(f"/console/media/{stored.path}")
    assert response.status == 200
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for bad in ("incoming/" + stored.sha256, "evidence/../incoming/x", "evidence/%2e%2e/%2e%2e/pacebot.db", ".x/y"):
        assert (await console.client.get(f"/console/media/{bad}")).status == 404


async def test_the_console_refuses_other_machines_unless_allowed(console):
    from aiohttp.test_utils import make_mocked_request

    from bot.platforms.console.routes import local_only

    async def handler(request):
        from aiohttp import web

        return web.Response(text="ok")

    class Transport:
        def get_extra_info(self, name, default=None):
            return ("10.1.2.3", 50000) if name == "peername" else default

    app = console.client.server.app
    request = make_mocked_request("GET", "/console/api/org", app=app, transport=Transport())
    from aiohttp import web

    with pytest.raises(web.HTTPForbidden) as info:
        await local_only(request, handler)
    assert info.value.status == 403 and "allow_remote" in info.value.text
    api = make_mocked_request("GET", "/healthz", app=app, transport=Transport())
    assert (await local_only(api, handler)).text == "ok"  # only the console is local-only

"""The WeCom client, renderer and sender against the fake WeCom server (tests/fakes/wecom.py)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import os
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from bot.config import ConfigError, WeComConfig, config_from_dict
from bot.events import MediaRef
from bot.platforms.base import DeliveryError, MediaUnavailable, Outgoing, RateLimit
from bot.platforms.wecom import parse, render
from bot.platforms.wecom.adapter import WeComPlatform, fit_image, robot_key
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.directory import sync_directory
from cards.model import Button, ButtonStyle, Card, CardField, ChoiceMode, new_task_id
from domain.enums import Role
from storage.media import MediaStore
from storage.models import Member, Team
from tests.fakes import wecom as fakes

_ids = itertools.count(1)


@pytest.fixture
async def fake():
    server = fakes.FakeWeCom(robot_keys={"robot-key-0001"}, chat_ids={"chat-east"})
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def media(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def make_config(fake: fakes.FakeWeCom, **overrides) -> WeComConfig:
    return config_from_dict({"wecom": fakes.wecom_config(fake.base_url, **overrides)}).wecom


@pytest.fixture
async def platform(fake, media):
    wecom = WeComPlatform(make_config(fake), media=media, max_media_bytes=1_000_000)
    await wecom.start()
    yield wecom
    await wecom.close()


def item(kind: str, payload: dict, *, target: str = "LiMing", target_kind: str = "member",
         card_state: dict | None = None, item_id: int | None = None, attempts: int = 1) -> Outgoing:
    return Outgoing(
        id=item_id or next(_ids), kind=kind, target_kind=target_kind, target=target, payload=payload,
        attempts=attempts, card_state=card_state,
    )


def undo_card(**overrides) -> Card:
    fields = {
        "task_id": new_task_id("undo"),
        "title": "已记录跟进:华东建材",
        "body": "电话 20 分钟,聊了报价细节。下次动作:周三上门拜访。",
        "fields": (CardField("客户", "华东建材"), CardField("渠道", "电话")),
        "buttons": (Button("撤销", "undo:42", ButtonStyle.DANGER),),
    }
    fields.update(overrides)
    return Card(**fields)


def png_bytes(size=(64, 48), noise: bool = False) -> bytes:
    if noise:
        img = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        img = Image.new("RGB", size, (20, 120, 200))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------- configuration


def test_config_defaults_keep_wecom_off():
    config = config_from_dict({})
    assert config.wecom.enabled is False
    assert config.wecom.callback_path == "/wecom/callback"
    assert config.wecom.max_body_bytes == 1_048_576
    assert (config.wecom.member_per_minute, config.wecom.member_per_hour, config.wecom.robot_per_minute) == (30, 1000, 20)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"encoding_aes_key": "short"}, "wecom.encoding_aes_key"),
        ({"encoding_aes_key": fakes.AES_KEY + "x"}, "wecom.encoding_aes_key"),
        ({"corp_id": ""}, "wecom.corp_id"),
        ({"secret": ""}, "wecom.secret"),
        ({"agent_id": 0}, "wecom.agent_id"),
        ({"token": "has spaces"}, "wecom.token"),
        ({"api_base": "qyapi.weixin.qq.com"}, "wecom.api_base"),
        ({"callback_path": "wecom"}, "wecom.callback_path"),
        ({"max_body_bytes": 0}, "wecom.max_body_bytes"),
        ({"robot_per_minute": 0}, "wecom.robot_per_minute"),
        ({"duplicate_check_seconds": 5 * 3600}, "wecom.duplicate_check_seconds"),
        ({"agent_id": "1000002"}, "wecom.agent_id"),
    ],
)
def test_invalid_wecom_config_stops_start_up_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict({"wecom": fakes.wecom_config("https://qyapi.weixin.qq.com", **overrides)})


def test_a_malformed_aes_key_is_refused_even_while_wecom_is_disabled():
    with pytest.raises(ConfigError, match=r"wecom\.encoding_aes_key"):
        config_from_dict({"wecom": {"encoding_aes_key": "x" * 42}})


def test_the_documented_wecom_block_is_valid_and_shows_the_defaults():
    import re
    import tomllib

    doc = (Path(__file__).parents[1] / "docs" / "wecom.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    assert config_from_dict(tomllib.loads(block)).wecom == WeComConfig()


def test_secrets_can_come_from_the_environment():
    raw = fakes.wecom_config("https://qyapi.weixin.qq.com", secret="${WECOM_SECRET}", agent_id="${WECOM_AGENT}")
    config = config_from_dict({"wecom": raw}, {"WECOM_SECRET": "s3cret", "WECOM_AGENT": "1000002"})
    assert (config.wecom.secret, config.wecom.agent_id) == ("s3cret", 1000002)
    with pytest.raises(ConfigError, match=r"wecom\.secret: environment variable WECOM_SECRET is not set"):
        config_from_dict({"wecom": raw}, {"WECOM_AGENT": "1"})


# ---------------------------------------------------------------------- addresses and limits


def test_member_address_is_the_wecom_userid(platform):
    assert platform.member_address(Member(code="rep.li", name="李明", wecom_userid="LiMing")) == "LiMing"
    assert platform.member_address(Member(code="rep.zhao", name="赵磊")) is None


@pytest.mark.parametrize(
    ("group_chat", "address"),
    [
        ({"wecom_webhook": "robot-key-0001"}, "robot:robot-key-0001"),
        ({"wecom_webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"},
         "robot:693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"),
        ({"wecom_chatid": "chat-east", "wecom_webhook": "robot-key-0001"}, "chat:chat-east"),
        ({"wecom_webhook": "not a key!"}, None),
        ({"dingtalk_webhook": "x"}, None),
        ({}, None),
    ],
)
def test_group_address_prefers_the_app_chat_then_the_robot(platform, group_chat, address):
    assert platform.group_address(Team(key="east", name="华东一组", group_chat=group_chat)) == address


def test_robot_key_is_taken_from_a_full_webhook_url():
    assert robot_key(" https://x.invalid/cgi-bin/webhook/send?key=abcdef123456&debug=1 ") == "abcdef123456"
    assert robot_key("https://x.invalid/cgi-bin/webhook/send") is None


def test_rate_limits_follow_configuration(platform):
    assert platform.rate_limits("member") == (RateLimit(30, 60), RateLimit(1000, 3600))
    assert platform.rate_limits("group") == (RateLimit(20, 60),)


# ---------------------------------------------------------------------- tokens


async def test_concurrent_sends_fetch_the_token_once(platform, fake):
    await asyncio.gather(*(platform.deliver(item("text", {"text": f"第{i}条"})) for i in range(20)))
    assert len(fake.calls("gettoken")) == 1
    assert len(fake.messages) == 20


async def test_token_is_refreshed_before_it_expires(fake):
    now = [1000.0]
    client = WeComClient(api_base=fake.base_url, corp_id=fakes.CORP_ID, secret=fakes.SECRET,
                         agent_id=fakes.AGENT_ID, monotonic=lambda: now[0])
    await client.start()
    try:
        first = await client.access_token()
        now[0] += 7200 - 400  # still valid at WeCom, but inside the refresh margin? not yet
        assert await client.access_token() == first
        now[0] += 200  # 200 s before expiry: refreshed early
        second = await client.access_token()
        assert second != first
        assert len(fake.calls("gettoken")) == 2
    finally:
        await client.close()


async def test_an_expired_token_is_refreshed_and_the_send_retried_once(platform, fake):
    await platform.deliver(item("text", {"text": "一"}))
    fake.expire_tokens()
    await platform.deliver(item("text", {"text": "二"}))
    assert [m["text"]["content"] for m in fake.messages] == ["一", "二"]
    assert len(fake.calls("gettoken")) == 2
    sends = fake.calls("message/send")
    assert len(sends) == 3  # one refused with 42001, then the retry


@pytest.mark.parametrize("errcode", [40014, 40001])
async def test_token_errors_refresh_and_retry_once(platform, fake, errcode):
    fake.inject("message/send", errcode=errcode)
    await platform.deliver(item("text", {"text": "hi"}))
    assert len(fake.messages) == 1
    assert len(fake.calls("gettoken")) == 2


async def test_a_token_error_after_the_refresh_is_not_retried_forever(platform, fake):
    fake.inject("message/send", errcode=42001, times=2)
    with pytest.raises(DeliveryError, match="42001"):
        await platform.deliver(item("text", {"text": "hi"}))
    assert len(fake.calls("message/send")) == 2


async def test_a_wrong_secret_is_a_permanent_failure_naming_the_errcode(fake, media):
    wecom = WeComPlatform(make_config(fake, secret="wrong"), media=media)
    await wecom.start()
    try:
        with pytest.raises(DeliveryError, match="40001") as info:
            await wecom.deliver(item("text", {"text": "hi"}))
        assert info.value.retryable is False
    finally:
        await wecom.close()


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("fault", "retryable", "retry_after"),
    [
        ({"errcode": -1}, True, None),
        ({"errcode": 45009}, True, 60.0),
        ({"errcode": 45033}, True, 5.0),
        ({"status": 502}, True, None),
        ({"status": 503}, True, None),
        ({"errcode": 40058}, False, None),
        ({"errcode": 81013}, False, None),
    ],
)
async def test_failures_are_classified_retryable_or_permanent(platform, fake, fault, retryable, retry_after):
    fake.inject("message/send", **fault)
    with pytest.raises(DeliveryError) as info:
        await platform.deliver(item("text", {"text": "hi"}))
    assert info.value.retryable is retryable
    assert info.value.retry_after == retry_after
    if "errcode" in fault:
        assert str(fault["errcode"]) in str(info.value)
        assert "fault injected" in str(info.value)  # the errmsg is kept


async def test_a_slow_answer_times_out_as_retryable(fake, media):
    wecom = WeComPlatform(make_config(fake, request_timeout_seconds=0.2), media=media)
    await wecom.start()
    try:
        await wecom.deliver(item("text", {"text": "warm up"}))
        fake.inject("message/send", delay=1.0)
        with pytest.raises(DeliveryError, match="timed out") as info:
            await wecom.deliver(item("text", {"text": "hi"}))
        assert info.value.retryable is True
    finally:
        await wecom.close()


async def test_errors_never_carry_the_access_token_or_secret(platform, fake):
    fake.inject("message/send", status=500)
    with pytest.raises(DeliveryError) as info:
        await platform.deliver(item("text", {"text": "hi"}))
    token = next(iter(fake.tokens))
    assert token not in str(info.value) and fakes.SECRET not in str(info.value)


async def test_a_redirect_loop_error_never_carries_the_secret_or_a_robot_key(aiohttp_server):
    from aiohttp import web

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.path_qs)  # the query, with the credential, comes back each time

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", loop)
    server = await aiohttp_server(app)
    client = WeComClient(api_base=str(server.make_url("")), corp_id=fakes.CORP_ID, secret=fakes.SECRET, agent_id=1)
    await client.start()
    try:
        with pytest.raises(Exception) as token_error:
            await client.access_token()
        with pytest.raises(Exception) as robot_error:
            await client.send_robot("robotkey-0123456789", {"msgtype": "text", "text": {"content": "hi"}})
    finally:
        await client.close()
    assert "Redirect" in str(token_error.value)
    assert fakes.SECRET not in str(token_error.value) and "robotkey-0123456789" not in str(robot_error.value)


async def test_unknown_outbox_kinds_and_addresses_are_permanent_failures(platform):
    with pytest.raises(DeliveryError) as info:
        await platform.deliver(item("sticker", {}))
    assert info.value.retryable is False
    with pytest.raises(DeliveryError):
        await platform.deliver(item("text", {"text": "x"}, target_kind="group", target="team:east"))


# ---------------------------------------------------------------------- text and markdown


@pytest.mark.parametrize("limit", [2048, 4096, 7])
def test_split_never_exceeds_the_limit_nor_breaks_a_character(limit):
    text = "\n".join(f"第{i}行:华东建材 张总 电话20分钟 😀 " + "很" * (i * 37 % 900) for i in range(60))
    parts = render.split_utf8(text, limit)
    assert all(len(p.encode()) <= limit for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_split_prefers_line_boundaries():
    lines = [("行" * 300) for _ in range(5)]  # 900 bytes a line
    parts = render.split_utf8("\n".join(lines), 2048)
    assert parts == ["\n".join(lines[:2]), "\n".join(lines[2:4]), lines[4]]


def test_a_short_text_is_one_part():
    assert render.split_utf8("好", 2048) == ["好"]


async def test_long_text_is_sent_as_ordered_parts_within_the_byte_limit(platform, fake):
    text = "\n".join(f"{i:03d} " + "客户跟进记录" * 40 for i in range(30))
    receipt = await platform.deliver(item("text", {"text": text}))
    contents = [m["text"]["content"] for m in fake.messages]
    assert len(contents) > 1
    assert all(len(c.encode()) <= 2048 for c in contents)
    assert "\n".join(contents) == text
    assert receipt and receipt.count(",") == len(contents) - 1


async def test_a_retry_after_a_failed_part_continues_with_that_part(platform, fake):
    text = "\n".join(f"{i}" + "行" * 600 for i in range(3))  # three different parts of ~1800 bytes
    outgoing = item("text", {"text": text})
    await platform.deliver(item("text", {"text": "warm up"}))
    fake.messages.clear()
    fake.faults.clear()
    # the second part fails once
    original = fake._message_send
    calls = {"n": 0}

    async def flaky(request, body, form):
        calls["n"] += 1
        if calls["n"] == 2:
            return fakes._error(-1, "system busy")
        return await original(request, body, form)

    fake._message_send = flaky
    with pytest.raises(DeliveryError) as info:
        await platform.deliver(outgoing)
    assert info.value.retryable
    await platform.deliver(outgoing)
    assert [m["text"]["content"] for m in fake.messages] == text.split("\n")
    assert fake.duplicates == []


async def test_a_resend_after_a_crash_is_dropped_by_the_duplicate_check(fake, media):
    outgoing = item("text", {"text": "已记录:华东建材 电话 20 分钟"})
    for _ in range(2):  # two processes: the first "crashed" after sending, before marking sent
        wecom = WeComPlatform(make_config(fake), media=media)
        await wecom.start()
        await wecom.deliver(outgoing)
        await wecom.close()
    assert len(fake.messages) == 1
    assert len(fake.duplicates) == 1
    body = fake.calls("message/send")[0].body
    assert (body["enable_duplicate_check"], body["duplicate_check_interval"]) == (1, 1800)


async def test_markdown_goes_out_with_its_title(platform, fake):
    await platform.deliver(item("markdown", {"title": "今日待办", "text": "- 华东建材 回访\n- 南方水泥 报价"}))
    (message,) = fake.messages
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["content"].startswith("**今日待办**\n- 华东建材")


async def test_robot_markdown_splits_at_4096_bytes(platform, fake):
    text = "\n".join("| 华东一组 | 李明 | 12 | 3 |" for _ in range(300))
    await platform.deliver(item("markdown", {"title": "晨会速览", "text": text}, target_kind="group",
                                target="robot:robot-key-0001"))
    sent = fake.robot_messages["robot-key-0001"]
    assert len(sent) > 1
    sizes = [len(m["markdown"]["content"].encode()) for m in sent]
    assert all(s <= 4096 for s in sizes) and max(sizes) > 2048


async def test_app_chat_gets_text(platform, fake):
    await platform.deliver(item("text", {"text": "本周复盘会周五 15:00"}, target_kind="group", target="chat:chat-east"))
    assert fake.appchat_messages == [{"chatid": "chat-east", "msgtype": "text", "text": {"content": "本周复盘会周五 15:00"}}]


async def test_robot_rate_limit_is_retryable_after_a_minute(platform, fake):
    for i in range(20):
        await platform.deliver(item("text", {"text": f"{i}"}, target_kind="group", target="robot:robot-key-0001"))
    with pytest.raises(DeliveryError) as info:
        await platform.deliver(item("text", {"text": "21"}, target_kind="group", target="robot:robot-key-0001"))
    assert info.value.retryable and info.value.retry_after == 60.0


async def test_an_unknown_robot_key_is_permanent(platform, fake):
    with pytest.raises(DeliveryError, match="93000") as info:
        await platform.deliver(item("text", {"text": "x"}, target_kind="group", target="robot:unknown-key-123"))
    assert info.value.retryable is False


# ---------------------------------------------------------------------- images and files


async def test_image_to_a_member_is_uploaded_once_and_reused(platform, fake, media):
    sha = media.store_generated(png_bytes(), "png")
    await platform.deliver(item("image", {"sha256": sha, "caption": "本周漏斗"}))
    await platform.deliver(item("image", {"sha256": sha, "caption": ""}, target="WangJing"))
    assert len(fake.calls("media/upload")) == 1
    assert [(m["touser"], m["msgtype"]) for m in fake.messages] == [
        ("LiMing", "image"), ("LiMing", "text"), ("WangJing", "image")]
    assert fake.messages[1]["text"]["content"] == "本周漏斗"


async def test_the_same_image_to_the_same_person_within_the_window_is_dropped_by_wecom(platform, fake, media):
    # A documented trade-off of enable_duplicate_check: identical content is delivered once per window.
    sha = media.store_generated(png_bytes(), "png")
    await platform.deliver(item("image", {"sha256": sha}))
    await platform.deliver(item("image", {"sha256": sha}))
    assert len(fake.messages) == 1 and len(fake.duplicates) == 1


async def test_image_to_a_robot_is_inline_base64_with_md5(platform, fake, media):
    data = png_bytes()
    sha = media.store_generated(data, "png")
    await platform.deliver(item("image", {"sha256": sha}, target_kind="group", target="robot:robot-key-0001"))
    (message,) = fake.robot_messages["robot-key-0001"]
    assert message["image"]["md5"] == hashlib.md5(data).hexdigest()


async def test_an_image_over_2_mb_is_recompressed_for_a_robot(platform, fake, media):
    data = png_bytes(size=(1400, 1000), noise=True)
    assert len(data) > 2 * 1024 * 1024
    sha = media.store_generated(data, "png")
    await platform.deliver(item("image", {"sha256": sha}, target_kind="group", target="robot:robot-key-0001"))
    (message,) = fake.robot_messages["robot-key-0001"]  # the fake checked size, format and md5
    assert message["image"]["md5"] != hashlib.md5(data).hexdigest()


def test_fit_image_keeps_small_jpeg_and_png_untouched_and_converts_others():
    png = png_bytes()
    assert fit_image(png, 2_000_000) == png
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, "GIF")
    assert fit_image(buf.getvalue(), 2_000_000)[:3] == b"\xff\xd8\xff"


async def test_evidence_files_are_found_by_sha_and_sent_as_files(platform, fake, media):
    stored = media.store(b"%PDF-1.4 quote " * 100, kind_hint="file", filename="报价单.pdf")
    await platform.deliver(item("file", {"sha256": stored.sha256, "filename": "报价单.pdf"}))
    (upload,) = fake.calls("media/upload")
    assert upload.query["type"] == "file" and upload.body["media"]["filename"] == "报价单.pdf"
    assert fake.messages[0]["msgtype"] == "file"


async def test_files_reach_robots_through_the_robot_upload(platform, fake, media):
    stored = media.store(b"%PDF-1.4 report " * 50, kind_hint="file", filename="周报.pdf")
    await platform.deliver(item("file", {"sha256": stored.sha256, "filename": "周报.pdf"}, target_kind="group",
                                target="robot:robot-key-0001"))
    assert fake.robot_messages["robot-key-0001"][0]["msgtype"] == "file"


async def test_missing_media_is_a_permanent_failure(platform):
    with pytest.raises(DeliveryError, match="not in the media store") as info:
        await platform.deliver(item("image", {"sha256": "ab" * 32}))
    assert info.value.retryable is False


# ---------------------------------------------------------------------- cards


def test_button_card_renders_as_button_interaction():
    card = undo_card(fields=tuple(CardField(f"字段{i}", "值" * 40) for i in range(8)))
    body = render.render_card(card)
    assert body["card_type"] == "button_interaction"
    assert body["task_id"] == card.task_id
    assert body["button_list"] == [{"text": "撤销", "style": 3, "key": "undo:42"}]
    assert len(body["horizontal_content_list"]) == 6
    assert all(len(h["value"]) <= 26 and len(h["keyname"]) <= 5 for h in body["horizontal_content_list"])
    assert "字段7" in body["sub_title_text"]  # fields beyond six fold into the text


def test_labels_are_cut_to_wecom_limits():
    card = undo_card(title="标" * 50, buttons=(Button("一个非常非常非常长的按钮文字", "undo:1"),))
    body = render.render_card(card)
    assert len(body["main_title"]["title"]) == 36 and body["main_title"]["title"].endswith("…")
    assert len(body["button_list"][0]["text"]) == 10


@pytest.mark.parametrize(("mode", "checkbox_mode"), [(ChoiceMode.SINGLE, 0), (ChoiceMode.MULTIPLE, 1)])
def test_choice_cards_render_as_vote_interaction(mode, checkbox_mode):
    options = tuple(Button(f"障碍{i}", f"opt{i}") for i in range(5))
    card = Card(task_id=new_task_id("obstacle"), title="卡在哪里?", choice_mode=mode, options=options,
                submit=Button("提交", "obstacle:7"))
    body = render.render_card(card)
    assert body["card_type"] == "vote_interaction"
    assert body["checkbox"]["mode"] == checkbox_mode
    assert [o["id"] for o in body["checkbox"]["option_list"]] == [f"opt{i}" for i in range(5)]
    assert body["submit_button"] == {"text": "提交", "key": "obstacle:7"}


@pytest.mark.parametrize(
    "card",
    [
        undo_card(buttons=tuple(Button(f"b{i}", f"act:{i}") for i in range(7))),  # > 6 buttons
        undo_card(buttons=()),  # nothing to click
        undo_card().closed("已撤销"),
        undo_card(buttons=(Button("a", "same:1"), Button("b", "same:1"))),  # duplicate keys
        Card(task_id=new_task_id("pick"), title="x", choice_mode=ChoiceMode.SINGLE,
             options=tuple(Button(f"o{i}", f"o{i}") for i in range(21)), submit=Button("提交", "pick:1")),
        Card(task_id=new_task_id("pick"), title="x", choice_mode=ChoiceMode.SINGLE,
             options=(Button("o", "o"),), submit=None),
    ],
)
def test_cards_wecom_cannot_show_fall_back_to_text(card):
    assert render.render_card(card) is None


async def test_card_is_sent_as_template_card_and_accepted_by_wecom(platform, fake):
    card = undo_card()
    await platform.deliver(item("card", {"card": card.to_json()}))
    (message,) = fake.messages
    assert message["msgtype"] == "template_card"
    assert message["template_card"]["task_id"] == card.task_id


async def test_a_card_wecom_cannot_show_goes_out_as_its_text_fallback(platform, fake):
    card = undo_card(buttons=tuple(Button(f"选项{i}", f"act:{i}") for i in range(8)))
    await platform.deliver(item("card", {"card": card.to_json()}))
    (message,) = fake.messages
    assert message["msgtype"] == "text"
    assert message["text"]["content"].startswith("【已记录跟进:华东建材】")
    assert "8. 选项7" in message["text"]["content"]


async def test_a_card_wecom_refuses_reaches_the_member_as_text(platform, fake):
    fake.inject("message/send", errcode=40058)  # e.g. a limit WeCom enforces that the renderer missed
    await platform.deliver(item("card", {"card": undo_card().to_json()}))
    (message,) = fake.messages
    assert message["msgtype"] == "text" and message["text"]["content"].startswith("【已记录跟进")


async def test_cards_to_groups_use_the_text_fallback(platform, fake):
    await platform.deliver(item("card", {"card": undo_card().to_json()}, target_kind="group",
                                target="robot:robot-key-0001"))
    assert fake.robot_messages["robot-key-0001"][0]["msgtype"] == "text"


async def test_a_clicked_card_is_updated_in_place_with_its_response_code(platform, fake):
    card = undo_card()
    await platform.deliver(item("card", {"card": card.to_json()}))
    code = fake.click("LiMing", card.task_id)
    receipt = await platform.deliver(item("card_update", {"card": card.closed("已撤销").to_json()},
                                          card_state={"response_code": code}))
    assert receipt == "card-updated"
    (update,) = fake.card_updates
    assert update["button"] == {"replace_name": "已撤销"}
    assert update["userids"] == ["LiMing"] and update["agentid"] == fakes.AGENT_ID
    assert len(fake.messages) == 1  # nothing new was sent


async def test_an_open_card_update_replaces_the_whole_card(platform, fake):
    card = undo_card()
    code = fake.click("LiMing", card.task_id)
    changed = undo_card(task_id=card.task_id, body="已改为面访", buttons=(Button("确认", "confirm:9"),))
    await platform.deliver(item("card_update", {"card": changed.to_json()}, card_state={"response_code": code}))
    (update,) = fake.card_updates
    assert update["template_card"]["button_list"][0]["key"] == "confirm:9"


@pytest.mark.parametrize("why", ["used", "expired", "missing"])
async def test_an_unusable_response_code_falls_back_to_sending_the_new_state(platform, fake, why):
    card = undo_card()
    code = fake.click("LiMing", card.task_id)
    if why == "used":
        await platform.deliver(item("card_update", {"card": card.closed("已撤销").to_json()},
                                    card_state={"response_code": code}))
    elif why == "expired":
        fake.advance(72 * 3600 + 60)
    state = {} if why == "missing" else {"response_code": code}
    await platform.deliver(item("card_update", {"card": card.closed("已撤销").to_json()}, card_state=state))
    fresh = fake.messages[-1]
    assert fresh["msgtype"] == "text" and "✔ 已撤销" in fresh["text"]["content"]


async def test_an_open_card_sent_afresh_gets_a_new_task_id_that_maps_back(platform, fake):
    card = undo_card()
    await platform.deliver(item("card", {"card": card.to_json()}))
    outgoing = item("card_update", {"card": card.to_json()}, card_state={})
    await platform.deliver(outgoing)
    resent = fake.messages[-1]["template_card"]["task_id"]
    assert resent == f"{card.task_id}@u{outgoing.id}"
    xml = fakes.card_event_xml("LiMing", task_id=resent, event_key="undo:42", response_code="rc")
    assert parse.parse_message(xml.encode()).task_id == card.task_id


async def test_a_card_update_retries_when_wecom_is_busy(platform, fake):
    card = undo_card()
    code = fake.click("LiMing", card.task_id)
    fake.inject("message/update_template_card", errcode=-1)
    outgoing = item("card_update", {"card": card.closed("已撤销").to_json()}, card_state={"response_code": code})
    with pytest.raises(DeliveryError) as info:
        await platform.deliver(outgoing)
    assert info.value.retryable
    await platform.deliver(outgoing)
    assert len(fake.card_updates) == 1 and fake.messages == []


# ---------------------------------------------------------------------- attachments from users


async def test_fetch_media_downloads_what_the_user_sent(platform, fake):
    media_id = fake.add_media(b"\xff\xd8\xff" + b"photo" * 100)
    assert await platform.fetch_media(MediaRef(platform_media_id=media_id)) == b"\xff\xd8\xff" + b"photo" * 100


async def test_fetch_media_of_an_unknown_id_is_unavailable(platform):
    with pytest.raises(MediaUnavailable, match="40007"):
        await platform.fetch_media(MediaRef(platform_media_id="gone"))


async def test_fetch_media_over_the_size_cap_is_unavailable(platform, fake):
    media_id = fake.add_media(b"x" * 1_000_001, filename="big.bin", content_type="application/octet-stream")
    with pytest.raises(MediaUnavailable, match="larger than"):
        await platform.fetch_media(MediaRef(platform_media_id=media_id))


async def test_fetch_media_of_a_text_file_is_not_mistaken_for_an_error(platform, fake):
    media_id = fake.add_media(b'{"note": "a customer list exported as json"}', filename="a.txt",
                              content_type="text/plain", kind="file")
    assert (await platform.fetch_media(MediaRef(platform_media_id=media_id))).startswith(b'{"note"')


async def test_fetch_media_when_wecom_is_busy_raises_for_a_retry(platform, fake):
    media_id = fake.add_media(b"\xff\xd8\xffdata")
    fake.inject("media/get", errcode=-1)
    with pytest.raises(Exception) as info:
        await platform.fetch_media(MediaRef(platform_media_id=media_id))
    assert not isinstance(info.value, MediaUnavailable)
    assert await platform.fetch_media(MediaRef(platform_media_id=media_id)) == b"\xff\xd8\xffdata"


async def test_fetch_media_refreshes_an_expired_token(platform, fake):
    media_id = fake.add_media(b"\xff\xd8\xffdata")
    await platform.fetch_media(MediaRef(platform_media_id=media_id))
    fake.expire_tokens()
    assert await platform.fetch_media(MediaRef(platform_media_id=media_id)) == b"\xff\xd8\xffdata"


# ---------------------------------------------------------------------- directory sync


@pytest.fixture
async def sessions(tmp_path):
    from storage import migrate
    from storage.db import create_engine, session_factory

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/dir.db")
    await migrate.upgrade(engine)
    yield session_factory(engine)
    await engine.dispose()


def directory_fake(fake: fakes.FakeWeCom) -> None:
    fake.departments = [
        {"id": 1, "name": "示例科技", "parentid": 0, "department_leader": []},
        {"id": 2, "name": "华东销售部", "parentid": 1, "department_leader": ["WangJing"]},
        {"id": 3, "name": "华南销售部", "parentid": 1},
    ]
    fake.users = {
        1: [{"userid": "BossZhou", "name": "周总", "department": [1], "main_department": 1, "status": 1}],
        2: [
            {"userid": "WangJing", "name": "王静", "department": [2], "main_department": 2, "status": 1,
             "is_leader_in_dept": [1]},
            {"userid": "LiMing", "name": "李明", "department": [2, 3], "main_department": 2, "status": 1,
             "is_leader_in_dept": [0, 0]},
        ],
        3: [
            {"userid": "LiMing", "name": "李明", "department": [2, 3], "main_department": 2, "status": 1},
            {"userid": "ChenTao", "name": "陈涛", "department": [3], "main_department": 3, "status": 1,
             "is_leader_in_dept": [1]},
            {"userid": "SunYue", "name": "孙悦", "department": [3], "main_department": 3, "status": 5},
        ],
    }


async def test_directory_sync_upserts_teams_managers_and_members(fake, sessions):
    directory_fake(fake)
    client = WeComClient(api_base=fake.base_url, corp_id=fakes.CORP_ID, secret=fakes.SECRET, agent_id=fakes.AGENT_ID)
    await client.start()
    try:
        async with sessions() as session:
            report = await sync_directory(session, client)
            await session.commit()
        assert (report.departments, report.users, report.members_created) == (3, 5, 5)
        async with sessions() as session:
            teams = {t.key: t for t in await session.scalars(select(Team))}
            members = {m.wecom_userid: m for m in await session.scalars(select(Member))}
        assert teams["wecom-2"].name == "华东销售部"
        assert teams["wecom-2"].manager_id == members["WangJing"].id
        assert teams["wecom-3"].manager_id == members["ChenTao"].id  # from is_leader_in_dept
        assert members["WangJing"].role is Role.MANAGER and members["LiMing"].role is Role.REP
        assert members["LiMing"].team_id == teams["wecom-2"].id  # main department
        assert members["SunYue"].active is False
        assert members["LiMing"].code == "LiMing"

        # An admin locks a role and promotes someone; a second sync changes neither, nor duplicates.
        async with sessions() as session, session.begin():
            li = await session.scalar(select(Member).where(Member.wecom_userid == "LiMing"))
            li.role, li.role_locked = Role.MANAGER, True
            zhou = await session.scalar(select(Member).where(Member.wecom_userid == "BossZhou"))
            zhou.role = Role.ADMIN
        async with sessions() as session:
            report = await sync_directory(session, client)
            await session.commit()
        assert (report.members_created, report.members_updated, report.teams_created) == (0, 5, 0)
        assert report.roles_kept == 1
        async with sessions() as session:
            members = {m.wecom_userid: m for m in await session.scalars(select(Member))}
        assert members["LiMing"].role is Role.MANAGER
        assert members["BossZhou"].role is Role.ADMIN
        assert len(members) == 5
    finally:
        await client.close()


async def test_directory_sync_links_to_existing_members_and_avoids_code_clashes(fake, sessions):
    directory_fake(fake)
    from bot.clock import SystemClock

    async with sessions() as session, session.begin():
        session.add(Member(code="rep.li", name="李明", wecom_userid="LiMing", created_at=SystemClock().now()))
        session.add(Member(code="ChenTao", name="另一个陈涛", created_at=SystemClock().now()))
    client = WeComClient(api_base=fake.base_url, corp_id=fakes.CORP_ID, secret=fakes.SECRET, agent_id=fakes.AGENT_ID)
    await client.start()
    try:
        async with sessions() as session:
            await sync_directory(session, client)
            await session.commit()
        async with sessions() as session:
            members = {m.code: m for m in await session.scalars(select(Member))}
        assert members["rep.li"].wecom_userid == "LiMing"
        assert members["wecom-ChenTao"].wecom_userid == "ChenTao"
        assert members["ChenTao"].wecom_userid is None
    finally:
        await client.close()


async def test_pacebot_sync_wecom_imports_the_directory_from_the_command_line(fake, tmp_path):
    import asyncio

    from bot.cli import main

    directory_fake(fake)
    config = tmp_path / "pacebot.toml"
    wecom = fakes.wecom_config(fake.base_url)
    lines = [
        "[storage]",
        f'url = "sqlite+aiosqlite:///{tmp_path}/sync.db"',
        f'data_dir = "{tmp_path}/data"',
        "[scheduler]",
        "enabled = false",
        "[wecom]",
        *(f"{key} = {value!r}".replace("'", '"') if isinstance(value, str) else f"{key} = {str(value).lower()}"
          for key, value in wecom.items()),
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The CLI runs its own event loop; the fake keeps serving on this one.
    code = await asyncio.to_thread(main, ["--config", str(config), "sync", "wecom"])
    assert code == 0
    from storage.db import create_engine, session_factory

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/sync.db")
    async with session_factory(engine)() as session:
        codes = {m.wecom_userid for m in await session.scalars(select(Member))}
    await engine.dispose()
    assert {"WangJing", "LiMing", "ChenTao"} <= codes


async def test_pacebot_sync_wecom_refuses_when_wecom_is_off(tmp_path, capsys):
    import asyncio

    from bot.cli import main

    config = tmp_path / "pacebot.toml"
    config.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/s.db"\n[scheduler]\nenabled = false\n', encoding="utf-8")
    assert await asyncio.to_thread(main, ["--config", str(config), "sync", "wecom"]) == 2
    assert "wecom.enabled: must be true" in capsys.readouterr().err

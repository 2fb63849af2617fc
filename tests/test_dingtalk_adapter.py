"""The DingTalk client, sender, parser, quota counter and directory sync against the fake DingTalk."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image
from sqlalchemy import select

from bot.bootstrap import build_runtime
from bot.clock import FrozenClock, ShiftableClock
from bot.config import ConfigError, DingTalkConfig, config_from_dict
from bot.events import EventKind, MediaRef
from bot.platforms.base import DeliveryError, MediaUnavailable, Outgoing, RateLimit
from bot.platforms.dingtalk import parse, texts
from bot.platforms.dingtalk.adapter import DingTalkPlatform, SessionWebhooks, webhook_token
from bot.platforms.dingtalk.client import DingTalkClient, DingTalkTransportError
from bot.platforms.dingtalk.directory import sync_directory
from bot.platforms.dingtalk.routes import signature_is_valid
from cards.model import Button, ButtonStyle, Card, ChoiceMode, new_task_id
from domain.enums import Role
from storage import api_usage
from storage.media import MediaStore
from storage.models import Member, OutboxItem, Team
from tests.conftest import START
from tests.dingtalk_support import ADMIN, app_config
from tests.fakes import dingtalk as fakes

_ids = itertools.count(1)


@pytest.fixture
async def fake():
    server = fakes.FakeDingTalk(known_users={"0110", "0100", "0900", "u1"})
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def media(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def make_config(fake: fakes.FakeDingTalk, **overrides) -> DingTalkConfig:
    return config_from_dict({"dingtalk": fakes.dingtalk_config(fake.base_url, **overrides)}).dingtalk


@pytest.fixture
async def platform(fake, media):
    dingtalk = DingTalkPlatform(make_config(fake), media=media, max_media_bytes=1_000_000)
    await dingtalk.start()
    yield dingtalk
    await dingtalk.close()


@pytest.fixture
async def runtime(tmp_path, fake):
    """A whole runtime (database, org with a DingTalk group) whose DingTalk platform talks to the fake."""
    config = app_config(tmp_path, fake.base_url, monthly_api_quota=5, card_template_id=fakes.CARD_TEMPLATE)
    built = await build_runtime(config, clock=ShiftableClock(base=FrozenClock(START)))
    await built.start(workers=False)
    yield built
    await built.stop()


def item(kind: str, payload: dict, *, target: str = "0110", target_kind: str = "member",
         item_id: int | None = None) -> Outgoing:
    return Outgoing(id=item_id or next(_ids), kind=kind, target_kind=target_kind, target=target, payload=payload,
                    attempts=1)


def choice_card(**overrides) -> Card:
    fields = {
        "task_id": new_task_id("obstacle"),
        "title": "当前最大障碍是?",
        "buttons": (Button("预算审批未启动", "obst:1:a", ButtonStyle.PRIMARY), Button("决策人未接触", "obst:1:b")),
    }
    fields.update(overrides)
    return Card(**fields)


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


# ---------------------------------------------------------------------- configuration


def test_config_defaults_keep_dingtalk_off_and_on_the_real_hosts():
    config = config_from_dict({}).dingtalk
    assert config.enabled is False and config.mode == "http"
    assert (config.api_base, config.oapi_base) == ("https://api.dingtalk.com", "https://oapi.dingtalk.com")
    assert config.monthly_api_quota == 10_000 and config.callback_path == "/dingtalk/callback"


def test_the_robot_code_defaults_to_the_app_key():
    config = config_from_dict({"dingtalk": {"app_key": "dingabc"}}).dingtalk
    assert config.robot == "dingabc"
    assert config_from_dict({"dingtalk": {"app_key": "dingabc", "robot_code": "r1"}}).dingtalk.robot == "r1"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"api_base": "http://api.dingtalk.com"}, "dingtalk.api_base"),
        ({"oapi_base": "http://oapi.dingtalk.com"}, "dingtalk.oapi_base"),
        ({"mode": "websocket"}, "dingtalk.mode"),
        ({"app_key": ""}, "dingtalk.app_key"),
        ({"app_secret": ""}, "dingtalk.app_secret"),
        ({"monthly_api_quota": 0}, "dingtalk.monthly_api_quota"),
        ({"group_per_minute": 21}, "dingtalk.group_per_minute"),
        ({"callback_path": "/console/x"}, "dingtalk.callback_path"),
        ({"ca_file": "/nonexistent/ca.pem"}, "dingtalk.ca_file"),
        ({"stream_max_inflight": 0}, "dingtalk.stream_max_inflight"),
    ],
)
def test_invalid_dingtalk_config_stops_start_up_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict({"dingtalk": fakes.dingtalk_config("https://api.dingtalk.com", **overrides)})


def test_the_app_secret_can_come_from_the_environment():
    raw = fakes.dingtalk_config("https://api.dingtalk.com", app_secret="${DINGTALK_APP_SECRET}")
    assert config_from_dict({"dingtalk": raw}, {"DINGTALK_APP_SECRET": "s3cret"}).dingtalk.app_secret == "s3cret"
    with pytest.raises(ConfigError, match=r"dingtalk\.app_secret: environment variable DINGTALK_APP_SECRET is not set"):
        config_from_dict({"dingtalk": raw}, {})


def test_the_documented_dingtalk_block_is_valid_and_shows_the_defaults():
    import re
    import tomllib

    doc = (Path(__file__).parents[1] / "docs" / "dingtalk.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", doc, re.S).group(1)
    assert config_from_dict(tomllib.loads(block)).dingtalk == DingTalkConfig()


# ---------------------------------------------------------------------- HTTPS only


async def test_no_request_goes_out_over_plain_http_above_all_the_token_request(aiohttp_server):
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"accessToken": "t", "expireIn": 7200})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app)
    plain = f"http://127.0.0.1:{server.port}"
    client = DingTalkClient(api_base=plain, oapi_base=plain, app_key=fakes.APP_KEY, app_secret=fakes.APP_SECRET,
                            robot_code=fakes.ROBOT_CODE)
    await client.start()
    try:
        with pytest.raises(DingTalkTransportError) as token_error:
            await client.access_token()
        with pytest.raises(DingTalkTransportError):
            await client.send_session_webhook(f"{plain}/robot/sendBySession?session=x", {"msgtype": "text"})
        with pytest.raises(DingTalkTransportError):
            await client.fetch(f"{plain}/files/x", max_bytes=10)
    finally:
        await client.close()
    assert seen == []
    assert token_error.value.retryable is False
    assert fakes.APP_SECRET not in str(token_error.value)


async def test_a_certificate_the_client_does_not_trust_is_refused(fake):
    client = DingTalkClient(api_base=fake.base_url, oapi_base=fake.base_url, app_key=fakes.APP_KEY,
                            app_secret=fakes.APP_SECRET, robot_code=fakes.ROBOT_CODE)  # system CAs only
    await client.start()
    try:
        with pytest.raises(DingTalkTransportError, match="SSL|certificate"):
            await client.access_token()
    finally:
        await client.close()
    assert fake.calls("/v1.0/oauth2/accessToken") == []


def test_session_webhooks_are_used_only_on_dingtalks_own_host_over_https():
    hooks = SessionWebhooks("oapi.dingtalk.com", now=lambda: 1000.0)
    assert not hooks.remember("u1", "https://evil.example/robot/sendBySession?session=x", 2_000_000)
    assert not hooks.remember("u1", "http://oapi.dingtalk.com/robot/sendBySession?session=x", 2_000_000)
    assert hooks.remember("u1", "https://oapi.dingtalk.com/robot/sendBySession?session=x", 2_000_000)
    assert hooks.get("u1") == "https://oapi.dingtalk.com/robot/sendBySession?session=x"


def test_a_session_webhook_about_to_expire_is_not_used():
    now = [1000.0]
    hooks = SessionWebhooks("oapi.dingtalk.com", now=lambda: now[0])
    hooks.remember("u1", "https://oapi.dingtalk.com/robot/sendBySession?session=x", 1_100_000)
    assert hooks.get("u1") is not None
    now[0] = 1100 - 30
    assert hooks.get("u1") is None


# ---------------------------------------------------------------------- signatures and parsing


def test_the_callback_signature_is_checked_in_constant_time_within_an_hour():
    now = 1_790_000_000_000
    good = fakes.sign(fakes.APP_SECRET, str(now))
    assert signature_is_valid(fakes.APP_SECRET, str(now), good, now_ms=now + 3_599_000)
    assert not signature_is_valid(fakes.APP_SECRET, str(now), good, now_ms=now + 3_601_000)
    assert not signature_is_valid(fakes.APP_SECRET, str(now), good[:-2] + "AA", now_ms=now)
    assert not signature_is_valid(fakes.APP_SECRET, "-1", good, now_ms=now)


def test_a_text_message_parses_to_a_text_event_keyed_by_msgid():
    incoming = parse.parse_callback(fakes.bot_message("0110", "msgA", text="  你好  "))
    (event,) = incoming.events
    assert (event.kind, event.text, event.sender, event.conversation, event.platform_msg_id) == (
        EventKind.TEXT, "你好", "0110", "0110", "msgA")


def test_a_group_message_keeps_its_conversation():
    incoming = parse.parse_callback(fakes.bot_message("0110", "msgG", text="hi", group="cidX=="))
    (event,) = incoming.events
    assert event.conversation == "group:cidX==" and incoming.reply_address == "group:cidX=="


@pytest.mark.parametrize(("msgtype", "kind"), [("picture", EventKind.IMAGE), ("audio", EventKind.VOICE),
                                              ("video", EventKind.VIDEO), ("file", EventKind.FILE)])
def test_media_messages_carry_their_download_code(msgtype, kind):
    content = {"downloadCode": "code-1", "fileName": "报价.pdf", "recognition": "语音文字"}
    (event,) = parse.parse_callback(fakes.bot_message("0110", "m", msgtype=msgtype, content=content)).events
    assert event.kind is kind and event.media.platform_media_id == "code-1"


def test_rich_text_becomes_the_text_then_each_picture_in_order():
    content = {"richText": [{"text": "华东建材 电话10分钟"}, {"pictureDownloadCode": "p1", "type": "picture"},
                            {"downloadCode": "p2", "type": "picture"}]}
    events = parse.parse_callback(fakes.bot_message("0110", "rt", msgtype="richText", content=content)).events
    assert [e.kind for e in events] == [EventKind.TEXT, EventKind.IMAGE, EventKind.IMAGE]
    assert [e.platform_msg_id for e in events] == ["rt", "rt:1", "rt:2"]
    assert [e.media.platform_media_id for e in events[1:]] == ["p1", "p2"]


def test_a_card_click_parses_to_an_action_on_its_card():
    click = fakes.FakeDingTalk().click("0110", "obstacle-abc@u7", {"action": "obst:1:a", "values": ["x", "y"]})
    (event,) = parse.parse_callback(click).events
    assert (event.kind, event.action, event.task_id, event.action_values) == (
        EventKind.ACTION, "obst:1:a", "obstacle-abc", ("x", "y"))
    again = parse.parse_callback(click).events[0]
    assert again.platform_msg_id == event.platform_msg_id  # a redelivered click is the same event


@pytest.mark.parametrize("body", [
    {"msgtype": "text", "text": {"content": "x"}},  # no msgId
    {**fakes.bot_message("0110", "m"), "msgId": "x" * 129},
    {**fakes.bot_message("0110", "m"), "senderStaffId": "", "senderId": ""},
    {**fakes.bot_message("0110", "m"), "conversationType": "3"},
    {**fakes.bot_message("0110", "m", msgtype="picture"), "content": {}},
    {"outTrackId": "t", "userId": "u", "content": "{\"cardPrivateData\": {}}"},
    {"outTrackId": "t", "userId": "u", "content": "not json"},
])
def test_malformed_callbacks_are_refused(body):
    with pytest.raises(parse.MalformedPayload):
        parse.parse_callback(body)


# ---------------------------------------------------------------------- addresses and limits


def test_member_and_group_addresses(platform):
    assert platform.member_address(Member(code="rep.li", name="李明", dingtalk_staff_id="0110")) == "0110"
    assert platform.member_address(Member(code="x", name="x")) is None
    assert platform.group_address(Team(id=3, key="e", name="e", group_chat={"dingtalk_webhook": "x"})) == "team:3"
    assert platform.group_address(Team(id=3, key="e", name="e", group_chat={"wecom_webhook": "x"})) is None


def test_webhook_token_is_taken_from_a_full_webhook_url():
    assert webhook_token(f"https://oapi.dingtalk.com/robot/send?access_token={fakes.ROBOT_TOKEN}") == fakes.ROBOT_TOKEN
    assert webhook_token("https://oapi.dingtalk.com/robot/send") == ""


def test_rate_limits_follow_configuration(platform):
    assert platform.rate_limits("member") == (RateLimit(20, 60),)
    assert platform.rate_limits("group") == (RateLimit(20, 60),)


# ---------------------------------------------------------------------- tokens and errors


async def test_concurrent_sends_fetch_the_token_once(platform, fake):
    await asyncio.gather(*(platform.deliver(item("text", {"text": f"第{i}条"})) for i in range(20)))
    assert len(fake.calls("/v1.0/oauth2/accessToken")) == 1
    assert len(fake.messages) == 20


async def test_the_token_is_refreshed_before_it_expires(fake):
    now = [1000.0]
    client = DingTalkClient(api_base=fake.base_url, oapi_base=fake.base_url, app_key=fakes.APP_KEY,
                            app_secret=fakes.APP_SECRET, robot_code=fakes.ROBOT_CODE,
                            ssl_context=fakes.tls().client(), monotonic=lambda: now[0])
    await client.start()
    try:
        first = await client.access_token()
        now[0] += 7200 - 400
        assert await client.access_token() == first
        now[0] += 200  # 200 s before expiry: refreshed early
        assert await client.access_token() != first
        assert client.token_fetches == 2
    finally:
        await client.close()


async def test_an_expired_token_is_replaced_and_the_call_tried_again(platform, fake):
    await platform.deliver(item("text", {"text": "一"}))
    fake.expire_tokens()
    await platform.deliver(item("text", {"text": "二"}))
    assert len(fake.calls("/v1.0/oauth2/accessToken")) == 2
    assert [m["param"]["content"] for m in fake.messages] == ["一", "二"]


async def test_a_wrong_secret_is_a_permanent_failure_that_never_shows_the_secret(fake, media):
    wrong = DingTalkPlatform(make_config(fake, app_secret="wrong-secret-123"), media=media)
    await wrong.start()
    try:
        with pytest.raises(DeliveryError) as info:
            await wrong.deliver(item("text", {"text": "x"}))
    finally:
        await wrong.close()
    assert info.value.retryable is False and "invalidClientIdOrSecret" in str(info.value)
    assert "wrong-secret-123" not in str(info.value)


@pytest.mark.parametrize(("fault", "retryable"), [({"status": 502}, True), ({"code": "90020"}, False),
                                                  ({"code": "Forbidden.AccessDenied.QpsLimitForApi"}, True)])
async def test_failures_are_classified_for_the_outbox(platform, fake, fault, retryable):
    fake.inject("/v1.0/robot/oToMessages/batchSend", **fault)
    with pytest.raises(DeliveryError) as info:
        await platform.deliver(item("text", {"text": "x"}))
    assert info.value.retryable is retryable


async def test_a_slow_answer_times_out_and_is_retried_later(fake, media):
    slow = DingTalkPlatform(make_config(fake, request_timeout_seconds=0.3), media=media)
    await slow.start()
    try:
        fake.inject("/v1.0/robot/oToMessages/batchSend", delay=1.0)
        with pytest.raises(DeliveryError, match="timed out") as info:
            await slow.deliver(item("text", {"text": "x"}))
    finally:
        await slow.close()
    assert info.value.retryable is True


async def test_past_the_monthly_quota_dingtalk_refuses_and_the_message_is_dead_lettered(platform, fake):
    fake.monthly_quota = 1
    await platform.deliver(item("text", {"text": "一"}))
    with pytest.raises(DeliveryError, match="ApiCountLimitForOrg") as info:
        await platform.deliver(item("text", {"text": "二"}))
    assert info.value.retryable is False


async def test_an_unreachable_staff_id_is_a_permanent_failure(platform, fake):
    with pytest.raises(DeliveryError, match="not reachable") as info:
        await platform.deliver(item("text", {"text": "x"}, target="stranger"))
    assert info.value.retryable is False


# ---------------------------------------------------------------------- sending


async def test_a_long_text_goes_out_in_parts_in_order(platform, fake):
    text = "\n".join(f"第{i}行 " + "很长的内容" * 30 for i in range(40))
    await platform.deliver(item("text", {"text": text}))
    parts = [m["param"]["content"] for m in fake.messages]
    assert len(parts) > 1 and all(len(p.encode()) <= 5000 for p in parts)
    assert "\n".join(parts) == text


async def test_a_retry_continues_after_the_parts_already_sent(platform, fake):
    text = "\n".join("行" * 1000 for _ in range(3))
    fake.inject("/v1.0/robot/oToMessages/batchSend", status=500)  # the first attempt fails at part 1
    outgoing = item("text", {"text": text})
    with pytest.raises(DeliveryError):
        await platform.deliver(outgoing)
    await platform.deliver(outgoing)
    assert len(fake.messages) == 3


async def test_a_remembered_session_webhook_carries_the_reply_for_free(platform, fake):
    url, expires = fake.session_webhook("0110")
    platform.remember_session("0110", url, expires)
    await platform.deliver(item("markdown", {"title": "今日", "text": "第一行\n第二行"}))
    assert fake.messages == [] and fake.metered_calls == 0
    (message,) = fake.session_messages
    assert message["msgtype"] == "markdown" and "第一行  \n第二行" in message["markdown"]["text"]


async def test_an_expired_session_webhook_falls_back_to_the_robot_api(platform, fake):
    url, expires = fake.session_webhook("0110")
    platform.remember_session("0110", url, expires)
    fake.sessions.clear()  # DingTalk ended the session early
    await platform.deliver(item("text", {"text": "你好"}))
    assert [m["param"]["content"] for m in fake.messages] == ["你好"]


async def test_an_image_is_uploaded_once_and_sent_with_its_caption(platform, fake, media):
    data = jpeg()
    sha = media.store_generated(data, "jpg")
    for _ in range(2):
        await platform.deliver(item("image", {"sha256": sha, "caption": "本周漏斗"}))
    assert len(fake.calls("/media/upload")) == 1
    images = [m for m in fake.messages if m["msgKey"] == "sampleImageMsg"]
    assert len(images) == 2 and fake.media[images[0]["param"]["photoURL"]][0] == data
    assert [m["param"]["content"] for m in fake.messages if m["msgKey"] == "sampleText"] == ["本周漏斗"] * 2


async def test_a_card_without_a_template_is_markdown_with_numbered_options(platform, fake):
    await platform.deliver(item("card", {"card": choice_card().to_json()}))
    (message,) = fake.messages
    assert message["msgKey"] == "sampleMarkdown"
    assert "1. 预算审批未启动" in message["param"]["text"] and "2. 决策人未接触" in message["param"]["text"]
    assert fake.cards == {}


async def test_a_card_with_a_template_is_created_and_delivered_to_the_person(fake, media):
    dingtalk = DingTalkPlatform(make_config(fake, card_template_id=fakes.CARD_TEMPLATE), media=media)
    await dingtalk.start()
    try:
        card = choice_card(choice_mode=ChoiceMode.SINGLE, buttons=(),
                           options=(Button("A", "opt_a"), Button("B", "opt_b")), submit=Button("提交", "obst:1"))
        await dingtalk.deliver(item("card", {"card": card.to_json()}))
    finally:
        await dingtalk.close()
    body = fake.cards[card.task_id]
    params = body["cardData"]["cardParamMap"]
    assert body["openSpaceId"] == "dtv1.card//IM_ROBOT.0110"
    assert body["imRobotOpenDeliverModel"] == {"spaceType": "IM_ROBOT", "robotCode": fakes.ROBOT_CODE}
    assert json.loads(params["options"]) == [{"text": "A", "value": "opt_a"}, {"text": "B", "value": "opt_b"}]
    assert (params["submit_action"], params["multiple"]) == ("obst:1", "false")


async def test_a_card_dingtalk_refuses_still_reaches_the_person_as_text(fake, media):
    dingtalk = DingTalkPlatform(make_config(fake, card_template_id="no-such-template"), media=media)
    await dingtalk.start()
    try:
        await dingtalk.deliver(item("card", {"card": choice_card().to_json()}))
    finally:
        await dingtalk.close()
    assert fake.cards == {}
    (message,) = fake.messages
    assert "1. 预算审批未启动" in message["param"]["text"]


async def test_an_update_of_a_card_dingtalk_does_not_know_is_sent_afresh(fake, media):
    dingtalk = DingTalkPlatform(make_config(fake, card_template_id=fakes.CARD_TEMPLATE), media=media)
    await dingtalk.start()
    try:
        await dingtalk.deliver(item("card_update", {"card": choice_card().closed("已选择:预算审批未启动").to_json()}))
    finally:
        await dingtalk.close()
    assert fake.card_updates == []
    (message,) = fake.messages
    assert "✔ 已选择:预算审批未启动" in message["param"]["text"]


async def test_fetch_media_downloads_through_the_temporary_url(platform, fake):
    code = fake.add_file(b"%PDF-1.4 fake")
    assert await platform.fetch_media(MediaRef(platform_media_id=code)) == b"%PDF-1.4 fake"


async def test_an_expired_download_code_or_an_oversized_file_is_unavailable(platform, fake):
    with pytest.raises(MediaUnavailable):
        await platform.fetch_media(MediaRef(platform_media_id="expired-code"))
    big = fake.add_file(b"x" * 1_000_001)
    with pytest.raises(MediaUnavailable, match="larger than"):
        await platform.fetch_media(MediaRef(platform_media_id=big))


# ---------------------------------------------------------------------- groups (through a runtime)


async def team_address(runtime) -> str:
    async with runtime.sessions() as session:
        team = await session.scalar(select(Team).where(Team.key == "east"))
    return f"team:{team.id}"


async def test_group_text_goes_through_the_signed_custom_robot_never_past_20_a_minute(runtime, fake):
    dingtalk = runtime.platforms["dingtalk"]
    target = await team_address(runtime)
    for i in range(20):
        await dingtalk.deliver(item("text", {"text": f"{i}"}, target=target, target_kind="group"))
    with pytest.raises(DeliveryError) as info:
        await dingtalk.deliver(item("text", {"text": "21"}, target=target, target_kind="group"))
    assert info.value.retryable and 0 < info.value.retry_after <= 61
    assert len(fake.robot_messages[fakes.ROBOT_TOKEN]) == 20  # the fake checked every signature
    assert fake.metered_calls == 0


async def test_a_group_image_goes_through_the_app_robot_in_the_group(runtime, fake):
    dingtalk = runtime.platforms["dingtalk"]
    sha = runtime.media.store_generated(jpeg(), "jpg")
    await dingtalk.deliver(item("image", {"sha256": sha}, target=await team_address(runtime), target_kind="group"))
    (message,) = fake.group_messages
    assert message["cid"] == fakes.GROUP_CID and message["msgKey"] == "sampleImageMsg"


async def test_metered_calls_are_counted_and_admins_warned_once_at_80_percent(runtime, fake):
    dingtalk = runtime.platforms["dingtalk"]
    for i in range(6):  # quota 5: the warning is due at the 4th call
        await dingtalk.deliver(item("text", {"text": f"{i}"}, target="0100"))
    async with runtime.sessions() as session:
        assert await api_usage.api_calls(session, "dingtalk", "2026-11") == 6
        warnings = list(await session.scalars(select(OutboxItem).where(OutboxItem.target == ADMIN)))
    (warning,) = warnings
    assert warning.payload["text"] == texts.QUOTA_WARNING.format(calls=4, quota=5, percent=80)


# ---------------------------------------------------------------------- directory


async def test_directory_sync_builds_teams_managers_and_members_with_paging(runtime, fake):
    fake.departments = {1: {"name": "公司", "parent_id": None, "managers": []},
                        10: {"name": "华东销售部", "parent_id": 1, "managers": ["m10"]},
                        11: {"name": "华南销售部", "parent_id": 1, "managers": []}}
    fake.users = {1: [], 10: [{"userid": "m10", "name": "王经理", "dept_id_list": [10]}]
                  + [{"userid": f"r{i}", "name": f"销售{i}", "dept_id_list": [10]} for i in range(150)],
                  11: [{"userid": "m11", "name": "陈经理", "leader": True, "dept_id_list": [11]},
                       {"userid": "0110", "name": "李明", "dept_id_list": [11], "active": False}]}
    async with runtime.sessions() as session:
        report = await sync_directory(session, runtime.platforms["dingtalk"].client, now=START)
        await session.commit()
    assert (report.departments, report.users, report.teams_created) == (3, 153, 3)
    assert len(fake.calls("/topapi/v2/user/list")) == 1 + 2 + 1  # 151 users in dept 10: two pages
    async with runtime.sessions() as session:
        teams = {t.key: t for t in await session.scalars(select(Team))}
        members = {m.dingtalk_staff_id: m for m in await session.scalars(select(Member)) if m.dingtalk_staff_id}
    assert teams["dingtalk-10"].manager_id == members["m10"].id and members["m10"].role is Role.MANAGER
    assert teams["dingtalk-11"].manager_id == members["m11"].id
    assert members["r7"].team_id == teams["dingtalk-10"].id and members["r7"].role is Role.REP
    assert members["0110"].code == "rep.li" and members["0110"].active is False


async def test_directory_sync_keeps_an_admins_role(runtime, fake):
    fake.departments = {1: {"name": "公司", "parent_id": None, "managers": [ADMIN]}}
    fake.users = {1: [{"userid": ADMIN, "name": "何敏", "dept_id_list": [1]}]}
    async with runtime.sessions() as session:
        await sync_directory(session, runtime.platforms["dingtalk"].client, now=START)
        await session.commit()
    async with runtime.sessions() as session:
        admin = await session.scalar(select(Member).where(Member.dingtalk_staff_id == ADMIN))
    assert admin.role is Role.ADMIN


# ---------------------------------------------------------------------- the command line


def cli_config(tmp_path: Path, fake: fakes.FakeDingTalk | None) -> str:
    path = tmp_path / "pacebot.toml"
    text = f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\ndata_dir = "{tmp_path}/data"\n'
    if fake is not None:
        text += (f'[dingtalk]\nenabled = true\napp_key = "{fakes.APP_KEY}"\napp_secret = "{fakes.APP_SECRET}"\n'
                 f'api_base = "{fake.base_url}"\noapi_base = "{fake.base_url}"\nca_file = "{fakes.tls().ca_file}"\n')
    path.write_text(text, encoding="utf-8")
    return str(path)


async def test_pacebot_sync_dingtalk_imports_the_directory(tmp_path, fake, capsys):
    from bot.cli import main

    fake.departments = {1: {"name": "公司", "parent_id": None, "managers": ["m1"]}}
    fake.users = {1: [{"userid": "m1", "name": "王经理", "dept_id_list": [1]},
                      {"userid": "r1", "name": "李明", "dept_id_list": [1]}]}
    # The command runs its own event loop; the fake keeps serving on this one.
    assert await asyncio.to_thread(main, ["--config", cli_config(tmp_path, fake), "sync", "dingtalk"]) == 0
    assert "DingTalk directory: 1 departments (1 new teams), 2 users (2 new" in capsys.readouterr().out


async def test_pacebot_sync_dingtalk_needs_dingtalk_enabled(tmp_path, capsys):
    from bot.cli import main

    assert await asyncio.to_thread(main, ["--config", cli_config(tmp_path, None), "sync", "dingtalk"]) == 2
    assert "dingtalk.enabled: must be true" in capsys.readouterr().err

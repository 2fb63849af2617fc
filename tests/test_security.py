"""Hostile input at the edges: WeCom callbacks, the feedback webhook, invisible names, image memory."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.app import RUNTIME, create_app
from bot.clock import FrozenClock, ShiftableClock
from bot.config import config_from_dict
from bot.observability import METRICS
from bot.platforms.wecom import parse
from domain.text import has_visible_content, unstorable_reason, visible_text
from storage.media import MediaRejected, MediaStore
from storage.models import CustomerFeedback, InboxItem
from tests.conftest import START, Console, make_config
from tests.fakes import wecom as fakes
from tests.pg import POSTGRES_URL, requires_postgres, scratch_database
from tests.seed import add_customer
from tests.wecom_support import inbox_only_app

PATH = "/wecom/callback"
crypto = fakes.default_crypto()


@pytest.fixture
async def wecom_client(aiohttp_client: Any, tmp_path: Path) -> Any:
    return await aiohttp_client(inbox_only_app(tmp_path))


async def inbox_count(client: Any) -> int:
    async with client.server.app[RUNTIME].sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboxItem)) or 0)


def nested_body(size: int = 1_000_000) -> bytes:
    depth = size // 7
    return b"<a>" * depth + b"x" + b"</a>" * depth


# --- WeCom: signature first, bounded envelope scan, parsing off the loop, timestamp window -----------


async def test_an_unsigned_flood_of_deep_megabyte_bodies_never_reaches_an_xml_parser(wecom_client, monkeypatch):
    calls: list[int] = []
    real = parse.fromstring

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(parse, "fromstring", counting)
    body = nested_body()
    assert len(body) > 900_000
    signed_for_nothing = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    for _ in range(20):
        resp = await wecom_client.post(PATH, params=signed_for_nothing, data=body)
        assert resp.status == 400
    # A flat body with an Encrypt element but a wrong signature is refused 403, also unparsed.
    params, good_body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", "m-flood"))
    params["msg_signature"] = "f" * 40
    resp = await wecom_client.post(PATH, params=params, data=good_body)
    assert resp.status == 403
    assert calls == []
    assert await inbox_count(wecom_client) == 0
    # A signed callback still goes through (and is the only thing ever parsed).
    params, good_body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", "m-ok"))
    resp = await wecom_client.post(PATH, params=params, data=good_body)
    assert resp.status == 200
    assert len(calls) == 1
    assert await inbox_count(wecom_client) == 1


async def test_refused_callbacks_are_counted_by_reason(wecom_client):
    before = METRICS.sample("pacebot_callbacks_refused_total", {"platform": "wecom", "reason": "hostile_envelope"})
    params = {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1"}
    for _ in range(3):
        assert (await wecom_client.post(PATH, params=params, data=nested_body(10_000))).status == 400
    after = METRICS.sample("pacebot_callbacks_refused_total", {"platform": "wecom", "reason": "hostile_envelope"})
    assert after - before == 3


@pytest.mark.parametrize("days", [-90, -2, 2])
async def test_a_signed_callback_outside_the_timestamp_window_is_refused_with_403_and_not_stored(
    wecom_client, days
):
    stamp = str(int(time.time()) + days * 86400)
    params, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", f"m-old{days}"), timestamp=stamp)
    resp = await wecom_client.post(PATH, params=params, data=body)
    assert resp.status == 403
    assert await inbox_count(wecom_client) == 0


async def test_a_callback_inside_the_window_is_accepted_and_its_replay_absorbed(wecom_client):
    stamp = str(int(time.time()) - 3600)
    params, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", "m-replay"), timestamp=stamp)
    for _ in range(3):
        resp = await wecom_client.post(PATH, params=params, data=body)
        assert resp.status == 200
    assert await inbox_count(wecom_client) == 1


async def test_a_non_numeric_timestamp_is_refused_with_400(wecom_client):
    params, body = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", "m-ts"), timestamp="yesterday")
    assert (await wecom_client.post(PATH, params=params, data=body)).status == 400
    assert await inbox_count(wecom_client) == 0


def test_the_window_is_configurable_and_must_be_positive():
    assert config_from_dict({}).wecom.timestamp_window_seconds == 86400
    assert config_from_dict({"wecom": {"timestamp_window_seconds": 300}}).wecom.timestamp_window_seconds == 300
    with pytest.raises(ValueError, match="wecom.timestamp_window_seconds"):
        config_from_dict({"wecom": {"timestamp_window_seconds": 0}})


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<a>" * 5 + b"</a>" * 5, "nested deeper"),
        (b"<xml>" + b"<b/>" * 40 + b"</xml>", "more than"),
        (b'<!DOCTYPE x [<!ENTITY e "y">]><xml><Encrypt>&e;</Encrypt></xml>', "DTD"),
    ],
)
def test_the_envelope_scan_refuses_deep_wide_or_dtd_envelopes(body, error):
    with pytest.raises(parse.EnvelopeRefused, match=error):
        parse.extract_encrypt(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<xml><ToUserName>x</ToUserName></xml>",
        b"<xml><Encrypt>abc</Encrypt><Encrypt>def</Encrypt></xml>",
        b"<xml><Encrypt>abc</xml>",
        b"<xml><Encrypt>a&amp;b</Encrypt></xml>",
        b"<xml><Encrypt><![CDATA[abc</Encrypt></xml>",
        b"<xml><Encrypt>abc</Encrypt></xml><xml/>",
        b"junk<xml><Encrypt>abc</Encrypt></xml>",
        "<xml><Encrypt>密文</Encrypt></xml>".encode(),
    ],
)
def test_the_envelope_scan_refuses_malformed_envelopes(body):
    with pytest.raises(parse.MalformedPayload):
        parse.extract_encrypt(body)


def test_the_envelope_scan_finds_encrypt_in_cdata_or_text_and_ignores_unsigned_fields():
    assert parse.extract_encrypt(
        b'<?xml version="1.0"?><xml><ToUserName><![CDATA[ww1]]></ToUserName>'
        b"<Encrypt><![CDATA[QUJD+/==]]></Encrypt><AgentID>7</AgentID></xml>"
    ) == "QUJD+/=="
    assert parse.extract_encrypt(b"<xml>\n  <Encrypt> QUJD </Encrypt>\n</xml>\n") == "QUJD"


# --- the feedback webhook: unstorable strings refused before 202 ---------------------------------------

SECRET = "feedback-secret-for-tests"


async def post_feedback(console: Console, raw: bytes) -> tuple[int, dict[str, Any]]:
    response = await console.client.post(
        "/feedback", data=raw, headers={"Content-Type": "application/json", "X-Pacebot-Secret": SECRET}
    )
    return response.status, await response.json()


async def nothing_stored(console: Console) -> bool:
    async with console.runtime.sessions() as session:
        inbox = await session.scalar(select(func.count()).select_from(InboxItem).where(InboxItem.platform == "feedback"))
        stored = await session.scalar(select(func.count()).select_from(CustomerFeedback))
    return inbox == 0 and stored == 0


UNSTORABLE = [
    # JSON escapes reach the parser intact: a lone surrogate and a NUL, in text and in the id.
    (b'{"id": "f1", "customer": "\\u534e\\u4e1c\\u5efa\\u6750", "options": ["a"], "comment": "ok\\ud800"}',
     "comment", "代理字符 U+D800"),
    (b'{"id": "f\\udfff", "customer": "\\u534e\\u4e1c\\u5efa\\u6750", "options": ["a"]}', "id", "U+DFFF"),
    (b'{"id": "f\\u0000", "customer": "\\u534e\\u4e1c\\u5efa\\u6750", "options": ["a"]}', "id", "NUL"),
    (b'{"id": "f2", "customer": "\\u534e\\u4e1c\\u5efa\\u6750", "options": ["a\\u0000b"]}', "options[0]", "NUL"),
    (b'{"id": "f3", "customer": "\\u534e\\u4e1c\\u5efa\\u6750\\u0000", "options": ["a"]}', "customer", "NUL"),
]


async def check_unstorable_refused(console: Console) -> None:
    await add_customer(console.runtime, "rep.li", "华东建材")
    for raw, field, reason in UNSTORABLE:
        status, answer = await post_feedback(console, raw)
        assert status == 400, (raw, answer)
        assert answer["error"] == "bad_character"
        assert f"字段 {field} 无效" in answer["message"] and reason in answer["message"], answer
    assert await nothing_stored(console)


@pytest.fixture
def feedback_config(tmp_path: Path) -> Any:
    return make_config(tmp_path, feedback={"secret": SECRET})


async def test_feedback_with_a_lone_surrogate_or_nul_is_refused_with_the_field_and_stores_nothing(
    aiohttp_client, feedback_config
):
    client = await aiohttp_client(create_app(feedback_config, clock=ShiftableClock(base=FrozenClock(START))))
    await check_unstorable_refused(Console(client))


@requires_postgres
@pytest.mark.postgres
async def test_feedback_with_a_lone_surrogate_or_nul_is_refused_on_postgresql(aiohttp_client, tmp_path):
    assert POSTGRES_URL
    async with scratch_database() as url:
        config = make_config(tmp_path, feedback={"secret": SECRET}, storage={"url": url})
        client = await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START))))
        try:
            await check_unstorable_refused(Console(client))
        finally:
            await client.close()


async def test_feedback_naming_a_customer_with_only_invisible_characters_is_refused(aiohttp_client, feedback_config):
    client = await aiohttp_client(create_app(feedback_config, clock=ShiftableClock(base=FrozenClock(START))))
    console = Console(client)
    raw = json.dumps({"id": "zw", "customer": "\u200b\u200c\u200d\ufeff", "options": ["a"]}).encode()
    status, answer = await post_feedback(console, raw)
    assert status == 400 and "不可见字符" in answer["message"]
    assert await nothing_stored(console)


# --- domain.text: what is invisible is not a name -----------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("\u200b\u200c\u200d", ""),
        ("\ufeff\u2060\u00ad", ""),
        ("\u3164\u2800", ""),
        ("华东\u200b建材", "华东建材"),
        ("  华东\t建材\n ", "华东 建材"),
        ("\u202e华东建材\u202c", "华东建材"),
        ("e\u0301", "\u00e9"),  # NFC
        ("a\x00b\x07c", "abc"),
        ("张总\ufe0f", "张总"),
    ],
)
def test_visible_text_drops_invisible_and_control_characters(given, expected):
    assert visible_text(given) == expected
    assert has_visible_content(given) is bool(expected)


@pytest.mark.parametrize(
    ("given", "reason"),
    [("ok", None), ("a\x00", "NUL character at position 1"), ("\ud83d", "lone surrogate U+D83D at position 0")],
)
def test_unstorable_reason_names_nul_and_lone_surrogates(given, reason):
    assert unstorable_reason(given) == reason


# --- image memory ---------------------------------------------------------------------------------------


def rgba_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (width, height), (10, 20, 30, 128)).save(buf, "PNG")
    return buf.getvalue()


def test_an_rgba_png_just_under_the_pixel_cap_is_refused_by_its_decoded_size(tmp_path: Path):
    store = MediaStore(tmp_path, max_image_pixels=1_000_000, max_decoded_bytes=2_000_000)
    data = rgba_png(999, 1000)  # 999,000 pixels: under the pixel cap; 3,996,000 bytes decoded
    with pytest.raises(MediaRejected, match="bytes decoded, limit is 2000000"):
        store.store(data, kind_hint="photo")
    assert not (tmp_path / "evidence").exists() or not list((tmp_path / "evidence").rglob("*"))


def test_an_rgba_png_over_the_decoded_cap_is_refused_without_decoding_its_pixels(tmp_path: Path, monkeypatch):
    from PIL import PngImagePlugin

    loads: list[int] = []
    real = PngImagePlugin.PngImageFile.load

    def counting(self: Any) -> Any:
        loads.append(1)
        return real(self)

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", counting)
    store = MediaStore(tmp_path, max_image_pixels=1_000_000, max_decoded_bytes=2_000_000)
    with pytest.raises(MediaRejected):
        store.store(rgba_png(999, 1000), kind_hint="photo")
    assert loads == []


def test_the_same_png_in_grey_fits_the_decoded_cap_and_is_stored(tmp_path: Path):
    store = MediaStore(tmp_path, max_image_pixels=1_000_000, max_decoded_bytes=2_000_000)
    buf = io.BytesIO()
    Image.new("L", (999, 1000), 128).save(buf, "PNG")
    stored = store.store(buf.getvalue(), kind_hint="photo")
    assert (stored.width, stored.height) == (999, 1000)
    assert stored.thumb_path and (tmp_path / stored.thumb_path).is_file()


def test_a_large_jpeg_is_decoded_reduced_within_the_cap(tmp_path: Path):
    # 4000 × 3000 RGB = 48 MB decoded in full; with draft() at 1/8 it is under 1 MB.
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (200, 100, 50)).save(buf, "JPEG", quality=70)
    store = MediaStore(tmp_path, max_decoded_bytes=2_000_000, thumb_size=320)
    stored = store.store(buf.getvalue(), kind_hint="photo")
    assert (stored.width, stored.height) == (4000, 3000)  # the real size, not the reduced one
    with Image.open(tmp_path / stored.thumb_path) as thumb:
        assert max(thumb.size) == 320


def test_decoding_is_bounded_by_the_configured_number_of_slots(tmp_path: Path):
    import threading

    store = MediaStore(tmp_path, decode_concurrency=1)
    inside: list[int] = []
    peak: list[int] = [0]
    lock = threading.Lock()
    real = store._decode_photo

    def tracking(*args: Any) -> Any:
        with lock:
            inside.append(1)
            peak[0] = max(peak[0], len(inside))
        try:
            time.sleep(0.02)
            return real(*args)
        finally:
            with lock:
                inside.pop()

    store._decode_photo = tracking  # type: ignore[method-assign]
    images = []
    for shade in range(4):
        buf = io.BytesIO()
        Image.new("RGB", (50, 50), (shade, 0, 0)).save(buf, "PNG")
        images.append(buf.getvalue())
    threads = [threading.Thread(target=store.store, args=(data,), kwargs={"kind_hint": "photo"}) for data in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 1
    assert len(list((tmp_path / "evidence").rglob("*.png"))) == 4


def test_media_limits_are_configuration():
    config = config_from_dict({"media": {"max_decoded_bytes": 5, "decode_concurrency": 3}})
    assert (config.media.max_decoded_bytes, config.media.decode_concurrency) == (5, 3)
    with pytest.raises(ValueError, match="media.decode_concurrency"):
        config_from_dict({"media": {"decode_concurrency": 0}})

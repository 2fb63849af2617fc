"""WeCom callback crypto, checked against the sample vectors in WeCom's callback documentation.

The vectors (Token "QDG6eK", CorpID "wx5823bf96d3bd56c7", EncodingAESKey "jWmY…B2C") are the ones
WeCom publishes with its 加解密 (callback encryption) guide and sample libraries: one URL
verification request and one encrypted message POST, with their expected plaintexts.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.appkeys import RUNTIME
from bot.config import WeComConfig
from bot.events import EventKind
from bot.platforms.wecom import parse
from bot.platforms.wecom.crypto import (
    DecryptionFailed,
    ReceiverMismatch,
    SignatureMismatch,
    WeComCrypto,
    signature,
)
from bot.platforms.wecom.routes import add_routes

# --- published sample vectors --------------------------------------------------------------------
TOKEN = "QDG6eK"
CORP_ID = "wx5823bf96d3bd56c7"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
VERIFY_PLAINTEXT = b"1616140317555161061"

POST = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
    "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+"
    "LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8"
    "V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1pt"
    "DAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
POST_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
    f"<Encrypt><![CDATA[{POST_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
).encode()
POST_PLAINTEXT = (
    b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    b"<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    b"<CreateTime>1409659813</CreateTime>\n"
    b"<MsgType><![CDATA[text]]></MsgType>\n"
    b"<Content><![CDATA[hello]]></Content>\n"
    b"<MsgId>4561255354251345929</MsgId>\n"
    b"<AgentID>218</AgentID>\n"
    b"</xml>"
)
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


def test_url_verification_signature_matches_the_published_sample():
    assert signature(TOKEN, VERIFY["timestamp"], VERIFY["nonce"], VERIFY["echostr"]) == VERIFY["msg_signature"]


def test_url_verification_echostr_decrypts_to_the_published_plaintext(crypto):
    plain = crypto.verify_and_decrypt(VERIFY["msg_signature"], VERIFY["timestamp"], VERIFY["nonce"], VERIFY["echostr"])
    assert plain == VERIFY_PLAINTEXT


def test_message_signature_matches_the_published_sample():
    assert signature(TOKEN, POST["timestamp"], POST["nonce"], POST_ENCRYPT) == POST["msg_signature"]


def test_published_message_decrypts_to_the_published_xml(crypto):
    plain = crypto.verify_and_decrypt(POST["msg_signature"], POST["timestamp"], POST["nonce"], POST_ENCRYPT)
    assert plain == POST_PLAINTEXT


def test_published_message_parses_to_a_text_event(crypto):
    event = parse.parse_message(crypto.decrypt(parse.envelope(POST_BODY)["encrypt"]))
    assert event.kind is EventKind.TEXT
    assert (event.sender, event.text, event.platform_msg_id) == ("mycreate", "hello", "4561255354251345929")


def test_encrypt_then_decrypt_round_trips_including_chinese_text(crypto):
    message = "<xml><Content><![CDATA[华东建材 张总 电话20分钟]]></Content></xml>".encode()
    for size in (0, 1, 11, 12, 13, 31, 32, 33, 4000):  # every padding length, incl. a whole block
        payload = message + b"x" * size
        assert crypto.decrypt(crypto.encrypt(payload)) == payload


def test_our_envelope_is_read_by_wechatpy_and_theirs_by_us(crypto):
    """A second, independent implementation agrees in both directions (besides the vectors)."""
    theirs = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    encrypted = crypto.encrypt(b"<xml><Content>ping</Content></xml>")
    sig = crypto.sign("1700000000", "42", encrypted)
    body = f"<xml><ToUserName>{CORP_ID}</ToUserName><Encrypt>{encrypted}</Encrypt></xml>"
    assert theirs.decrypt_message(body, sig, "1700000000", "42") == "<xml><Content>ping</Content></xml>"

    reply = theirs.encrypt_message("<xml><Content>pong</Content></xml>", "77", "1700000001")
    envelope = parse.parse_xml(reply.encode())
    got = crypto.verify_and_decrypt(
        envelope.findtext("MsgSignature"), envelope.findtext("TimeStamp"), envelope.findtext("Nonce"),
        envelope.findtext("Encrypt"),
    )
    assert got == b"<xml><Content>pong</Content></xml>"


def test_a_wrong_signature_is_refused_before_decrypting(crypto):
    with pytest.raises(SignatureMismatch):
        crypto.verify_and_decrypt("0" * 40, POST["timestamp"], POST["nonce"], POST_ENCRYPT)


def test_a_non_ascii_signature_is_a_mismatch_not_a_crash(crypto):
    with pytest.raises(SignatureMismatch):
        crypto.verify("签名" * 20, POST["timestamp"], POST["nonce"], POST_ENCRYPT)


def test_a_tampered_timestamp_breaks_the_signature(crypto):
    with pytest.raises(SignatureMismatch):
        crypto.verify(POST["msg_signature"], "1409659814", POST["nonce"], POST_ENCRYPT)


def test_an_envelope_for_another_corp_is_refused():
    other = WeComCrypto(TOKEN, AES_KEY, "wwsomeoneelse")
    with pytest.raises(ReceiverMismatch):
        other.decrypt(POST_ENCRYPT)


def test_the_wrong_aes_key_fails_cleanly():
    wrong = WeComCrypto(TOKEN, "A" * 43, CORP_ID)
    with pytest.raises((DecryptionFailed, ReceiverMismatch)):
        wrong.decrypt(POST_ENCRYPT)


@pytest.mark.parametrize("garbage", ["", "not base64!", "QUJD", "A" * 24])
def test_garbage_ciphertext_fails_cleanly(crypto, garbage):
    with pytest.raises(DecryptionFailed):
        crypto.decrypt(garbage)


def test_encoding_aes_key_must_decode_to_32_bytes():
    with pytest.raises(ValueError):
        WeComCrypto(TOKEN, AES_KEY[:-4], CORP_ID)


# --- the published vectors through the HTTP endpoint ---------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.events = []

    async def accept(self, event):
        self.events.append(event)
        from bot.inbox import Accepted

        return Accepted(len(self.events), True)


class _Runtime:
    def __init__(self) -> None:
        self.inbox = _Inbox()


@pytest.fixture
async def sample_client(aiohttp_client):
    app = web.Application()
    app[RUNTIME] = _Runtime()  # only the inbox is used by the callback
    # The published sample was signed in 2014: widen the replay window to take it.
    add_routes(app, WeComConfig(enabled=True, corp_id=CORP_ID, agent_id=218, secret="s", token=TOKEN,
                                encoding_aes_key=AES_KEY, timestamp_window_seconds=2**40))
    return await aiohttp_client(app)


async def test_endpoint_answers_the_published_url_verification_with_the_bare_plaintext(sample_client):
    # WeCom URL-encodes the query; "+" and "/" in echostr must survive.
    resp = await sample_client.get("/wecom/callback?" + urlencode(VERIFY))
    assert resp.status == 200
    assert await resp.read() == VERIFY_PLAINTEXT


async def test_endpoint_accepts_a_plus_left_unencoded_by_a_proxy(sample_client):
    raw = "&".join(f"{k}={v}" for k, v in VERIFY.items())  # "+" arrives as a space
    resp = await sample_client.get("/wecom/callback?" + raw)
    assert resp.status == 200
    assert await resp.read() == VERIFY_PLAINTEXT


async def test_endpoint_refuses_url_verification_with_a_wrong_signature(sample_client):
    resp = await sample_client.get("/wecom/callback?" + urlencode({**VERIFY, "msg_signature": "f" * 40}))
    assert resp.status == 403


async def test_endpoint_stores_the_published_message_and_acknowledges_with_an_empty_body(sample_client):
    resp = await sample_client.post("/wecom/callback?" + urlencode(POST), data=POST_BODY)
    assert resp.status == 200
    assert await resp.read() == b""
    (event,) = sample_client.app[RUNTIME].inbox.events
    assert (event.platform, event.sender, event.text) == ("wecom", "mycreate", "hello")


async def test_endpoint_refuses_the_published_message_with_a_wrong_signature(sample_client):
    resp = await sample_client.post("/wecom/callback?" + urlencode({**POST, "nonce": "1"}), data=POST_BODY)
    assert resp.status == 403
    assert sample_client.app[RUNTIME].inbox.events == []

"""The WeCom callback endpoint (接收消息服务器): URL verification (GET) and messages (POST).

POST: cap the body → parse the envelope → check the signature → decrypt (receive id = CorpID) →
parse → store in the inbox → answer 200 with an empty body. Nothing heavier happens before the
answer; the inbox worker does the rest. Every refusal changes nothing:

  403  wrong signature, or an envelope addressed to another corp
  400  missing query parameters, malformed or hostile XML (DTD, entities), undecryptable envelope
  413  body larger than ``wecom.max_body_bytes`` (declared or actually sent)

Message types Pacebot does not handle are acknowledged (200) and not stored, so WeCom does not
retry them.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.appkeys import RUNTIME
from bot.config import WeComConfig
from bot.platforms.wecom import parse
from bot.platforms.wecom.crypto import (
    DecryptionFailed,
    ReceiverMismatch,
    SignatureMismatch,
    WeComCrypto,
)

log = logging.getLogger(__name__)


def add_routes(app: web.Application, config: WeComConfig) -> None:
    callback = WeComCallback(config)
    app.router.add_get(config.callback_path, callback.verify_url)
    app.router.add_post(config.callback_path, callback.receive)


class BodyTooLarge(Exception):
    pass


class WeComCallback:
    def __init__(self, config: WeComConfig) -> None:
        self.crypto = WeComCrypto(config.token, config.encoding_aes_key, config.corp_id)
        self.max_body_bytes = config.max_body_bytes

    async def verify_url(self, request: web.Request) -> web.Response:
        """Echo the decrypted ``echostr``: how WeCom checks the URL when the admin saves it."""
        signature, timestamp, nonce = _signature_params(request)
        echostr = request.query.get("echostr", "")
        if not echostr:
            raise _refuse(request, 400, "echostr is missing")
        # A "+" that a proxy left unencoded arrives as a space; base64 has no spaces.
        echostr = echostr.replace(" ", "+")
        try:
            plain = self.crypto.verify_and_decrypt(signature, timestamp, nonce, echostr)
        except (SignatureMismatch, ReceiverMismatch) as exc:
            raise _refuse(request, 403, f"URL verification refused: {exc} (check wecom.token / wecom.corp_id)") from None
        except DecryptionFailed as exc:
            raise _refuse(request, 400, f"URL verification: {exc}") from None
        log.info("WeCom URL verification succeeded")
        return web.Response(body=plain, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce = _signature_params(request)
        try:
            body = await _read_capped(request, self.max_body_bytes)
        except BodyTooLarge as exc:
            raise _refuse(request, 413, str(exc)) from None
        try:
            envelope = parse.envelope(body)
        except parse.MalformedPayload as exc:
            raise _refuse(request, 400, f"callback envelope: {exc}") from None
        try:
            plain = self.crypto.verify_and_decrypt(signature, timestamp, nonce, envelope["encrypt"])
        except (SignatureMismatch, ReceiverMismatch) as exc:
            raise _refuse(request, 403, str(exc)) from None
        except DecryptionFailed as exc:
            raise _refuse(request, 400, f"{exc}") from None
        try:
            event = parse.parse_message(plain)
        except parse.MalformedPayload as exc:
            raise _refuse(request, 400, f"callback message: {exc}") from None
        if event is None:
            log.info("WeCom callback %s acknowledged and ignored (not used by Pacebot)", parse.describe(plain))
            return web.Response(status=200)
        accepted = await request.app[RUNTIME].inbox.accept(event)
        if not accepted.is_new:
            log.info("WeCom redelivered %s %s; already stored as inbox item %s",
                     event.kind.value, event.platform_msg_id, accepted.inbox_id)
        return web.Response(status=200)


def _signature_params(request: web.Request) -> tuple[str, str, str]:
    query = request.query
    values = tuple(query.get(name, "") for name in ("msg_signature", "timestamp", "nonce"))
    if not all(values) or any(len(v) > 128 for v in values):
        raise _refuse(request, 400, "msg_signature, timestamp and nonce are required")
    return values  # type: ignore[return-value]


async def _read_capped(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body of {declared} bytes declared; the limit is {limit}")
    data = bytearray()
    async for chunk in request.content.iter_chunked(65_536):
        data += chunk
        if len(data) > limit:
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
    return bytes(data)


_STATUS = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 413: web.HTTPRequestEntityTooLarge}


def _refuse(request: web.Request, status: int, reason: str) -> web.HTTPException:
    log.warning("WeCom callback from %s refused with %s: %s", request.remote, status, reason)
    cls = _STATUS[status]
    if cls is web.HTTPRequestEntityTooLarge:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text="request body too large")
    return cls(text=cls.__name__.removeprefix("HTTP"))

"""The WeCom callback endpoint (接收消息服务器): URL verification (GET) and messages (POST).

POST: judge the query string alone (parameters present and well-formed, ``timestamp`` inside the
window) → cap the body → find ``Encrypt`` with a bounded scan (no XML parser: the envelope's depth
and element count are bounded) → check the signature (it covers ``Encrypt`` only) → decrypt
(receive id = CorpID) and parse the inner XML with defusedxml (a large envelope in a thread, off the
event loop) → store in the inbox → answer 200 with an empty body. An unsigned body never reaches an XML parser:
a body whose markup shows it is no envelope, or whose ``Encrypt`` has arrived with a wrong
signature, is refused before the rest of it is read, and the connection of a refusal that leaves
a large body unread is closed rather than drained. Nothing heavier happens before the answer; the
inbox worker does the rest. Every refusal changes nothing, is counted
(``pacebot_callbacks_refused``), is logged at a bounded rate, and is priced by its address
(``shared.refusals.RefusalGuard``: a flood's refusals are answered late, genuine callbacks never):

  403  wrong (or not even well-formed) signature, an envelope addressed to another corp, or a
       ``timestamp`` further than ``wecom.timestamp_window_seconds`` from now (a replay of an old
       signed callback)
  400  missing query parameters, a ``timestamp`` that is not a number, an envelope too deep or with too many elements, malformed or
       hostile XML (DTD, entities), undecryptable envelope
  413  body larger than ``wecom.max_body_bytes`` (declared or actually sent)

A replayed callback inside the window is absorbed by de-duplication on the message id.

Message types Pacebot does not handle are acknowledged (200) and not stored, so WeCom does not
retry them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from aiohttp import web

from bot.appkeys import RUNTIME
from bot.clock import Clock, SystemClock
from bot.config import WeComConfig
from bot.events import Event
from bot.observability import METRICS, log_fields, refusals
from bot.platforms.shared.http import BodyTooLarge
from bot.platforms.shared.refusals import RefusalGuard, mark_signed
from bot.platforms.wecom import parse
from bot.platforms.wecom.crypto import (
    DecryptionFailed,
    ReceiverMismatch,
    SignatureMismatch,
    WeComCrypto,
)

log = logging.getLogger(__name__)

# msg_signature is a SHA-1 in hex; anything else is refused from the query string alone.
_SIGNATURE = re.compile(r"\s*[0-9A-Fa-f]{40}\s*")
# Encrypted payloads up to this size are decrypted and parsed on the event loop (see ``receive``).
INLINE_OPEN_CHARS = 4096


def add_routes(app: web.Application, config: WeComConfig) -> None:
    callback = WeComCallback(config)
    app.router.add_get(config.callback_path, callback.verify_url)
    app.router.add_post(config.callback_path, callback.receive)


class WeComCallback:
    def __init__(self, config: WeComConfig, wall_clock: Clock | None = None) -> None:
        self.crypto = WeComCrypto(config.token, config.encoding_aes_key, config.corp_id)
        self.max_body_bytes = config.max_body_bytes
        self.timestamp_window = config.timestamp_window_seconds
        # WeCom signs with its wall-clock time; the runtime's clock may be moved for demos, so the
        # replay window is measured against the real clock.
        self.wall_clock = wall_clock or SystemClock()
        self.guard = RefusalGuard("wecom")
        self._received = METRICS.callbacks_received.labels(platform="wecom")

    def _check_timestamp(self, request: web.Request, timestamp: str) -> None:
        """Refuse a callback signed for another time: an old one replayed, or a forged clock."""
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise _refuse(request, 400, "timestamp is not an integer", "bad_timestamp")
        sent = int(timestamp)
        now = self.wall_clock.now().timestamp()
        if abs(now - sent) > self.timestamp_window:
            raise _refuse(
                request, 403,
                f"timestamp {sent} is {abs(now - sent):.0f} s from now (window {self.timestamp_window} s)",
                "stale_timestamp",
            )

    async def verify_url(self, request: web.Request) -> web.Response:
        """Echo the decrypted ``echostr``: how WeCom checks the URL when the admin saves it."""
        try:
            return self._verify_url(request)
        except web.HTTPException as refusal:
            await self.guard.settle(request, refusal)
            raise

    def _verify_url(self, request: web.Request) -> web.Response:
        self._received.inc()
        # No timestamp window here: a replayed verification only echoes a string and stores nothing.
        signature, timestamp, nonce = _signature_params(request)
        echostr = request.query.get("echostr", "")
        if not echostr:
            raise _refuse(request, 400, "echostr is missing", "missing_params")
        # A "+" that a proxy left unencoded arrives as a space; base64 has no spaces.
        echostr = echostr.replace(" ", "+")
        try:
            plain = self.crypto.verify_and_decrypt(signature, timestamp, nonce, echostr)
        except (SignatureMismatch, ReceiverMismatch) as exc:
            raise _refuse(request, 403, f"URL verification refused: {exc} (check wecom.token / wecom.corp_id)",
                          "bad_signature") from None
        except DecryptionFailed as exc:
            raise _refuse(request, 400, f"URL verification: {exc}", "undecryptable") from None
        log.info("WeCom URL verification succeeded")
        return web.Response(body=plain, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        try:
            return await self._receive(request)
        except web.HTTPException as refusal:  # every refusal; an acknowledgement is returned
            await self.guard.settle(request, refusal)
            raise

    async def _receive(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        self._received.inc()
        # Judged from the query string alone, before a byte of the body is read.
        signature, timestamp, nonce = _signature_params(request)
        if not _SIGNATURE.fullmatch(signature):
            raise _refuse(request, 403, "msg_signature is not a SHA-1 in hex", "bad_signature")
        self._check_timestamp(request, timestamp)
        try:
            body = await self._read_capped(request, signature, timestamp, nonce)
        except BodyTooLarge as exc:
            raise _refuse(request, 413, str(exc), "too_large") from None
        except parse.EnvelopeRefused as exc:
            raise _refuse(request, 400, f"callback envelope: {exc}", "hostile_envelope") from None
        except SignatureMismatch as exc:
            raise _refuse(request, 403, f"{exc} (judged before the whole body was read)", "bad_signature") from None
        try:
            encrypted = parse.extract_encrypt(body)
        except parse.EnvelopeRefused as exc:
            raise _refuse(request, 400, f"callback envelope: {exc}", "hostile_envelope") from None
        except parse.MalformedPayload as exc:
            raise _refuse(request, 400, f"callback envelope: {exc}", "malformed_envelope") from None
        try:
            self.crypto.verify(signature, timestamp, nonce, encrypted)
        except SignatureMismatch as exc:
            raise _refuse(request, 403, str(exc), "bad_signature") from None
        mark_signed(request)
        # Signed by WeCom: only now are AES and an XML parser spent on it. A usual message (a few
        # hundred bytes: ~30 µs) is opened right here, which costs far less than handing it to a
        # thread and back; a large one goes to a thread so it never holds up the event loop.
        try:
            if len(encrypted) <= INLINE_OPEN_CHARS:
                event, ignored = self._open(encrypted)
            else:
                event, ignored = await asyncio.to_thread(self._open, encrypted)
        except ReceiverMismatch as exc:
            raise _refuse(request, 403, str(exc), "wrong_receiver") from None
        except DecryptionFailed as exc:
            raise _refuse(request, 400, f"{exc}", "undecryptable") from None
        except parse.MalformedPayload as exc:
            raise _refuse(request, 400, f"callback message: {exc}", "malformed_message") from None
        if event is None:
            log.info("WeCom callback %s acknowledged and ignored (not used by Pacebot)", ignored)
            return web.Response(status=200)
        with log_fields(platform="wecom", member=event.sender):
            accepted = await request.app[RUNTIME].inbox.accept(event)
            if not accepted.is_new:
                log.info("WeCom redelivered %s %s; already stored as inbox item %s",
                         event.kind.value, event.platform_msg_id, accepted.inbox_id,
                         extra={"event_id": accepted.inbox_id})
        METRICS.ack_latency.labels(platform="wecom").observe(time.perf_counter() - started)
        return web.Response(status=200)

    async def _read_capped(self, request: web.Request, signature: str, timestamp: str, nonce: str) -> bytes:
        """The body, capped like ``shared.http.read_capped``, and refused as soon as it can be judged
        while it arrives: markup showing it is no WeCom envelope (a flood of nested XML is never
        read to its end), or an ``Encrypt`` that has arrived whole with a wrong signature."""
        limit = self.max_body_bytes
        declared = request.content_length
        if declared is not None and declared > limit:
            raise BodyTooLarge(f"body of {declared} bytes declared; the limit is {limit}")
        data = bytearray()
        markup = 0
        judged = False
        async for chunk in request.content.iter_chunked(65_536):
            data += chunk
            if len(data) > limit:
                raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
            markup = parse.count_markup(chunk, markup)
            if not judged and not request.content.is_eof():
                encrypted = parse.peek_encrypt(data)
                if encrypted is not None:
                    judged = True
                    self.crypto.verify(signature, timestamp, nonce, encrypted)
        return bytes(data)

    def _open(self, encrypted: str) -> tuple[Event | None, str]:
        """Decrypt and parse a signed envelope (blocking: runs in a worker thread).

        The event, or ``None`` and the MsgType/Event of a callback Pacebot does not use.
        """
        plain = self.crypto.decrypt(encrypted)
        event = parse.parse_message(plain)
        return event, ("" if event is not None else parse.describe(plain))


def _signature_params(request: web.Request) -> tuple[str, str, str]:
    query = request.query
    values = tuple(query.get(name, "") for name in ("msg_signature", "timestamp", "nonce"))
    if not all(values) or any(len(v) > 128 for v in values):
        raise _refuse(request, 400, "msg_signature, timestamp and nonce are required", "missing_params")
    return values  # type: ignore[return-value]


_STATUS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 403: web.HTTPForbidden, 413: web.HTTPRequestEntityTooLarge
}
_TEXT = {status: cls.__name__.removeprefix("HTTP") for status, cls in _STATUS.items()}


def _refuse(request: web.Request, status: int, reason: str, code: str = "bad_request") -> web.HTTPException:
    METRICS.callbacks_refused.labels(platform="wecom", reason=code).inc()
    refusals.warning("wecom", code, "WeCom callback from %s refused with %s: %s", request.remote, status, reason)
    if status == 413:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text="request body too large")
    return _STATUS[status](text=_TEXT[status])

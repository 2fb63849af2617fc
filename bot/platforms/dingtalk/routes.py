"""How DingTalk's callbacks come in: ``POST <callback_path>`` (HTTP mode) or the Stream connection.

HTTP: check the signature headers (before a byte of the body is read) → cap the body → parse →
store in the inbox → 200 with ``{}``. Nothing heavier happens before the answer; the inbox worker
does the rest. Every refusal changes nothing, is counted (``pacebot_callbacks_refused``), is logged
at a bounded rate, closes the connection rather than read a large body it leaves unread, and is
priced by its address (``shared.refusals.RefusalGuard``: a flood's refusals are answered late,
signed callbacks never):

  403  missing, malformed, wrong or stale signature (``timestamp`` in ms, ``sign`` =
       Base64(HmacSHA256(AppSecret, timestamp + "\\n" + AppSecret)), at most one hour off), or a
       message for another robot
  400  malformed JSON, or a required field missing
  413  body larger than ``dingtalk.max_body_bytes`` (declared or actually sent)

Stream: a ``StreamClient`` started after the runtime and stopped before it (``cleanup_ctx``);
each frame goes through the same ``store`` as an HTTP callback, then it is ACKed.

Both modes remember each message's ``sessionWebhook`` on the platform, so the replies go out
through it (free) while it is valid.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.appkeys import RUNTIME
from bot.config import DingTalkConfig
from bot.observability import METRICS, refusals
from bot.platforms.dingtalk import parse
from bot.platforms.dingtalk.adapter import DingTalkPlatform
from bot.platforms.dingtalk.client import sign
from bot.platforms.dingtalk.stream import StreamClient
from bot.platforms.shared.http import BodyTooLarge, read_capped
from bot.platforms.shared.refusals import RefusalGuard, mark_signed
from bot.runtime import Runtime

log = logging.getLogger(__name__)

MAX_CLOCK_SKEW_MS = 3_600_000
STREAM = web.AppKey("dingtalk_stream", StreamClient)


def add_routes(app: web.Application, config: DingTalkConfig) -> None:
    if config.mode == "stream":
        app.cleanup_ctx.append(_stream_ctx(config))
    else:
        app.router.add_post(config.callback_path, DingTalkCallback(config).receive)


def platform_of(runtime: Runtime) -> DingTalkPlatform:
    platform = runtime.platforms.get(parse.PLATFORM)
    if not isinstance(platform, DingTalkPlatform):
        raise RuntimeError("the DingTalk platform is not configured")
    return platform


async def store(runtime: Runtime, incoming: parse.Incoming) -> None:
    """Store the callback's events (in order) in the inbox; remember where to answer for free."""
    for event in incoming.events:
        accepted = await runtime.inbox.accept(event)
        if not accepted.is_new:
            log.info("DingTalk redelivered %s %s; already stored as inbox item %s",
                     event.kind.value, event.platform_msg_id, accepted.inbox_id)
    if incoming.reply_address.startswith(parse.GROUP_PREFIX):
        # Admins need this id for a team's group_chat.dingtalk_conversation_id.
        log.info("DingTalk group message in conversation %s", incoming.reply_address.removeprefix(parse.GROUP_PREFIX))
    if not incoming.events:
        log.info("DingTalk %s message acknowledged and ignored (not used by Pacebot)", incoming.description or "?")
    if incoming.session_webhook:
        platform_of(runtime).remember_session(incoming.reply_address, incoming.session_webhook,
                                              incoming.session_webhook_expires_ms)


def signature_is_valid(secret: str, timestamp: str, signature: str, *, now_ms: int) -> bool:
    if not timestamp.isdigit() or len(timestamp) > 16 or not signature or len(signature) > 128:
        return False
    if abs(now_ms - int(timestamp)) > MAX_CLOCK_SKEW_MS:
        return False
    return hmac.compare_digest(sign(secret, timestamp).encode(), signature.encode("utf-8", "replace"))


class DingTalkCallback:
    def __init__(self, config: DingTalkConfig) -> None:
        self.secret = config.app_secret
        self.robot = config.robot
        self.max_body_bytes = config.max_body_bytes
        self.guard = RefusalGuard("dingtalk")
        self._received = METRICS.callbacks_received.labels(platform=parse.PLATFORM)

    async def receive(self, request: web.Request) -> web.Response:
        try:
            return await self._receive(request)
        except web.HTTPException as refusal:  # every refusal; an acknowledgement is returned
            await self.guard.settle(request, refusal)
            raise

    async def _receive(self, request: web.Request) -> web.Response:
        self._received.inc()
        timestamp = request.headers.get("timestamp", "")
        signature = request.headers.get("sign", "")
        if not signature_is_valid(self.secret, timestamp, signature, now_ms=int(time.time() * 1000)):
            raise _refuse(request, 403, "missing, wrong or stale signature (check dingtalk.app_secret and the clock)",
                          "bad_signature")
        mark_signed(request)
        try:
            body = await read_capped(request, self.max_body_bytes)
        except BodyTooLarge as exc:
            raise _refuse(request, 413, str(exc), "too_large") from None
        try:
            payload = parse.load_json(body)
            robot = payload.get("robotCode")
            if robot and robot != self.robot and "msgId" in payload:
                raise _refuse(request, 403, "a message for another robot (check dingtalk.robot_code)", "wrong_robot")
            incoming = parse.parse_callback(payload)
        except parse.MalformedPayload as exc:
            raise _refuse(request, 400, f"callback: {exc}", "malformed_message") from None
        await store(request.app[RUNTIME], incoming)
        return web.json_response({})


_STATUS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 403: web.HTTPForbidden, 413: web.HTTPRequestEntityTooLarge,
}
_TEXT = {status: json.dumps({"error": cls.__name__.removeprefix("HTTP")}) for status, cls in _STATUS.items()}


def _refuse(request: web.Request, status: int, reason: str, code: str) -> web.HTTPException:
    METRICS.callbacks_refused.labels(platform=parse.PLATFORM, reason=code).inc()
    refusals.warning("dingtalk", code, "DingTalk callback from %s refused with %s: %s", request.remote, status, reason)
    if status == 413:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text="request body too large")
    return _STATUS[status](text=_TEXT[status], content_type="application/json")


def _stream_ctx(config: DingTalkConfig) -> Any:
    async def stream_ctx(app: web.Application) -> AsyncIterator[None]:
        runtime = app[RUNTIME]
        platform = platform_of(runtime)

        async def handle(topic: str, data: dict[str, Any]) -> None:
            await store(runtime, parse.parse_callback(data))

        client = StreamClient(platform.client, handle, ssl_context=platform.client.ssl_context,
                              max_inflight=config.stream_max_inflight)
        app[STREAM] = client
        client.start()
        yield
        await client.stop()

    return stream_ctx

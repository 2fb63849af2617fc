"""``POST /feedback``: customer feedback from a form tool (客户声音, SPEC §7).

Authentication uses the shared secret ``feedback.secret``, in one of two ways:

- ``X-Pacebot-Secret: <secret>`` — for form tools that can only add a fixed header;
- ``X-Pacebot-Signature: sha256=<hex>`` — HMAC-SHA256 of the raw body keyed with the secret,
  which also protects the body and keeps the secret off the wire.

Both are compared in constant time. While the secret is empty the webhook refuses everything.
The secret header is judged before a byte of the body is read; refusals are counted, logged at a
bounded rate, and those of requests not authenticated are priced by their address
(``bot.platforms.shared.refusals``: a flood's refusals are answered late, authenticated requests
never wait).

Body (JSON object, at most ``MAX_BODY_BYTES``)::

    {"id": "form-123", "customer": "华东建材" | {"id": 42},
     "options": ["操作太复杂", ...], "comment": "..."}

Answers (JSON ``{"status"|"error", "message", ...}``); every refusal stores nothing:

  202  accepted into the inbox; processed after the answer
  200  duplicate ``id``: accepted before, ignored now
  400  malformed JSON or an invalid field; a NUL or a lone surrogate in any string (they cannot be
       stored: PostgreSQL refuses NUL, UTF-8 cannot encode a surrogate); a customer name with no
       visible character (only zero-width or control characters)
  401  no secret and no signature given
  403  wrong secret or signature, or the webhook is disabled (empty ``feedback.secret``)
  404  no such customer
  409  the customer name is shared by several customers: send ``{"id": n}``
  413  body too large
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.appkeys import RUNTIME
from bot.config import Config, FeedbackConfig
from bot.events import Event, EventKind
from bot.observability import METRICS, log_fields, refusals
from bot.platforms.shared.refusals import RefusalGuard, mark_signed
from domain.text import unstorable_reason, visible_text
from handlers import texts_library as texts
from storage import customers as customer_store
from storage import feedback as feedback_store

log = logging.getLogger(__name__)

PATH = "/feedback"
PLATFORM = "feedback"
JOB = "customer_feedback"
SECRET_HEADER = "X-Pacebot-Secret"
SIGNATURE_HEADER = "X-Pacebot-Signature"
MAX_BODY_BYTES = 64 * 1024
MAX_ID_CHARS = 100
MAX_NAME_CHARS = 128
MAX_OPTIONS = 20
MAX_OPTION_CHARS = 64
MAX_COMMENT_CHARS = 2000


def add_routes(app: web.Application, config: Config) -> None:
    app.router.add_post(PATH, FeedbackWebhook(config.feedback).receive)


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class FeedbackPayload:
    id: str
    customer_id: int | None
    customer_name: str | None
    options: tuple[str, ...]
    comment: str


class FeedbackWebhook:
    def __init__(self, config: FeedbackConfig) -> None:
        self.secret = config.secret.encode()
        self.guard = RefusalGuard("feedback")
        self._received = METRICS.callbacks_received.labels(platform=PLATFORM)

    async def receive(self, request: web.Request) -> web.Response:
        try:
            return await self._receive(request)
        except Refused as exc:
            METRICS.callbacks_refused.labels(platform=PLATFORM, reason=exc.code).inc()
            refusals.warning("feedback", exc.code, "feedback webhook from %s refused with %s: %s",
                             request.remote, exc.status, exc.code)
            response = _json({"error": exc.code, "message": exc.message}, exc.status)
            await self.guard.settle(request, response)
            return response

    async def _receive(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        self._received.inc()
        if not self.secret:
            raise Refused(403, "disabled", texts.WEBHOOK_DISABLED)
        given_secret = request.headers.get(SECRET_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not given_secret and not signature:
            raise Refused(401, "unauthenticated", texts.WEBHOOK_NO_SECRET)
        if given_secret and not hmac.compare_digest(given_secret.encode(), self.secret):
            raise Refused(403, "bad_secret", texts.WEBHOOK_BAD_SECRET)
        if given_secret:
            mark_signed(request)
        body = await _read_capped(request, MAX_BODY_BYTES)
        if not given_secret and not _signature_matches(self.secret, body, signature or ""):
            raise Refused(403, "bad_signature", texts.WEBHOOK_BAD_SECRET)
        mark_signed(request)
        payload = parse_payload(body)
        runtime = request.app[RUNTIME]
        async with runtime.sessions() as session:
            customer_id = await _resolve_customer(session, payload)
        event = Event(
            platform=PLATFORM,
            platform_msg_id=f"{PLATFORM}:{payload.id}",
            kind=EventKind.SYSTEM,
            occurred_at=runtime.clock.now(),
            job=JOB,
            job_args={
                "id": payload.id,
                "customer_id": customer_id,
                "customer": payload.customer_name if payload.customer_name is not None else {"id": customer_id},
                "options": list(payload.options),
                "comment": payload.comment,
            },
        )
        with log_fields(platform=PLATFORM):
            accepted = await runtime.inbox.accept(event)
        if not accepted.is_new:
            log.info("feedback %r received again; already inbox item %s", payload.id, accepted.inbox_id)
            return _json({"status": "duplicate", "event_id": accepted.inbox_id, "message": texts.WEBHOOK_DUPLICATE}, 200)
        METRICS.ack_latency.labels(platform=PLATFORM).observe(time.perf_counter() - started)
        return _json({"status": "accepted", "event_id": accepted.inbox_id, "message": texts.WEBHOOK_ACCEPTED}, 202)


def _signature_matches(secret: bytes, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.strip().lower().encode(), expected.encode())


async def _read_capped(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Refused(413, "too_large", texts.WEBHOOK_TOO_LARGE.format(limit=limit))
    data = bytearray()
    async for chunk in request.content.iter_chunked(16_384):
        data += chunk
        if len(data) > limit:
            raise Refused(413, "too_large", texts.WEBHOOK_TOO_LARGE.format(limit=limit))
    return bytes(data)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_payload(body: bytes) -> FeedbackPayload:
    """Validate the JSON body; ``Refused`` (400) names the first bad field."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise Refused(400, "bad_json", texts.WEBHOOK_BAD_JSON) from None
    if not isinstance(data, dict):
        raise Refused(400, "bad_json", texts.WEBHOOK_BAD_JSON)

    def bad(field: str, reason: str) -> Refused:
        return Refused(400, "bad_field", texts.WEBHOOK_BAD_FIELD.format(field=field, reason=reason))

    # Before anything else: a string that cannot be stored must not be accepted (and answered 202).
    for field, value in _strings(data, ""):
        reason = unstorable_reason(value)
        if reason is not None:
            raise Refused(400, "bad_character", texts.WEBHOOK_BAD_FIELD.format(
                field=field or "(键名)", reason=_unstorable_reason_zh(reason)))

    raw_id = data.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise bad("id", "必须是非空字符串或整数")
    if len(raw_id.strip()) > MAX_ID_CHARS:
        raise bad("id", f"不能超过{MAX_ID_CHARS}个字符")

    customer = data.get("customer")
    customer_id: int | None = None
    customer_name: str | None = None
    if isinstance(customer, str) and customer.strip():
        customer_name = visible_text(customer)
        if not customer_name:
            raise bad("customer", "名称只有不可见字符(零宽字符或控制字符)")
        if len(customer_name) > MAX_NAME_CHARS:
            raise bad("customer", f"名称不能超过{MAX_NAME_CHARS}个字符")
    elif isinstance(customer, dict) and set(customer) == {"id"}:
        value = customer["id"]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
            raise bad("customer.id", "必须是正整数")
        customer_id = value
    else:
        raise bad("customer", "必须是客户名称,或 {\"id\": 客户编号}")

    options = data.get("options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise bad("options", "必须是字符串列表")
    cleaned = tuple(dict.fromkeys(o.strip() for o in options if o.strip()))
    if len(cleaned) > MAX_OPTIONS:
        raise bad("options", f"最多{MAX_OPTIONS}项")
    if any(len(o) > MAX_OPTION_CHARS for o in cleaned):
        raise bad("options", f"每项不能超过{MAX_OPTION_CHARS}个字符")

    comment = data.get("comment") or ""
    if not isinstance(comment, str):
        raise bad("comment", "必须是字符串")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise bad("comment", f"不能超过{MAX_COMMENT_CHARS}个字符")
    if not cleaned and not comment:
        raise bad("options", "至少勾选一项,或填写 comment")
    return FeedbackPayload(raw_id.strip(), customer_id, customer_name, cleaned, comment)


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string in the parsed body (keys too), with the dotted path of the field it is in."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            found.append((where, item))
        elif isinstance(item, dict):
            for key, sub in item.items():
                child = f"{where}.{key}" if where else str(key)
                found.append((where or "(键名)", key))
                stack.append((sub, child))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))
    return found


def _unstorable_reason_zh(reason: str) -> str:
    """``domain.text.unstorable_reason`` in the answer's language, keeping the position."""
    position = reason.rsplit(" ", 1)[-1]
    if reason.startswith("NUL"):
        return f"第{position}个位置(从0数)含 NUL 字符(\\u0000),无法保存"
    code = reason.split()[2]
    return f"第{position}个位置(从0数)含单独的代理字符 {code},不是合法的 Unicode 文本,无法保存"


async def _resolve_customer(session: Any, payload: FeedbackPayload) -> int:
    if payload.customer_id is not None:
        if await customer_store.get_customer(session, payload.customer_id) is None:
            raise Refused(404, "unknown_customer", texts.WEBHOOK_UNKNOWN_CUSTOMER_ID.format(id=payload.customer_id))
        return payload.customer_id
    assert payload.customer_name is not None
    found = await feedback_store.customers_named(session, payload.customer_name)
    if not found:
        raise Refused(404, "unknown_customer", texts.WEBHOOK_UNKNOWN_CUSTOMER_NAME.format(name=payload.customer_name))
    if len(found) > 1:
        raise Refused(
            409,
            "ambiguous_customer",
            texts.WEBHOOK_AMBIGUOUS_CUSTOMER.format(
                count=len(found), name=payload.customer_name, ids="、".join(str(c.id) for c in found)
            ),
        )
    return found[0].id


def _json(body: dict[str, Any], status: int) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda data: json.dumps(data, ensure_ascii=False))

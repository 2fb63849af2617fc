"""DingTalk robot callbacks (JSON) → neutral ``Event``s, through one table from msgtype to a constructor.

The same JSON arrives over HTTP (``POST /dingtalk/callback``) and over Stream (the ``data`` of a
``/v1.0/im/bot/messages/get`` frame), so both modes share this module. Card clicks arrive as
``/v1.0/card/instances/callback`` data (Stream) or the same JSON posted to the callback path.

- ``msgId`` is the de-duplication key (DingTalk redelivers with the same id); a card click, which
  has none, is keyed by card, user and the click's content, so a redelivered click is one event.
- 1:1 chats (conversationType "1"): ``conversation`` is the sender's staffId. Group chats ("2"),
  where the robot only hears messages that @ it: ``conversation`` is ``group:<conversationId>``,
  so dialogues and replies stay in the group.
- ``richText`` (text with pictures) becomes one event per part: the text, then each picture
  (``<msgId>:<n>``), processed in order, so "张总 电话 20 分钟" with a photo logs the touch and
  attaches the photo.
- Message types Pacebot does not use parse to no events: acknowledged, nothing stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.events import Event, EventKind, MediaRef

PLATFORM = "dingtalk"
GROUP_PREFIX = "group:"
_MAX_ID = 128
_MAX_TEXT = 20_000
_MAX_RICH_PARTS = 20
_MAX_MS = 253_402_300_800_000  # year 10000
# Cards sent again after a failed in-place update get "<task id>@u<n>" (see adapter.py).
RESEND_SUFFIX = re.compile(r"@u\d{1,12}$")


class MalformedPayload(ValueError):
    """Not a JSON object, or a required field is missing or malformed."""


@dataclass(frozen=True)
class Incoming:
    """What one callback carries: its events, and where to answer it for free while it is fresh."""

    events: list[Event]
    reply_address: str = ""  # the address replies to these events go to
    session_webhook: str = ""
    session_webhook_expires_ms: int = 0
    description: str = ""  # msgtype, for logs about ignored callbacks


def load_json(data: bytes | str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(value, dict):
        raise MalformedPayload("not a JSON object")
    return value


def parse_callback(body: dict[str, Any]) -> Incoming:
    """A robot message or a card click, as posted by DingTalk."""
    if "outTrackId" in body and "msgId" not in body:
        return parse_card_callback(body)
    return parse_message(body)


# ------------------------------------------------------------------------------ messages

Fields = dict[str, Any]
Constructor = Callable[[dict[str, Any], Fields], list[Event]]


def _text_message(body: dict[str, Any], base: Fields) -> list[Event]:
    text = _obj(body, "text").get("content")
    if not isinstance(text, str):
        raise MalformedPayload("text.content is missing")
    return [Event(kind=EventKind.TEXT, text=text.strip()[:_MAX_TEXT], **base)]


def _media_message(kind: EventKind, mime: str) -> Constructor:
    def build(body: dict[str, Any], base: Fields) -> list[Event]:
        content = _obj(body, "content")
        code = _code(content.get("downloadCode") or content.get("pictureDownloadCode"))
        filename = str(content.get("fileName") or "")[:200]
        recognition = str(content.get("recognition") or "")[:_MAX_TEXT]
        media = MediaRef(filename=filename, mime=mime, platform_media_id=code)
        return [Event(kind=kind, text=recognition, media=media, **base)]

    return build


def _rich_text(body: dict[str, Any], base: Fields) -> list[Event]:
    parts = _obj(body, "content").get("richText")
    if not isinstance(parts, list) or not parts:
        raise MalformedPayload("content.richText is missing")
    text = "".join(str(p.get("text") or "") for p in parts if isinstance(p, dict)).strip()
    pictures = [p for p in parts if isinstance(p, dict) and (p.get("downloadCode") or p.get("pictureDownloadCode"))]
    events: list[Event] = []
    if text:
        events.append(Event(kind=EventKind.TEXT, text=text[:_MAX_TEXT], **base))
    for n, part in enumerate(pictures[:_MAX_RICH_PARTS], 1):
        code = _code(part.get("downloadCode") or part.get("pictureDownloadCode"))
        # The first part keeps the message id, so a redelivery is recognised whatever it holds.
        msg_id = base["platform_msg_id"] if not events else _dedupe_key(f"{base['platform_msg_id']}:{n}")
        events.append(Event(kind=EventKind.IMAGE, media=MediaRef(mime="image/jpeg", platform_media_id=code),
                            **{**base, "platform_msg_id": msg_id}))
    return events


MESSAGES: dict[str, Constructor] = {
    "text": _text_message,
    "picture": _media_message(EventKind.IMAGE, "image/jpeg"),
    "audio": _media_message(EventKind.VOICE, "audio/amr"),
    "video": _media_message(EventKind.VIDEO, "video/mp4"),
    "file": _media_message(EventKind.FILE, ""),
    "richText": _rich_text,
}


def parse_message(body: dict[str, Any]) -> Incoming:
    msg_type = body.get("msgtype")
    if not isinstance(msg_type, str) or not msg_type:
        raise MalformedPayload("msgtype is missing")
    msg_id = _required(body, "msgId")
    if len(msg_id) > _MAX_ID:
        raise MalformedPayload("msgId is longer than 128 characters")
    staff_id = _opt_str(body, "senderStaffId")
    sender = staff_id or (f"ext:{_opt_str(body, 'senderId')}" if body.get("senderId") else "")
    if not sender:
        raise MalformedPayload("senderStaffId is missing")
    conversation_type = str(body.get("conversationType") or "1")
    if conversation_type not in ("1", "2"):
        raise MalformedPayload("conversationType must be \"1\" or \"2\"")
    conversation = sender
    if conversation_type == "2":
        conversation = GROUP_PREFIX + _required(body, "conversationId")
    created = body.get("createAt") or 0
    if not isinstance(created, int) or isinstance(created, bool) or not 0 <= created < _MAX_MS:
        raise MalformedPayload("createAt is not a millisecond timestamp")
    webhook = _opt_str(body, "sessionWebhook")
    expires = body.get("sessionWebhookExpiredTime") or 0
    if not isinstance(expires, int) or isinstance(expires, bool) or not 0 <= expires < _MAX_MS:
        expires = 0
    base: Fields = {
        "platform": PLATFORM,
        "platform_msg_id": msg_id,
        "sender": sender[:_MAX_ID],
        "conversation": conversation[:200],
        "occurred_at": dt.datetime.fromtimestamp(created / 1000, dt.UTC) if created else None,
    }
    build = MESSAGES.get(msg_type)
    events = build(body, base) if build is not None else []
    return Incoming(events, conversation[:200], webhook[:1024], expires, msg_type[:32])


# ------------------------------------------------------------------------------ card clicks


def parse_card_callback(body: dict[str, Any]) -> Incoming:
    track_id = _required(body, "outTrackId")
    user_id = _required(body, "userId")
    raw_content = body.get("content") or "{}"
    content = load_json(raw_content) if isinstance(raw_content, str) else raw_content
    if not isinstance(content, dict):
        raise MalformedPayload("content is not an object")
    private = content.get("cardPrivateData") or {}
    params = private.get("params") if isinstance(private, dict) else None
    if not isinstance(params, dict):
        raise MalformedPayload("cardPrivateData.params is missing")
    action = params.get("action")
    if not isinstance(action, str) or not action:
        raise MalformedPayload("cardPrivateData.params.action is missing")
    values = params.get("values") or []
    if isinstance(values, str):
        values = [v for v in values.split(",") if v]
    if not isinstance(values, list):
        raise MalformedPayload("cardPrivateData.params.values must be a list")
    fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
    event = Event(
        platform=PLATFORM,
        platform_msg_id=_dedupe_key(f"card:{track_id}:{user_id}:{fingerprint}"),
        kind=EventKind.ACTION,
        sender=user_id[:_MAX_ID],
        conversation=user_id[:_MAX_ID],
        action=action[:256],
        task_id=RESEND_SUFFIX.sub("", track_id)[:_MAX_ID] or None,
        action_values=tuple(str(v)[:128] for v in values[:50] if str(v)),
    )
    return Incoming([event], user_id[:_MAX_ID], description="card")


# ------------------------------------------------------------------------------ helpers


def _obj(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise MalformedPayload(f"{key} is missing")
    return value


def _required(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedPayload(f"{key} is missing")
    return value.strip()


def _opt_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    return value.strip() if isinstance(value, str) else ""


def _code(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise MalformedPayload("content.downloadCode is missing")
    return value


def _dedupe_key(key: str) -> str:
    return key if len(key) <= _MAX_ID else "h:" + hashlib.sha256(key.encode()).hexdigest()

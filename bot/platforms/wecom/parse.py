"""WeCom callback XML → neutral ``Event``, through one table from MsgType / Event to a constructor.

XML is parsed with defusedxml with DTDs forbidden, so external entities (XXE) and entity expansion
(billion laughs) are rejected before any entity could be resolved. Message types and events that
Pacebot does not use parse to ``None``: the route acknowledges them and stores nothing.

De-duplication keys follow WeCom's advice: ``MsgId`` for messages; for events, which have none,
sender + CreateTime + Event (+ EventKey and TaskId, so two different clicks in one second differ).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from bot.events import Event, EventKind, MediaRef

PLATFORM = "wecom"
_MAX_MSG_ID = 128  # InboxItem.platform_msg_id
_MAX_CREATE_TIME = 253_402_300_800  # 10000-01-01: beyond it, no datetime can hold the instant
# Cards sent again after a failed in-place update get "<task id>@u<n>" (see render.py).
RESEND_SUFFIX = re.compile(r"@u\d{1,12}$")


class MalformedPayload(ValueError):
    """Not well-formed XML, hostile XML (DTD / entities), or a required field is missing."""


def parse_xml(data: bytes | str) -> Element:
    try:
        root: Element = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        return root
    except DefusedXmlException as exc:
        raise MalformedPayload(f"forbidden XML construct: {type(exc).__name__}") from exc
    except ParseError as exc:
        raise MalformedPayload(f"not well-formed XML: {exc}") from exc


# The envelope is <xml><ToUserName/><AgentID/><Encrypt/></xml>: depth 2, four elements. Anything
# much deeper or larger is not from WeCom and is refused before an XML parser sees it.
MAX_ENVELOPE_DEPTH = 4
MAX_ENVELOPE_ELEMENTS = 16


# Markup openings ("<") a genuine envelope can hold: four elements open and closed, CDATA sections,
# an XML declaration. Counted while the body arrives, so a flood of deep bodies is cut short.
MAX_ENVELOPE_MARKUP = 4 * MAX_ENVELOPE_ELEMENTS


class EnvelopeRefused(MalformedPayload):
    """The envelope is too deep, has too many elements, or carries a DTD: refused unparsed."""


def count_markup(chunk: bytes, seen: int = 0) -> int:
    """Markup openings so far (``seen`` plus this chunk's); refuse far more than an envelope has."""
    seen += chunk.count(b"<")
    if seen > MAX_ENVELOPE_MARKUP:
        raise EnvelopeRefused(f"envelope has more than {MAX_ENVELOPE_MARKUP} tags")
    return seen


def extract_encrypt(data: bytes) -> str:
    """The ``Encrypt`` field of a callback envelope, found by a bounded scan (no XML parser).

    The signature covers only this field, so it is all that must be read before the signature is
    checked. The scan touches each byte at most a few times (``bytes.find``), stops at the first
    element deeper than ``MAX_ENVELOPE_DEPTH`` or beyond ``MAX_ENVELOPE_ELEMENTS``, refuses DTDs
    and entity references, and requires the tags to nest properly. Nothing else of the envelope is
    trusted or used: ``ToUserName`` and ``AgentID`` are not signed.
    """
    stack: list[bytes] = []
    elements = 0
    encrypt: list[bytes] | None = None
    found = 0
    capturing = False  # inside <xml><Encrypt>, directly
    pos, end = 0, len(data)
    while pos < end:
        lt = data.find(b"<", pos)
        text = data[pos : lt if lt >= 0 else end]
        if text.strip():
            if not stack:
                raise MalformedPayload("text outside the root element")
            if capturing and encrypt is not None:
                encrypt.append(text)
        if lt < 0:
            break
        if data.startswith(b"<![CDATA[", lt):
            close = data.find(b"]]>", lt + 9)
            if close < 0:
                raise MalformedPayload("unterminated CDATA section")
            if capturing and encrypt is not None:
                encrypt.append(data[lt + 9 : close])
            pos = close + 3
            continue
        if data.startswith(b"<!--", lt):
            close = data.find(b"-->", lt + 4)
            if close < 0:
                raise MalformedPayload("unterminated comment")
            pos = close + 3
            continue
        if data.startswith(b"<?", lt):
            if stack:
                raise MalformedPayload("processing instruction inside the envelope")
            close = data.find(b"?>", lt + 2)
            if close < 0:
                raise MalformedPayload("unterminated XML declaration")
            pos = close + 2
            continue
        if data.startswith(b"<!", lt):
            raise EnvelopeRefused("forbidden XML construct: DTD or declaration in the envelope")
        gt = data.find(b">", lt)
        if gt < 0:
            raise MalformedPayload("unterminated tag")
        tag = data[lt + 1 : gt]
        pos = gt + 1
        if tag.startswith(b"/"):
            name = tag[1:].strip()
            if not stack or stack[-1] != name:
                raise MalformedPayload("mismatched closing tag")
            stack.pop()
            if capturing and len(stack) == 1:
                found += 1
            capturing = False
            if not stack and data[pos:].strip():
                raise MalformedPayload("content after the root element")
            continue
        self_closing = tag.endswith(b"/")
        parts = tag.rstrip(b"/").split(None, 1)
        if not parts:
            raise MalformedPayload("empty tag")
        name = parts[0]
        elements += 1
        if elements > MAX_ENVELOPE_ELEMENTS:
            raise EnvelopeRefused(f"envelope has more than {MAX_ENVELOPE_ELEMENTS} elements")
        if len(stack) + 1 > MAX_ENVELOPE_DEPTH:
            raise EnvelopeRefused(f"envelope nested deeper than {MAX_ENVELOPE_DEPTH} levels")
        if not stack and elements > 1:
            raise MalformedPayload("more than one root element")
        if self_closing:
            continue
        capturing = False  # a child element inside Encrypt: its text is not part of the value
        stack.append(name)
        if name == b"Encrypt" and len(stack) == 2:
            encrypt = [] if encrypt is None else encrypt
            capturing = True
    if stack:
        raise MalformedPayload("unclosed element")
    if encrypt is None or found != 1:
        raise MalformedPayload("callback body has no Encrypt element" if not found else "several Encrypt elements")
    value = b"".join(encrypt).strip()
    if not value:
        raise MalformedPayload("callback body has no Encrypt element")
    if b"&" in value:
        raise MalformedPayload("entity reference in Encrypt (base64 needs none)")
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedPayload("Encrypt is not ASCII base64") from None


def peek_encrypt(data: bytes | bytearray) -> str | None:
    """The first ``Encrypt`` value of a body still arriving, once its closing tag is in; else None.

    Only for refusing early: a wrong signature over it is refused before the rest of the body is
    read. A body that passes is still read in full and scanned by ``extract_encrypt``.
    """
    start = data.find(b"<Encrypt>")
    if start < 0:
        return None
    end = data.find(b"</Encrypt>", start)
    if end < 0:
        return None
    value = data[start + 9 : end].strip()
    if value.startswith(b"<![CDATA[") and value.endswith(b"]]>"):
        value = value[9:-3].strip()
    if b"<" in value or b"&" in value:
        return None  # not a single text or CDATA value: left to extract_encrypt once it is all in
    return value.decode("ascii", "replace")


def envelope(data: bytes) -> dict[str, str]:
    """The outer, still encrypted callback body: ``Encrypt``, ``ToUserName`` and ``AgentID``."""
    root = parse_xml(data)
    encrypted = _text(root, "Encrypt")
    if not encrypted:
        raise MalformedPayload("callback body has no Encrypt element")
    return {"encrypt": encrypted, "to": _text(root, "ToUserName"), "agent_id": _text(root, "AgentID")}


# ------------------------------------------------------------------------------ constructors

Fields = dict[str, Any]
Constructor = Callable[[Element, Fields], Event]


def _text_message(root: Element, base: Fields) -> Event:
    return Event(kind=EventKind.TEXT, text=_text(root, "Content"), **base)


def _media_message(kind: EventKind, mime: str) -> Constructor:
    def build(root: Element, base: Fields) -> Event:
        media_id = _required(root, "MediaId")
        media = MediaRef(mime=mime, platform_media_id=media_id)
        # Voice messages carry the speech recognition result when it is switched on.
        return Event(kind=kind, text=_text(root, "Recognition"), media=media, **base)

    return build


def _file_message(root: Element, base: Fields) -> Event:
    name = _text(root, "FileName") or _text(root, "Title")
    size = _int(_text(root, "FileSize") or _text(root, "FileTotalLen"))
    media = MediaRef(filename=name[:200], size=size, platform_media_id=_required(root, "MediaId"))
    return Event(kind=EventKind.FILE, media=media, **base)


def _location_message(root: Element, base: Fields) -> Event:
    try:
        lat, lon = float(_required(root, "Location_X")), float(_required(root, "Location_Y"))
    except ValueError as exc:
        raise MalformedPayload("Location_X / Location_Y are not numbers") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise MalformedPayload("location out of range")
    return Event(kind=EventKind.LOCATION, location=(lat, lon), text=_text(root, "Label"), **base)


def _card_event(root: Element, base: Fields) -> Event:
    task_id = RESEND_SUFFIX.sub("", _text(root, "TaskId"))
    values: list[str] = []
    for item in root.iterfind("SelectedItems/SelectedItem"):
        values.extend((option.text or "").strip() for option in item.iterfind("OptionIds/OptionId"))
    return Event(
        kind=EventKind.ACTION,
        action=_text(root, "EventKey"),
        task_id=task_id or None,
        action_values=tuple(v for v in values if v),
        response_code=_text(root, "ResponseCode") or None,
        **base,
    )


def _enter_event(root: Element, base: Fields) -> Event:
    return Event(kind=EventKind.ENTER, **base)


MESSAGES: dict[str, Constructor] = {
    "text": _text_message,
    "image": _media_message(EventKind.IMAGE, "image/jpeg"),
    "voice": _media_message(EventKind.VOICE, "audio/amr"),
    "video": _media_message(EventKind.VIDEO, "video/mp4"),
    "file": _file_message,
    "location": _location_message,
}

EVENTS: dict[str, Constructor] = {
    "template_card_event": _card_event,
    "enter_agent": _enter_event,
}


def parse_message(data: bytes) -> Event | None:
    """The decrypted callback XML as an ``Event``; ``None`` for types Pacebot ignores."""
    root = parse_xml(data)
    msg_type = _text(root, "MsgType")
    sender = _required(root, "FromUserName")
    created = _int(_text(root, "CreateTime"))
    if not 0 <= created < _MAX_CREATE_TIME:
        raise MalformedPayload(f"CreateTime out of range: {created}")
    if msg_type == "event":
        name = _text(root, "Event")
        build = EVENTS.get(name)
        key = ":".join((sender, str(created), name, _text(root, "EventKey"), _text(root, "TaskId")))
    else:
        build = MESSAGES.get(msg_type)
        key = _text(root, "MsgId") or ":".join((sender, str(created), msg_type))
    if build is None:
        return None
    base: Fields = {
        "platform": PLATFORM,
        "platform_msg_id": _dedupe_key(key),
        "sender": sender,
        "conversation": sender,
        "occurred_at": dt.datetime.fromtimestamp(created, dt.UTC) if created else None,
    }
    return build(root, base)


def describe(data: bytes) -> str:
    """MsgType/Event of a payload, for logs about ignored callbacks."""
    try:
        root = parse_xml(data)
    except MalformedPayload:
        return "?"
    msg_type = _text(root, "MsgType")
    return f"{msg_type}/{_text(root, 'Event')}" if msg_type == "event" else msg_type


# ------------------------------------------------------------------------------ helpers


def _text(root: Element, tag: str) -> str:
    node = root.find(tag)
    return (node.text or "").strip() if node is not None else ""


def _required(root: Element, tag: str) -> str:
    value = _text(root, tag)
    if not value:
        raise MalformedPayload(f"{tag} is missing")
    return value


def _int(text: str) -> int:
    try:
        return int(text) if text else 0
    except ValueError as exc:
        raise MalformedPayload(f"not an integer: {text[:20]!r}") from exc


def _dedupe_key(key: str) -> str:
    if len(key) <= _MAX_MSG_ID:
        return key
    # Long EventKeys: keep the key unique and within the column.
    return "h:" + hashlib.sha256(key.encode()).hexdigest()

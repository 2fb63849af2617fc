"""WeCom as a platform: addresses, limits, delivery of outbox items and attachment download.

Addresses: a member is their WeCom userid; a team's group is ``chat:<chatid>`` (an app group chat,
``appchat/send``) when ``group_chat.wecom_chatid`` is set, else ``robot:<key>`` (a group robot
webhook, ``group_chat.wecom_webhook``, either the key or the full webhook URL).

Delivery renders each outbox item natively, dispatched on its kind:

  text / markdown  split on line boundaries at WeCom's byte limits (2,048 for app messages and
                   robot text, 4,096 for robot markdown); the parts go out in order, in one call.
  image / file     read from the media store by sha256, uploaded as temporary media (media ids are
                   reused for 2.5 days); robots get images inline as base64 + md5, at most 2 MB
                   (larger images are recompressed as JPEG).
  card             ``template_card`` through ``render.render_card``; the card's text fallback
                   where it cannot be expressed, and always for groups (robots and app chats have
                   no interactive cards that call the app back).
  card_update      ``message/update_template_card`` with the response code stored when the card
                   was clicked; missing, expired or already used → the new state is sent afresh.

A multi-part message is delivered by one ``deliver`` call. If a part fails, the parts already
delivered are remembered (per outbox item, in memory), so the retry continues where it stopped;
after a crash, WeCom's duplicate check (``enable_duplicate_check``) drops app messages that went
out already. Robots have no such check, so a crash in the middle of a multi-part robot message
may repeat its first parts — at least once, never lost.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from bot.config import WeComConfig
from bot.events import MediaRef
from bot.platforms.base import DeliveryError, MediaUnavailable, Outgoing, RateLimit
from bot.platforms.shared.media import UploadedMedia, load_outgoing_media
from bot.platforms.shared.parts import PartProgress, Send
from bot.platforms.wecom import render
from bot.platforms.wecom.client import (
    TOKEN_ERRORS,
    MediaTooLarge,
    WeComApiError,
    WeComClient,
    WeComError,
)
from cards.model import MAX_TASK_ID_BYTES, Card
from cards.text import card_as_text
from storage.media import MediaStore
from storage.models import Member, Team

log = logging.getLogger(__name__)

ROBOT_IMAGE_LIMIT = 2 * 1024 * 1024
APP_IMAGE_LIMIT = 10 * 1024 * 1024
APP_FILE_LIMIT = 20 * 1024 * 1024
_ROBOT_KEY = re.compile(r"^[A-Za-z0-9_\-]{8,128}$")
# The receiver cannot be reached (unknown user, outside the app's visible range, no licence).
_RECEIVER_ERRORS = frozenset({40003, 81013, 81012, 82001})


def robot_key(webhook: str) -> str | None:
    """The key of a group robot, given the key itself or the full webhook URL."""
    webhook = webhook.strip()
    if webhook.startswith(("http://", "https://")):
        webhook = (parse_qs(urlsplit(webhook).query).get("key") or [""])[0]
    return webhook if _ROBOT_KEY.match(webhook) else None


@dataclass(frozen=True)
class _Target:
    kind: str  # user | chat | robot
    id: str

    @property
    def loggable(self) -> str:
        # Robot keys are credentials: only a prefix goes to the log.
        return f"robot:{self.id[:6]}…" if self.kind == "robot" else f"{self.kind}:{self.id}"


class WeComPlatform:
    name = "wecom"

    def __init__(
        self,
        config: WeComConfig,
        *,
        media: MediaStore,
        max_media_bytes: int = 20 * 1024 * 1024,
        client: WeComClient | None = None,
    ) -> None:
        self.config = config
        self.media = media
        self.max_media_bytes = max_media_bytes
        self.client = client or WeComClient(
            api_base=config.api_base,
            corp_id=config.corp_id,
            secret=config.secret,
            agent_id=config.agent_id,
            timeout=config.request_timeout_seconds,
        )
        self._parts = PartProgress()
        self._uploaded = UploadedMedia()
        self._renderers: dict[str, Callable[[Outgoing, _Target], Awaitable[list[Send]]]] = {
            "text": self._text,
            "markdown": self._markdown,
            "image": self._image,
            "file": self._file,
            "card": self._card,
            "card_update": self._card_update,
        }

    # ------------------------------------------------------------------ Platform protocol

    def member_address(self, member: Member) -> str | None:
        return member.wecom_userid or None

    def group_address(self, team: Team) -> str | None:
        chat = team.group_chat or {}
        chat_id = str(chat.get("wecom_chatid") or "").strip()
        if chat_id:
            return f"chat:{chat_id}"
        webhook = str(chat.get("wecom_webhook") or "").strip()
        if webhook:
            key = robot_key(webhook)
            if key:
                return f"robot:{key}"
            log.warning("team %s: group_chat.wecom_webhook is not a robot key or webhook URL", team.key)
        return None

    def rate_limits(self, target_kind: str) -> tuple[RateLimit, ...]:
        if target_kind == "group":
            return (RateLimit(self.config.robot_per_minute, 60),)
        return (RateLimit(self.config.member_per_minute, 60), RateLimit(self.config.member_per_hour, 3600))

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()

    async def deliver(self, item: Outgoing) -> str | None:
        target = self._target(item)
        render_item = self._renderers.get(item.kind)
        if render_item is None:
            raise DeliveryError(f"WeCom cannot send outbox items of kind {item.kind!r}", retryable=False)
        try:
            return await self._parts.send_remaining(item.id, await render_item(item, target))
        except WeComError as exc:
            log.warning("WeCom delivery of outbox item %s to %s failed: %s", item.id, target.loggable, exc)
            raise DeliveryError(str(exc), retryable=exc.retryable, retry_after=exc.retry_after) from exc

    async def fetch_media(self, ref: MediaRef) -> bytes:
        if not ref.platform_media_id:
            raise MediaUnavailable("no WeCom media id")
        try:
            download = await self.client.download_media(ref.platform_media_id, max_bytes=self.max_media_bytes)
        except MediaTooLarge as exc:
            raise MediaUnavailable(str(exc)) from exc
        except WeComError as exc:
            if exc.retryable:
                raise  # the inbox tries the event again later
            raise MediaUnavailable(str(exc)) from exc
        return download.data

    # ------------------------------------------------------------------ targets

    def _target(self, item: Outgoing) -> _Target:
        if item.target_kind == "member":
            return _Target("user", item.target)
        kind, _, ident = item.target.partition(":")
        if kind in ("chat", "robot") and ident:
            return _Target(kind, ident)
        raise DeliveryError(f"not a WeCom group address: {item.target.split(':')[0]!r}", retryable=False)

    # ------------------------------------------------------------------ renderers (one per kind)

    async def _text(self, item: Outgoing, target: _Target) -> list[Send]:
        return self._texts(target, str(item.payload.get("text", "")))

    async def _markdown(self, item: Outgoing, target: _Target) -> list[Send]:
        content = render.markdown_text(str(item.payload.get("title", "")), str(item.payload.get("text", "")))
        limit = render.ROBOT_MARKDOWN_LIMIT_BYTES if target.kind == "robot" else render.TEXT_LIMIT_BYTES
        return [self._send(target, "markdown", {"content": part}) for part in render.split_utf8(content, limit)]

    async def _image(self, item: Outgoing, target: _Target) -> list[Send]:
        sha = str(item.payload.get("sha256", ""))
        data = await self._load_media(sha, item.payload.get("path"))
        caption = str(item.payload.get("caption", ""))
        limit = ROBOT_IMAGE_LIMIT if target.kind == "robot" else APP_IMAGE_LIMIT
        try:
            fitted = await asyncio.to_thread(fit_image, data, limit)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DeliveryError(f"image {sha[:12]} cannot be sent: {type(exc).__name__}: {exc}", retryable=False) from exc
        if target.kind == "robot":
            image = {"base64": base64.b64encode(fitted).decode(), "md5": hashlib.md5(fitted).hexdigest()}
            sends = [self._send(target, "image", image)]
        else:
            ext = "png" if fitted[:8] == b"\x89PNG\r\n\x1a\n" else "jpg"
            media_id = await self._upload(sha, "image", f"{sha[:16]}.{ext}", fitted, f"image/{'png' if ext == 'png' else 'jpeg'}")
            sends = [self._send(target, "image", {"media_id": media_id})]
        return sends + (self._texts(target, caption) if caption.strip() else [])

    async def _file(self, item: Outgoing, target: _Target) -> list[Send]:
        sha = str(item.payload.get("sha256", ""))
        filename = str(item.payload.get("filename") or sha[:16])[:128]
        data = await self._load_media(sha, item.payload.get("path"))
        if len(data) > APP_FILE_LIMIT:
            raise DeliveryError(f"file is {len(data)} bytes; WeCom accepts at most {APP_FILE_LIMIT}", retryable=False)
        if target.kind == "robot":
            media_id = await self.client.upload_robot_file(target.id, filename, data)
        else:
            media_id = await self._upload(sha, "file", filename, data, "application/octet-stream")
        return [self._send(target, "file", {"media_id": media_id})]

    async def _card(self, item: Outgoing, target: _Target) -> list[Send]:
        card = Card.from_json(item.payload["card"])
        body = render.render_card(card) if target.kind == "user" else None
        if body is None:
            return self._texts(target, card_as_text(card))
        return [self._card_or_text(target, card, body)]

    def _card_or_text(self, target: _Target, card: Card, body: dict[str, Any]) -> Send:
        """Send the template card; if WeCom refuses its content, the member still gets the text."""
        send_card = self._send(target, "template_card", body)

        async def send() -> str | None:
            try:
                return await send_card()
            except WeComApiError as exc:
                if exc.retryable or exc.errcode in TOKEN_ERRORS or exc.errcode in _RECEIVER_ERRORS:
                    raise
                log.warning("card %s refused by WeCom (errcode %s: %s); sending its text version",
                            card.task_id, exc.errcode, exc.errmsg)
            receipts = [await part() for part in self._texts(target, card_as_text(card))]
            return ",".join(r for r in receipts if r) or None

        return send

    async def _card_update(self, item: Outgoing, target: _Target) -> list[Send]:
        card = Card.from_json(item.payload["card"])
        code = str((item.card_state or {}).get("response_code") or "")
        update = render.render_card_update(card) if target.kind == "user" and code else None
        afresh = self._fresh_card(item, target, card)
        if update is None:
            return afresh

        async def update_in_place() -> str | None:
            try:
                await self.client.update_template_card({"userids": [target.id], "response_code": code, **update})
                return "card-updated"
            except WeComApiError as exc:
                if exc.retryable or exc.errcode in TOKEN_ERRORS:
                    raise
                # Expired (72 h), already used, or refused: send the new state instead.
                log.info("card %s: in-place update refused (errcode %s); sending it afresh", card.task_id, exc.errcode)
            receipts = [await send() for send in afresh]
            return ",".join(r for r in receipts if r) or None

        return [update_in_place]

    def _fresh_card(self, item: Outgoing, target: _Target, card: Card) -> list[Send]:
        # WeCom task ids are single-use, so a card sent again gets a suffix (see parse.RESEND_SUFFIX).
        task_id = f"{card.task_id}@u{item.id}"
        body = None
        if target.kind == "user" and len(task_id.encode()) <= MAX_TASK_ID_BYTES:
            body = render.render_card(card, task_id=task_id)
        if body is None:
            return self._texts(target, card_as_text(card))
        return [self._card_or_text(target, card, body)]

    # ------------------------------------------------------------------ sending

    def _texts(self, target: _Target, text: str) -> list[Send]:
        return [self._send(target, "text", {"content": part}) for part in render.split_utf8(text, render.TEXT_LIMIT_BYTES)]

    def _send(self, target: _Target, msgtype: str, content: dict[str, Any]) -> Send:
        message: dict[str, Any] = {"msgtype": msgtype, msgtype: content}

        async def send() -> str | None:
            if target.kind == "robot":
                await self.client.send_robot(target.id, message)
                return None
            if target.kind == "chat":
                await self.client.send_appchat({"chatid": target.id, **message})
                return None
            body = {"touser": target.id, **message}
            if self.config.duplicate_check_seconds:
                body["enable_duplicate_check"] = 1
                body["duplicate_check_interval"] = self.config.duplicate_check_seconds
            answer = await self.client.send_message(body)
            if answer.get("invaliduser"):
                # WeCom accepted the call but could not deliver to this user (left, not visible).
                raise DeliveryError(f"WeCom: user not reachable by this app: {answer['invaliduser']}", retryable=False)
            return str(answer.get("msgid") or "") or None

        return send

    async def _upload(self, sha: str, kind: str, filename: str, data: bytes, content_type: str) -> str:
        return await self._uploaded.media_id(
            (sha, kind, filename), lambda: self.client.upload_media(kind, filename, data, content_type)
        )

    async def _load_media(self, sha: str, path: Any) -> bytes:
        return await load_outgoing_media(self.media, sha, path)


# ---------------------------------------------------------------------- media helpers (blocking)


def fit_image(data: bytes, limit: int, *, max_pixels: int = 40_000_000) -> bytes:
    """JPEG or PNG bytes of at most ``limit`` bytes: as given when they fit, else recompressed."""
    is_png = data[:8] == b"\x89PNG\r\n\x1a\n"
    is_jpeg = data[:3] == b"\xff\xd8\xff"
    if len(data) <= limit and (is_png or is_jpeg):
        return data
    with Image.open(io.BytesIO(data)) as img:
        if img.width * img.height > max_pixels:
            raise MediaTooLarge(img.width * img.height, max_pixels)
        img.load()
        rgb = img.convert("RGB") if img.mode != "RGB" else img.copy()
    for scale in (1.0, 0.75, 0.5, 0.35, 0.25, 0.15):
        frame = rgb if scale == 1.0 else rgb.resize((max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale))))
        for quality in (85, 70, 55, 40):
            buf = io.BytesIO()
            frame.save(buf, "JPEG", quality=quality, optimize=True)
            if buf.tell() <= limit:
                return buf.getvalue()
    raise MediaTooLarge(len(data), limit)

"""DingTalk as a platform: addresses, limits, delivery of outbox items and attachment download.

Addresses:

  member   the member's staffId (``Member.dingtalk_staff_id``); a reply to a group message goes
           to ``group:<conversationId>`` (see parse.py).
  group    ``team:<id>``: the team's ``group_chat`` says how — ``dingtalk_webhook`` (+
           ``dingtalk_secret``, which may be ``"${ENV}"``) for a custom group robot,
           ``dingtalk_conversation_id`` for the app robot in that group. It is read at delivery,
           so the robot's credentials never sit in outbox rows.

Budget (DingTalk meters every call carrying an access token; about 10,000 a month on the free
plan), cheapest channel first:

  1. text, markdown and cards without a template go through the ``sessionWebhook`` of the
     conversation's latest message while it is valid (about 90 minutes) — free;
  2. to groups, text goes through the custom robot when one is configured — free, at most 20 a
     minute (``WindowLimiter`` guards each part; the outbox spaces whole items);
  3. otherwise the robot API: ``oToMessages/batchSend`` (people) or ``groupMessages/send``
     (groups) — one metered call per part; images and files also need ``media/upload``.

Cards: with ``card_template_id``, ``card/instances/createAndDeliver`` (outTrackId = the card's
task id) and ``PUT card/instances`` for updates; a card DingTalk refuses, or any card without a
template, goes out as its markdown text fallback (numbered options answered by a digit).

A multi-part message is delivered by one ``deliver`` call; if a part fails, the parts already
sent are remembered (per outbox item, in memory) and the retry continues after them.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import DingTalkConfig
from bot.events import MediaRef
from bot.platforms.base import DeliveryError, MediaUnavailable, Outgoing, RateLimit
from bot.platforms.dingtalk import render
from bot.platforms.dingtalk.client import DingTalkApiError, DingTalkClient, DingTalkError, MediaTooLarge
from bot.platforms.dingtalk.parse import GROUP_PREFIX
from bot.platforms.dingtalk.usage import ApiUsage
from bot.platforms.shared.limits import WindowLimiter
from bot.platforms.shared.media import UploadedMedia, load_outgoing_media
from bot.platforms.shared.parts import PartProgress, Send
from cards.model import Card
from storage import members as member_store
from storage.media import MediaStore
from storage.models import Member, Team

log = logging.getLogger(__name__)

IMAGE_LIMIT = 20 * 1024 * 1024
FILE_LIMIT = 20 * 1024 * 1024
SESSION_MARGIN_SECONDS = 60  # a session webhook this close to expiry is not used
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_REMEMBERED = 10_000  # session webhooks kept

GroupChats = Callable[[int], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class _Target:
    kind: str  # user | conversation | team
    id: str

    @property
    def loggable(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class GroupRoute:
    webhook_token: str = ""
    webhook_secret: str = ""
    conversation_id: str = ""


def webhook_token(webhook: str) -> str:
    """The access_token of a custom robot, given the token itself or the full webhook URL."""
    webhook = webhook.strip()
    if webhook.startswith("https://"):
        webhook = (parse_qs(urlsplit(webhook).query).get("access_token") or [""])[0]
    return webhook if re.match(r"^[A-Za-z0-9_\-]{16,128}$", webhook) else ""


def ssl_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class SessionWebhooks:
    """Where each conversation can be answered for free, until DingTalk's expiry (in memory: losing
    it costs metered calls, never a message)."""

    def __init__(self, oapi_host: str, *, now: Callable[[], float] = time.time) -> None:
        self.oapi_host = oapi_host
        self._now = now
        self._hooks: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def remember(self, address: str, url: str, expires_ms: int) -> bool:
        parts = urlsplit(url)
        # Only DingTalk's own host: the URL came in a callback and is posted to with our data.
        if not address or parts.scheme != "https" or parts.netloc != self.oapi_host or not expires_ms:
            return False
        self._hooks[address] = (url, expires_ms / 1000)
        self._hooks.move_to_end(address)
        while len(self._hooks) > _REMEMBERED:
            self._hooks.popitem(last=False)
        return True

    def get(self, address: str) -> str | None:
        hook = self._hooks.get(address)
        if hook is None:
            return None
        if hook[1] - SESSION_MARGIN_SECONDS <= self._now():
            del self._hooks[address]
            return None
        return hook[0]

    def forget(self, address: str) -> None:
        self._hooks.pop(address, None)


class DingTalkPlatform:
    name = "dingtalk"

    def __init__(
        self,
        config: DingTalkConfig,
        *,
        media: MediaStore,
        max_media_bytes: int = 20 * 1024 * 1024,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        clock: Clock | None = None,
        tz: ZoneInfo | None = None,
        client: DingTalkClient | None = None,
        ssl_context_: ssl.SSLContext | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.media = media
        self.max_media_bytes = max_media_bytes
        self.sessions = sessions
        self.usage = (ApiUsage(sessions, clock, quota=config.monthly_api_quota, tz=tz or ZoneInfo("Asia/Shanghai"))
                      if sessions is not None and clock is not None else None)
        self.client = client or DingTalkClient(
            api_base=config.api_base,
            oapi_base=config.oapi_base,
            app_key=config.app_key,
            app_secret=config.app_secret,
            robot_code=config.robot,
            timeout=config.request_timeout_seconds,
            ssl_context=ssl_context_ or ssl_context(config.ca_file),
            meter=self.usage.count if self.usage else None,
        )
        self.session_webhooks = SessionWebhooks(self.client.oapi_host)
        self._environ = environ if environ is not None else os.environ
        self._robot_window = WindowLimiter(min(20, config.group_per_minute), 60)
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
        return member.dingtalk_staff_id or None

    def group_address(self, team: Team) -> str | None:
        chat = team.group_chat or {}
        if chat.get("dingtalk_webhook") or chat.get("dingtalk_conversation_id"):
            return f"team:{team.id}"
        return None

    def rate_limits(self, target_kind: str) -> tuple[RateLimit, ...]:
        if target_kind == "group":
            return (RateLimit(self.config.group_per_minute, 60),)
        return (RateLimit(self.config.member_per_minute, 60),)

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()

    def remember_session(self, address: str, url: str, expires_ms: int) -> None:
        """Called with each incoming message: replies to ``address`` may use its session webhook."""
        if url and not self.session_webhooks.remember(address, url, expires_ms):
            log.warning("DingTalk sessionWebhook for %s not used: not https on %s, or no expiry",
                        address, self.client.oapi_host)

    async def deliver(self, item: Outgoing) -> str | None:
        target = self._target(item)
        render_item = self._renderers.get(item.kind)
        if render_item is None:
            raise DeliveryError(f"DingTalk cannot send outbox items of kind {item.kind!r}", retryable=False)
        try:
            return await self._parts.send_remaining(item.id, await render_item(item, target))
        except DingTalkError as exc:
            log.warning("DingTalk delivery of outbox item %s to %s failed: %s", item.id, target.loggable, exc)
            if isinstance(exc, DingTalkApiError) and exc.quota_exhausted:
                log.error("DingTalk's monthly API quota is used up: only session-webhook replies and custom "
                          "robots work until next month (see README, DingTalk quota)")
            raise DeliveryError(str(exc), retryable=exc.retryable, retry_after=exc.retry_after) from exc

    async def fetch_media(self, ref: MediaRef) -> bytes:
        if not ref.platform_media_id:
            raise MediaUnavailable("no DingTalk download code")
        try:
            url = await self.client.download_url(ref.platform_media_id)
            return await self.client.fetch(url, max_bytes=self.max_media_bytes)
        except MediaTooLarge as exc:
            raise MediaUnavailable(str(exc)) from exc
        except DingTalkError as exc:
            if exc.retryable:
                raise  # the inbox tries the event again later
            raise MediaUnavailable(str(exc)) from exc

    # ------------------------------------------------------------------ targets

    def _target(self, item: Outgoing) -> _Target:
        if item.target.startswith(GROUP_PREFIX):
            return _Target("conversation", item.target.removeprefix(GROUP_PREFIX))
        if item.target_kind == "member":
            return _Target("user", item.target)
        kind, _, ident = item.target.partition(":")
        if kind == "team" and ident.isdigit():
            return _Target("team", ident)
        raise DeliveryError(f"not a DingTalk group address: {item.target.split(':')[0]!r}", retryable=False)

    async def _group_route(self, target: _Target) -> GroupRoute:
        if self.sessions is None:
            raise DeliveryError("DingTalk group delivery needs the database (team group_chat)", retryable=False)
        async with self.sessions() as session:
            team = await member_store.get_team(session, int(target.id))
            chat = dict(team.group_chat or {}) if team is not None else None
        if chat is None:
            raise DeliveryError(f"no team {target.id}", retryable=False)
        secret = str(chat.get("dingtalk_secret") or "")
        if ref := _ENV_REF.match(secret):
            secret = self._environ.get(ref.group(1), "")
        token = webhook_token(str(chat.get("dingtalk_webhook") or ""))
        if chat.get("dingtalk_webhook") and (not token or not secret):
            log.warning("team %s: dingtalk_webhook needs a valid access_token and dingtalk_secret (加签)", target.id)
            token = ""
        return GroupRoute(token, secret if token else "", str(chat.get("dingtalk_conversation_id") or ""))

    # ------------------------------------------------------------------ renderers (one per kind)

    async def _text(self, item: Outgoing, target: _Target) -> list[Send]:
        parts = [{"content": p} for p in render.text_parts(str(item.payload.get("text", "")))]
        return await self._messages(target, "text", parts)

    async def _markdown(self, item: Outgoing, target: _Target) -> list[Send]:
        parts = render.markdown_parts(str(item.payload.get("title", "")), str(item.payload.get("text", "")))
        return await self._messages(target, "markdown", [{"title": t, "text": x} for t, x in parts])

    async def _card_markdown(self, target: _Target, card: Card) -> list[Send]:
        title, text = render.card_markdown(card)
        parts = render.markdown_parts("", text)
        return await self._messages(target, "markdown", [{"title": title, "text": x} for _, x in parts])

    async def _image(self, item: Outgoing, target: _Target) -> list[Send]:
        sha = str(item.payload.get("sha256", ""))
        caption = str(item.payload.get("caption", ""))
        route = await self._group_route(target) if target.kind == "team" else None
        if route is not None and not route.conversation_id:
            raise DeliveryError("a custom group robot cannot send an uploaded image; set the team's "
                                "group_chat.dingtalk_conversation_id", retryable=False)
        data = await self._load_media(sha, item.payload.get("path"))
        if len(data) > IMAGE_LIMIT:
            raise DeliveryError(f"image is {len(data)} bytes; DingTalk accepts at most {IMAGE_LIMIT}", retryable=False)
        ext, mime = ("png", "image/png") if data[:8] == b"\x89PNG\r\n\x1a\n" else ("jpg", "image/jpeg")

        async def send_image() -> str | None:
            media_id = await self._upload(sha, "image", f"{sha[:16]}.{ext}", data, mime)
            return await self._robot_api(target, route, "sampleImageMsg", {"photoURL": media_id})

        sends: list[Send] = [send_image]
        if caption.strip():
            sends += await self._messages(target, "text", [{"content": p} for p in render.text_parts(caption)])
        return sends

    async def _file(self, item: Outgoing, target: _Target) -> list[Send]:
        sha = str(item.payload.get("sha256", ""))
        filename = str(item.payload.get("filename") or sha[:16])[:128]
        route = await self._group_route(target) if target.kind == "team" else None
        if route is not None and not route.conversation_id:
            raise DeliveryError("a custom group robot cannot send a file; set the team's "
                                "group_chat.dingtalk_conversation_id", retryable=False)
        data = await self._load_media(sha, item.payload.get("path"))
        if len(data) > FILE_LIMIT:
            raise DeliveryError(f"file is {len(data)} bytes; DingTalk accepts at most {FILE_LIMIT}", retryable=False)
        file_type = filename.rsplit(".", 1)[-1].lower() if "." in filename else "file"

        async def send_file() -> str | None:
            media_id = await self._upload(sha, "file", filename, data, "application/octet-stream")
            return await self._robot_api(target, route, "sampleFile",
                                         {"mediaId": media_id, "fileName": filename, "fileType": file_type})

        return [send_file]

    async def _card(self, item: Outgoing, target: _Target) -> list[Send]:
        card = Card.from_json(item.payload["card"])
        space = await self._card_space(target)
        if not self.config.card_template_id or space is None or card.closed_note:
            return await self._card_markdown(target, card)
        fallback = await self._card_markdown(target, card)

        async def send() -> str | None:
            try:
                await self.client.create_and_deliver_card(self._card_body(card, card.task_id, *space))
                return f"card:{card.task_id}"
            except DingTalkApiError as exc:
                if exc.retryable or exc.token_rejected or exc.quota_exhausted:
                    raise
                log.warning("card %s refused by DingTalk (%s: %s); sending its text version",
                            card.task_id, exc.code, exc.message)
            receipts = [await part() for part in fallback]
            return ",".join(r for r in receipts if r) or None

        return [send]

    async def _card_update(self, item: Outgoing, target: _Target) -> list[Send]:
        card = Card.from_json(item.payload["card"])
        afresh = await self._card_markdown(target, card)
        if not self.config.card_template_id:
            return afresh

        async def update_in_place() -> str | None:
            try:
                await self.client.update_card({
                    "outTrackId": card.task_id,
                    "cardData": {"cardParamMap": render.card_params(card)},
                    "cardUpdateOptions": {"updateCardDataByKey": True},
                })
                return "card-updated"
            except DingTalkApiError as exc:
                if exc.retryable or exc.token_rejected or exc.quota_exhausted:
                    raise
                # Not delivered as a template card (its text went out), or gone: send the new state.
                log.info("card %s: in-place update refused (%s); sending it afresh", card.task_id, exc.code)
            receipts = [await send() for send in afresh]
            return ",".join(r for r in receipts if r) or None

        return [update_in_place]

    async def _card_space(self, target: _Target) -> tuple[str, str] | None:
        if target.kind == "user":
            return "member", target.id
        if target.kind == "conversation":
            return "group", target.id
        route = await self._group_route(target)
        return ("group", route.conversation_id) if route.conversation_id else None

    def _card_body(self, card: Card, track_id: str, space_kind: str, ident: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "cardTemplateId": self.config.card_template_id,
            "outTrackId": track_id,
            "callbackType": "STREAM" if self.config.mode == "stream" else "HTTP",
            "cardData": {"cardParamMap": render.card_params(card)},
            "openSpaceId": render.open_space_id(space_kind, ident),
        }
        if self.config.mode != "stream":
            # HTTP mode: clicks go to the URL registered for this route key (card/callbacks/register).
            body["callbackRouteKey"] = self.config.robot
        if space_kind == "group":
            body["imGroupOpenSpaceModel"] = {"supportForward": False}
            body["imGroupOpenDeliverModel"] = {"robotCode": self.config.robot}
        else:
            body["imRobotOpenSpaceModel"] = {"supportForward": False}
            body["imRobotOpenDeliverModel"] = {"spaceType": "IM_ROBOT", "robotCode": self.config.robot}
        return body

    # ------------------------------------------------------------------ sending

    async def _messages(self, target: _Target, kind: str, parts: list[dict[str, str]]) -> list[Send]:
        route = await self._group_route(target) if target.kind == "team" else None
        return [self._message(target, route, kind, part) for part in parts]

    def _message(self, target: _Target, route: GroupRoute | None, kind: str, content: dict[str, str]) -> Send:
        async def send() -> str | None:
            address = target.id if target.kind == "user" else GROUP_PREFIX + target.id
            hook = self.session_webhooks.get(address) if target.kind != "team" else None
            if hook is not None:
                try:
                    await self.client.send_session_webhook(hook, render.webhook_message(kind, content))
                    return None
                except DingTalkError as exc:
                    # Expired early or refused: the metered API still reaches the person.
                    log.info("DingTalk session webhook for %s failed (%s); using the robot API", address, exc)
                    self.session_webhooks.forget(address)
            if route is not None and route.webhook_token:
                return await self._custom_robot(target, route, render.webhook_message(kind, content))
            msg_key, param = render.robot_message(kind, content)
            return await self._robot_api(target, route, msg_key, param)

        return send

    async def _custom_robot(self, target: _Target, route: GroupRoute, message: dict[str, Any]) -> str | None:
        wait = self._robot_window.reserve(route.webhook_token)
        if wait:
            raise DeliveryError(f"DingTalk robot of team {target.id} is at its 20-a-minute limit",
                                retryable=True, retry_after=wait + 1)
        try:
            await self.client.send_custom_robot(route.webhook_token, route.webhook_secret, message)
        except DingTalkError:
            self._robot_window.release(route.webhook_token)
            raise
        return None

    async def _robot_api(self, target: _Target, route: GroupRoute | None, msg_key: str, param: dict[str, Any]) -> str | None:
        if target.kind == "user":
            answer = await self.client.send_to_users([target.id], msg_key, param)
            if target.id in (answer.get("invalidStaffIdList") or []):
                raise DeliveryError(f"DingTalk: staffId {target.id} is not reachable by this robot", retryable=False)
            if target.id in (answer.get("flowControlledStaffIdList") or []):
                raise DeliveryError(f"DingTalk: flow control for {target.id}", retryable=True, retry_after=60.0)
            return str(answer.get("processQueryKey") or "") or None
        conversation = target.id if target.kind == "conversation" else (route.conversation_id if route else "")
        if not conversation:
            raise DeliveryError(f"team {target.id} has no DingTalk group the app robot is in", retryable=False)
        answer = await self.client.send_to_group(conversation, msg_key, param)
        return str(answer.get("processQueryKey") or "") or None

    async def _upload(self, sha: str, kind: str, filename: str, data: bytes, content_type: str) -> str:
        return await self._uploaded.media_id(
            (sha, kind), lambda: self.client.upload_media(kind, filename, data, content_type)
        )

    async def _load_media(self, sha: str, path: Any) -> bytes:
        return await load_outgoing_media(self.media, sha, path)

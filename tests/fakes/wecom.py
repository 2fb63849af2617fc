"""A fake WeCom API: a real local aiohttp server that checks requests the way WeCom does.

It implements the calls Pacebot makes — ``gettoken``, ``message/send``, ``message/
update_template_card``, ``media/upload``, ``media/get``, ``appchat/send``, ``webhook/send``,
``webhook/upload_media``, ``department/list``, ``user/list`` — checks fields and sizes (2,048-byte
app text, 4,096-byte robot markdown, 2 MB robot images with the right md5, task id format and
uniqueness, single-use response codes valid 72 hours, 20 robot messages a minute), honours
``enable_duplicate_check``, and records every request.

Faults can be injected per API: an errcode (e.g. -1, 45009), an HTTP status (5xx) or a delay; and
all tokens can be expired at once (the next call gets 42001). ``chaos`` fails a share of an API's
calls at random, reproducibly: whether the n-th attempt of a given message fails depends only on the
seed, the message and n, not on the order requests arrive in (the kinds of fault take turns). Every
attempt's (monotonic) time and fault is kept in ``attempts`` per message, to check the sender's
back-off. Time is the fake's own: ``advance`` moves it (token expiry, response code validity,
duplicate-check windows, robot rate windows).

Where WeCom's documentation names no errcode for a refusal (a reused task id, an unusable response
code), the fake uses the constants below; the adapter does not depend on their values.

Also here: builders for the callback XML that WeCom posts, and ``encrypted_callback`` to wrap one
the way WeCom does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import random
import re
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from bot.platforms.wecom.crypto import WeComCrypto

CORP_ID = "wwfakecorp0001"
SECRET = "fake-app-secret"
AGENT_ID = 1000002
TOKEN = "FakeToken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

# errcodes
OK = 0
INVALID_SECRET = 40001
INVALID_MEDIA_ID = 40007
INVALID_CORP_ID = 40013
INVALID_TOKEN = 40014
INVALID_AGENT_ID = 40056
INVALID_PARAM = 40058
MISSING_TOKEN = 41001
TOKEN_EXPIRED = 42001
EMPTY_CONTENT = 44004
CONTENT_TOO_LONG = 45002
FREQUENCY_LIMIT = 45009
ALL_RECEIVERS_INVALID = 81013
INVALID_WEBHOOK = 93000
# Not named by WeCom's documentation; the fake's own choice:
TASK_ID_USED = 40099
RESPONSE_CODE_UNUSABLE = 40098
IMAGE_INVALID = 40009

TASK_ID_RE = re.compile(r"^[A-Za-z0-9_\-@]{1,128}$")
RESPONSE_CODE_TTL = 72 * 3600
INTERACTIVE = {"button_interaction", "vote_interaction", "multiple_interaction"}


@dataclass
class Recorded:
    method: str
    api: str  # the path under /cgi-bin/
    query: dict[str, str]
    body: Any  # parsed JSON, multipart summary, or None
    at: float


@dataclass
class Fault:
    api: str
    errcode: int | None = None
    status: int | None = None
    delay: float = 0.0
    times: int = 1


# What ``chaos`` injects: (label, errcode, HTTP status, delay). A "timeout" answers late — after the
# client gave up — and is then handled normally, as WeCom may well have delivered the message.
CHAOS_FAULTS: tuple[tuple[str, int | None, int | None, float], ...] = (
    ("-1", -1, None, 0.0),
    ("45009", FREQUENCY_LIMIT, None, 0.0),
    ("502", None, 502, 0.0),
    ("timeout", None, None, 1.0),
    ("40014", INVALID_TOKEN, None, 0.0),
)


@dataclass
class Chaos:
    api: str
    rate: float
    seed: int
    faults: tuple[tuple[str, int | None, int | None, float], ...]
    fail_first: dict[str, int]  # touser → the first this many attempts of each message fail (-1)
    injected: int = 0


@dataclass
class Attempt:
    at: float  # time.monotonic()
    fault: str  # a CHAOS_FAULTS label, or "" when the call went through


@dataclass
class ResponseCode:
    userid: str
    task_id: str
    issued_at: float
    used: bool = False


@dataclass
class Media:
    data: bytes
    filename: str
    content_type: str
    kind: str


@dataclass
class FakeWeCom:
    corp_id: str = CORP_ID
    secret: str = SECRET
    agent_id: int = AGENT_ID
    token_ttl: int = 7200
    robot_keys: set[str] = field(default_factory=set)
    chat_ids: set[str] = field(default_factory=set)
    known_users: set[str] | None = None  # None: anyone
    departments: list[dict[str, Any]] = field(default_factory=list)
    users: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # department id → userlist

    def __post_init__(self) -> None:
        self.requests: list[Recorded] = []
        self.messages: list[dict[str, Any]] = []  # app messages delivered (duplicates excluded)
        self.duplicates: list[dict[str, Any]] = []  # app messages dropped by the duplicate check
        self.card_updates: list[dict[str, Any]] = []
        self.appchat_messages: list[dict[str, Any]] = []
        self.robot_messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.media: dict[str, Media] = {}
        self.tokens: dict[str, float] = {}  # token → expiry (fake time)
        self.response_codes: dict[str, ResponseCode] = {}
        self.task_ids: set[str] = set()
        self.faults: list[Fault] = []
        self.chaos_rules: list[Chaos] = []
        self.attempts: dict[str, list[Attempt]] = defaultdict(list)  # message fingerprint → its attempts
        self._offset = 0.0
        self._robot_sent: dict[str, deque[float]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ control

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def inject(self, api: str, *, errcode: int | None = None, status: int | None = None,
               delay: float = 0.0, times: int = 1) -> None:
        self.faults.append(Fault(api, errcode, status, delay, times))

    def chaos(self, api: str = "message/send", *, rate: float = 0.3, seed: int = 1,
              faults: tuple[tuple[str, int | None, int | None, float], ...] = CHAOS_FAULTS,
              fail_first: dict[str, int] | None = None) -> None:
        """Fail ``rate`` of ``api``'s calls with one of ``faults`` (reproducibly, see the module doc);
        and the first ``fail_first[touser]`` attempts of every message to ``touser`` with -1."""
        self.chaos_rules.append(Chaos(api, rate, seed, faults, dict(fail_first or {})))

    def attempts_of(self, message: dict[str, Any]) -> list[Attempt]:
        """Every attempt to send ``message`` (a delivered body from ``messages``), in order."""
        return self.attempts[_fingerprint(message)]

    def expire_tokens(self) -> None:
        for token in self.tokens:
            self.tokens[token] = self.now() - 1

    def click(self, userid: str, task_id: str) -> str:
        """What WeCom does when a user clicks a card: issue a fresh single-use response code."""
        return self._issue_code(userid, task_id)

    def calls(self, api: str) -> list[Recorded]:
        return [r for r in self.requests if r.api == api]

    # ------------------------------------------------------------------ server

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/cgi-bin/{api:.+}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        api = request.match_info["api"]
        body: Any = None
        form: dict[str, Any] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name:
                    data = await part.read(decode=False)
                    form[part.name] = (part.filename, part.headers.get("Content-Type", ""), bytes(data))
            body = {name: {"filename": f, "size": len(d)} for name, (f, _, d) in form.items()}
        elif request.method == "POST":
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return _json({"errcode": 47001, "errmsg": "data format error"})
        self.requests.append(Recorded(request.method, api, dict(request.query), body, self.now()))
        fault = self._take_fault(api) or self._chaos_fault(api, body)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                return web.Response(status=fault.status, text="fault injected")
            if fault.errcode is not None:
                return _json({"errcode": fault.errcode, "errmsg": "fault injected"})
        handler = self._handlers().get(api)
        if handler is None:
            return _json({"errcode": 404, "errmsg": f"unknown api {api}"}, status=404)
        if api.startswith("webhook/"):
            return await handler(request, body, form)
        if api != "gettoken":
            problem = self._check_token(request.query.get("access_token"))
            if problem:
                return _json(problem)
        return await handler(request, body, form)

    def _handlers(self) -> dict[str, Any]:
        return {
            "gettoken": self._gettoken,
            "message/send": self._message_send,
            "message/update_template_card": self._update_card,
            "media/upload": self._media_upload,
            "media/get": self._media_get,
            "appchat/send": self._appchat_send,
            "webhook/send": self._webhook_send,
            "webhook/upload_media": self._webhook_upload,
            "department/list": self._department_list,
            "user/list": self._user_list,
        }

    def _take_fault(self, api: str) -> Fault | None:
        for fault in self.faults:
            if fault.api == api and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _chaos_fault(self, api: str, body: Any) -> Fault | None:
        rules = [rule for rule in self.chaos_rules if rule.api == api]
        if not rules:
            return None
        key = _fingerprint(body) if isinstance(body, dict) else api
        attempts = self.attempts[key]
        rule = rules[0]
        draw = random.Random(f"{rule.seed}:{key}:{len(attempts)}")
        label = ""
        fault = None
        forced = isinstance(body, dict) and len(attempts) < rule.fail_first.get(str(body.get("touser")), 0)
        if forced:
            label, errcode, status, delay = CHAOS_FAULTS[0]
            fault = Fault(api, errcode, status, delay)
        elif draw.random() < rule.rate:
            # The kinds take turns, so that every kind occurs in any run with a few faults.
            label, errcode, status, delay = rule.faults[rule.injected % len(rule.faults)]
            rule.injected += 1
            fault = Fault(api, errcode, status, delay)
        attempts.append(Attempt(time.monotonic(), label))
        return fault

    def _check_token(self, token: str | None) -> dict[str, Any] | None:
        if not token:
            return {"errcode": MISSING_TOKEN, "errmsg": "access_token missing"}
        expiry = self.tokens.get(token)
        if expiry is None:
            return {"errcode": INVALID_TOKEN, "errmsg": "invalid access_token"}
        if expiry <= self.now():
            return {"errcode": TOKEN_EXPIRED, "errmsg": "access_token expired"}
        return None

    # ------------------------------------------------------------------ token

    async def _gettoken(self, request: web.Request, body: Any, form: dict) -> web.Response:
        if request.query.get("corpid") != self.corp_id:
            return _json({"errcode": INVALID_CORP_ID, "errmsg": "invalid corpid"})
        if request.query.get("corpsecret") != self.secret:
            return _json({"errcode": INVALID_SECRET, "errmsg": "invalid credential"})
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.now() + self.token_ttl
        return _json({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl})

    # ------------------------------------------------------------------ app messages

    async def _message_send(self, request: web.Request, body: Any, form: dict) -> web.Response:
        if not isinstance(body, dict):
            return _error(INVALID_PARAM, "body must be a JSON object")
        if body.get("agentid") != self.agent_id:
            return _error(INVALID_AGENT_ID, "invalid agentid")
        touser = body.get("touser")
        if not isinstance(touser, str) or not touser:
            return _error(INVALID_PARAM, "touser is required")
        if self.known_users is not None and touser not in self.known_users:
            return _json({"errcode": ALL_RECEIVERS_INVALID, "errmsg": "all receivers invalid", "invaliduser": touser})
        problem = self._check_content(body, text_limit=2048)
        if problem:
            return problem
        interval = 0
        if body.get("enable_duplicate_check") == 1:
            interval = body.get("duplicate_check_interval", 1800)
            if not isinstance(interval, int) or not 0 < interval <= 4 * 3600:
                return _error(INVALID_PARAM, "duplicate_check_interval out of range")
            fingerprint = _fingerprint(body)
            for sent in reversed(self.messages):
                if sent["_fingerprint"] == fingerprint and self.now() - sent["_at"] < interval:
                    self.duplicates.append(body)
                    return _json({"errcode": 0, "errmsg": "ok", "msgid": sent["_msgid"]})
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": f"msg{next(self._ids)}"}
        if body["msgtype"] == "template_card":
            card = body["template_card"]
            if card["task_id"] in self.task_ids:
                return _error(TASK_ID_USED, "task_id already used")
            self.task_ids.add(card["task_id"])
            if card["card_type"] in INTERACTIVE:
                answer["response_code"] = self._issue_code(touser, card["task_id"])
        self.messages.append({**body, "_fingerprint": _fingerprint(body), "_at": self.now(), "_msgid": answer["msgid"]})
        return _json(answer)

    async def _update_card(self, request: web.Request, body: Any, form: dict) -> web.Response:
        if not isinstance(body, dict):
            return _error(INVALID_PARAM, "body must be a JSON object")
        if body.get("agentid") != self.agent_id:
            return _error(INVALID_AGENT_ID, "invalid agentid")
        if not (body.get("userids") or body.get("partyids") or body.get("tagids") or body.get("atall")):
            return _error(INVALID_PARAM, "no receivers")
        code = self.response_codes.get(str(body.get("response_code") or ""))
        if code is None or code.used or self.now() - code.issued_at > RESPONSE_CODE_TTL:
            return _error(RESPONSE_CODE_UNUSABLE, "response_code invalid, used or expired")
        if "button" in body:
            name = (body["button"] or {}).get("replace_name")
            if not isinstance(name, str) or not name:
                return _error(INVALID_PARAM, "button.replace_name is required")
        elif "template_card" in body:
            problem = _check_card(body["template_card"])
            if problem:
                return _error(INVALID_PARAM, problem)
        else:
            return _error(INVALID_PARAM, "button or template_card is required")
        code.used = True
        self.card_updates.append({**body, "_task_id": code.task_id})
        return _json({"errcode": 0, "errmsg": "ok"})

    def _check_content(self, body: dict[str, Any], *, text_limit: int, markdown_limit: int = 2048,
                       types: tuple[str, ...] = ("text", "markdown", "image", "file", "template_card")) -> web.Response | None:
        msgtype = body.get("msgtype")
        if msgtype not in types:
            return _error(INVALID_PARAM, f"invalid msgtype {msgtype!r}")
        content = body.get(msgtype)
        if not isinstance(content, dict):
            return _error(INVALID_PARAM, f"{msgtype} is required")
        if msgtype in ("text", "markdown"):
            text = content.get("content")
            if not isinstance(text, str) or not text.strip():
                return _error(EMPTY_CONTENT, "empty content")
            limit = text_limit if msgtype == "text" else markdown_limit
            if len(text.encode()) > limit:
                return _error(CONTENT_TOO_LONG, f"content size out of limit ({len(text.encode())} > {limit} bytes)")
        elif msgtype in ("image", "file"):
            media = self.media.get(str(content.get("media_id") or ""))
            if media is None:
                return _error(INVALID_MEDIA_ID, "invalid media_id")
        elif msgtype == "template_card":
            problem = _check_card(content)
            if problem:
                return _error(INVALID_PARAM, problem)
        return None

    def _issue_code(self, userid: str, task_id: str) -> str:
        code = secrets.token_urlsafe(18)
        self.response_codes[code] = ResponseCode(userid, task_id, self.now())
        return code

    # ------------------------------------------------------------------ media

    async def _media_upload(self, request: web.Request, body: Any, form: dict) -> web.Response:
        kind = request.query.get("type")
        limits = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024, "file": 20 * 1024 * 1024}
        if kind not in limits:
            return _error(40004, "invalid media type")
        if "media" not in form:
            return _error(41005, "media data missing")
        filename, ctype, data = form["media"]
        if len(data) <= 5 or len(data) > limits[kind]:
            return _error(40006, f"invalid file size {len(data)}")
        if kind == "image" and not (data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n"):
            return _error(40004, "image must be JPG or PNG")
        media_id = f"media-{next(self._ids)}-{secrets.token_hex(4)}"
        self.media[media_id] = Media(data, filename or "upload", ctype or "application/octet-stream", kind)
        return _json({"errcode": 0, "errmsg": "ok", "type": kind, "media_id": media_id, "created_at": str(int(self.now()))})

    async def _media_get(self, request: web.Request, body: Any, form: dict) -> web.StreamResponse:
        media = self.media.get(request.query.get("media_id", ""))
        if media is None:
            return _error(INVALID_MEDIA_ID, "invalid media_id")
        return web.Response(
            body=media.data,
            content_type=media.content_type.split(";")[0] or "application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{media.filename}"'},
        )

    def add_media(self, data: bytes, *, filename: str = "photo.jpg", content_type: str = "image/jpeg",
                  kind: str = "image") -> str:
        """Media a user sent (as if uploaded from the WeCom client); returns its media id."""
        media_id = f"user-media-{next(self._ids)}"
        self.media[media_id] = Media(data, filename, content_type, kind)
        return media_id

    # ------------------------------------------------------------------ app chats and robots

    async def _appchat_send(self, request: web.Request, body: Any, form: dict) -> web.Response:
        if not isinstance(body, dict):
            return _error(INVALID_PARAM, "body must be a JSON object")
        if body.get("chatid") not in self.chat_ids:
            return _error(86003, "chat not found")
        problem = self._check_content(body, text_limit=2048, types=("text", "markdown", "image", "file"))
        if problem:
            return problem
        self.appchat_messages.append(body)
        return _json({"errcode": 0, "errmsg": "ok"})

    def _robot_check(self, request: web.Request) -> tuple[str, web.Response | None]:
        key = request.query.get("key", "")
        if key not in self.robot_keys:
            return key, _error(INVALID_WEBHOOK, "invalid webhook url")
        return key, None

    async def _webhook_send(self, request: web.Request, body: Any, form: dict) -> web.Response:
        key, problem = self._robot_check(request)
        if problem:
            return problem
        sent = self._robot_sent[key]
        while sent and self.now() - sent[0] >= 60:
            sent.popleft()
        if len(sent) >= 20:
            return _error(FREQUENCY_LIMIT, "api freq out of limit (20 messages per minute per robot)")
        if not isinstance(body, dict):
            return _error(INVALID_PARAM, "body must be a JSON object")
        msgtype = body.get("msgtype")
        content = body.get(msgtype) if isinstance(msgtype, str) else None
        if msgtype in ("text", "markdown"):
            problem = self._check_content(body, text_limit=2048, markdown_limit=4096, types=("text", "markdown"))
            if problem:
                return problem
        elif msgtype == "image":
            if not isinstance(content, dict):
                return _error(INVALID_PARAM, "image is required")
            try:
                raw = base64.b64decode(content.get("base64", ""), validate=True)
            except (ValueError, TypeError):
                return _error(IMAGE_INVALID, "image base64 invalid")
            if len(raw) > 2 * 1024 * 1024:
                return _error(IMAGE_INVALID, f"image too large ({len(raw)} bytes > 2 MB)")
            if hashlib.md5(raw).hexdigest() != content.get("md5"):
                return _error(IMAGE_INVALID, "image md5 does not match")
            if not (raw[:3] == b"\xff\xd8\xff" or raw[:8] == b"\x89PNG\r\n\x1a\n"):
                return _error(IMAGE_INVALID, "image must be JPG or PNG")
        elif msgtype == "file":
            if not isinstance(content, dict) or content.get("media_id") not in self.media:
                return _error(INVALID_MEDIA_ID, "invalid media_id")
        else:
            return _error(INVALID_PARAM, f"invalid msgtype {msgtype!r}")
        sent.append(self.now())
        self.robot_messages[key].append(body)
        return _json({"errcode": 0, "errmsg": "ok"})

    async def _webhook_upload(self, request: web.Request, body: Any, form: dict) -> web.Response:
        key, problem = self._robot_check(request)
        if problem:
            return problem
        if request.query.get("type") not in ("file", "voice") or "media" not in form:
            return _error(INVALID_PARAM, "type and media are required")
        filename, ctype, data = form["media"]
        if len(data) <= 5 or len(data) > 20 * 1024 * 1024:
            return _error(40006, "invalid file size")
        media_id = f"robot-media-{next(self._ids)}"
        self.media[media_id] = Media(data, filename or "file", ctype, "file")
        return _json({"errcode": 0, "errmsg": "ok", "type": "file", "media_id": media_id})

    # ------------------------------------------------------------------ directory

    async def _department_list(self, request: web.Request, body: Any, form: dict) -> web.Response:
        return _json({"errcode": 0, "errmsg": "ok", "department": self.departments})

    async def _user_list(self, request: web.Request, body: Any, form: dict) -> web.Response:
        try:
            department_id = int(request.query.get("department_id", ""))
        except ValueError:
            return _error(INVALID_PARAM, "department_id is required")
        if department_id not in {d["id"] for d in self.departments}:
            return _error(60123, "invalid party id")
        return _json({"errcode": 0, "errmsg": "ok", "userlist": self.users.get(department_id, [])})


# ---------------------------------------------------------------------- checks


def _check_card(card: Any) -> str | None:
    if not isinstance(card, dict):
        return "template_card must be an object"
    card_type = card.get("card_type")
    if card_type not in INTERACTIVE | {"text_notice", "news_notice"}:
        return f"invalid card_type {card_type!r}"
    task_id = card.get("task_id")
    if card_type in INTERACTIVE or task_id is not None:
        if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id) or len(task_id.encode()) > 128:
            return f"invalid task_id {task_id!r}"
    title = (card.get("main_title") or {}).get("title")
    if not title and not card.get("sub_title_text"):
        return "main_title.title or sub_title_text is required"
    if len(card.get("horizontal_content_list") or []) > 6:
        return "horizontal_content_list has more than 6 items"
    if card_type == "button_interaction":
        buttons = card.get("button_list") or []
        if not 1 <= len(buttons) <= 6:
            return "button_list must have 1-6 buttons"
        keys = [b.get("key") for b in buttons]
        if len(set(keys)) != len(keys) or not all(isinstance(k, str) and 0 < len(k.encode()) <= 1024 for k in keys):
            return "button keys must be unique, 1-1024 bytes"
        if not all(isinstance(b.get("text"), str) and b["text"] for b in buttons):
            return "button text is required"
        if not all(b.get("style", 1) in (1, 2, 3, 4) for b in buttons):
            return "button style must be 1-4"
    if card_type == "vote_interaction":
        checkbox = card.get("checkbox") or {}
        options = checkbox.get("option_list") or []
        if not 1 <= len(options) <= 20:
            return "checkbox.option_list must have 1-20 options"
        ids = [o.get("id") for o in options]
        if len(set(ids)) != len(ids) or not all(isinstance(i, str) and 0 < len(i.encode()) <= 128 for i in ids):
            return "option ids must be unique, 1-128 bytes"
        if checkbox.get("mode", 0) not in (0, 1):
            return "checkbox.mode must be 0 or 1"
        if not (card.get("submit_button") or {}).get("key"):
            return "submit_button.key is required"
    if card_type == "multiple_interaction":
        selects = card.get("select_list") or []
        if not 1 <= len(selects) <= 3 or not all(1 <= len(s.get("option_list") or []) <= 10 for s in selects):
            return "select_list must have 1-3 selects of 1-10 options"
        if not (card.get("submit_button") or {}).get("key"):
            return "submit_button.key is required"
    return None


def _fingerprint(body: dict[str, Any]) -> str:
    kept = {k: v for k, v in body.items() if k in ("touser", "toparty", "totag", "msgtype", body.get("msgtype"))}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    # WeCom answers with text/plain JSON more often than not.
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status, content_type="text/plain")


def _error(errcode: int, errmsg: str) -> web.Response:
    return _json({"errcode": errcode, "errmsg": errmsg})


# ---------------------------------------------------------------------- callbacks as WeCom sends them


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(msg_type: str, *, sender: str, fields: dict[str, str], msg_id: str | None = None,
                corp_id: str = CORP_ID, created: int = 1_790_000_000, agent_id: int = AGENT_ID) -> str:
    parts = [
        f"<ToUserName>{_cdata(corp_id)}</ToUserName>",
        f"<FromUserName>{_cdata(sender)}</FromUserName>",
        f"<CreateTime>{created}</CreateTime>",
        f"<MsgType>{_cdata(msg_type)}</MsgType>",
    ]
    parts += [f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items()]
    if msg_id is not None:
        parts.append(f"<MsgId>{escape(msg_id)}</MsgId>")
    parts.append(f"<AgentID>{agent_id}</AgentID>")
    return "<xml>" + "".join(parts) + "</xml>"


def text_xml(sender: str, content: str, msg_id: str, **kw: Any) -> str:
    return message_xml("text", sender=sender, fields={"Content": content}, msg_id=msg_id, **kw)


def image_xml(sender: str, media_id: str, msg_id: str, **kw: Any) -> str:
    return message_xml("image", sender=sender, fields={"PicUrl": "http://example.invalid/p.jpg", "MediaId": media_id},
                       msg_id=msg_id, **kw)


def card_event_xml(sender: str, *, task_id: str, event_key: str, response_code: str,
                   card_type: str = "button_interaction", selected: dict[str, list[str]] | None = None,
                   created: int = 1_790_000_100, corp_id: str = CORP_ID) -> str:
    items = ""
    if selected:
        items = "<SelectedItems>" + "".join(
            f"<SelectedItem><QuestionKey>{_cdata(q)}</QuestionKey><OptionIds>"
            + "".join(f"<OptionId>{_cdata(o)}</OptionId>" for o in options)
            + "</OptionIds></SelectedItem>"
            for q, options in selected.items()
        ) + "</SelectedItems>"
    return (
        f"<xml><ToUserName>{_cdata(corp_id)}</ToUserName><FromUserName>{_cdata(sender)}</FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType>{_cdata('event')}</MsgType>"
        f"<Event>{_cdata('template_card_event')}</Event><EventKey>{_cdata(event_key)}</EventKey>"
        f"<TaskId>{_cdata(task_id)}</TaskId><CardType>{_cdata(card_type)}</CardType>"
        f"<ResponseCode>{_cdata(response_code)}</ResponseCode><AgentID>{AGENT_ID}</AgentID>{items}</xml>"
    )


def encrypted_callback(crypto: WeComCrypto, plaintext: str | bytes, *, timestamp: str | None = None,
                       nonce: str | None = None) -> tuple[dict[str, str], bytes]:
    """(query parameters, body) of the POST WeCom makes for ``plaintext``."""
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    encrypted = crypto.encrypt(data)
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**9))
    params = {"msg_signature": crypto.sign(timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce}
    body = (
        f"<xml><ToUserName>{_cdata(crypto.receive_id)}</ToUserName><Encrypt>{_cdata(encrypted)}</Encrypt>"
        f"<AgentID>{_cdata(str(AGENT_ID))}</AgentID></xml>"
    ).encode()
    return params, body


def default_crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


def wecom_config(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A ``[wecom]`` table pointing at a fake server."""
    return {
        "enabled": True,
        "corp_id": CORP_ID,
        "agent_id": AGENT_ID,
        "secret": SECRET,
        "token": TOKEN,
        "encoding_aes_key": AES_KEY,
        "api_base": base_url,
        "request_timeout_seconds": 5.0,
        **overrides,
    }

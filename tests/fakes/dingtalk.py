"""A fake DingTalk: a real local HTTPS + WebSocket server that checks requests the way DingTalk does.

One server plays both API hosts (``api_base`` and ``oapi_base`` point at it) and the Stream
gateway. It serves TLS only, with a certificate made for the test run (``tls()``), so a client
that tried plain HTTP would fail; every request is also recorded with its scheme.

Implemented: ``/v1.0/oauth2/accessToken``; ``/v1.0/robot/oToMessages/batchSend`` (≤ 20 userIds,
unknown ones in ``invalidStaffIdList``); ``/v1.0/robot/groupMessages/send``;
``/v1.0/robot/messageFiles/download`` (→ a temporary https URL served here); oapi ``media/upload``;
``/v1.0/card/instances/createAndDeliver`` and ``PUT /v1.0/card/instances``; custom robot
``/robot/send`` (加签 signature checked, 20 a minute, then throttled for 10 minutes with 410100);
``/robot/sendBySession`` (session webhooks, with expiry); the directory (``topapi/v2/department/
listsub``, ``department/get``, ``topapi/v2/user/list`` with cursor paging); and Stream:
``/v1.0/gateway/connections/open`` (one-time tickets valid 90 s) and the WebSocket at ``/connect``
speaking the frame protocol (ping, disconnect, CALLBACK frames, ACKs; un-ACKed frames are
redelivered, after ``ack_timeout`` or on the next connection).

Faults (``inject``): an error code (e.g. "90020", an invalid-token code), an HTTP status (5xx) or a
delay, per API path. Stream faults: ``drop()`` closes the socket under the client,
``refuse_tickets`` makes ``connections/open`` fail, ``redeliver_every`` sends each frame again
even after its ACK, ``ack_delay`` holds frames back, ``send_raw`` pushes any text frame.
``metered_calls`` counts the calls DingTalk would meter (those carrying an access token).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import itertools
import json
import secrets
import shutil
import ssl
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

APP_KEY = "dingfakeappkey0001"
APP_SECRET = "fake-dingtalk-app-secret-0001"
ROBOT_CODE = APP_KEY
CARD_TEMPLATE = "fake-template.schema"
ROBOT_TOKEN = "robottoken0123456789abcdef"
ROBOT_SECRET = "SECfakerobotsecret0123456789"
GROUP_CID = "cidFakeGroupEast0001=="

MSG_KEYS = {"sampleText", "sampleMarkdown", "sampleImageMsg", "sampleFile", "sampleActionCard"}
TEXT_LIMIT = 5000


@dataclass
class Recorded:
    method: str
    path: str
    scheme: str
    query: dict[str, str]
    body: Any
    at: float


@dataclass
class Fault:
    path: str
    code: str | None = None
    status: int | None = None
    delay: float = 0.0
    times: int = 1


# ---------------------------------------------------------------------- TLS for the fake


@dataclass(frozen=True)
class Tls:
    ca_file: str
    server: ssl.SSLContext

    def client(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=self.ca_file)
        return context


@lru_cache(maxsize=1)
def tls() -> Tls:
    """A self-signed certificate for 127.0.0.1, made once per test run."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake dingtalk")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(tempfile.mkdtemp(prefix="fake-dingtalk-tls-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Tls(str(cert_file), server)


def sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# ---------------------------------------------------------------------- the fake


@dataclass
class FakeDingTalk:
    app_key: str = APP_KEY
    app_secret: str = APP_SECRET
    robot_code: str = ROBOT_CODE
    card_template: str = CARD_TEMPLATE
    token_ttl: int = 7200
    known_users: set[str] | None = None  # None: anyone
    conversations: set[str] = field(default_factory=lambda: {GROUP_CID})
    robots: dict[str, str] = field(default_factory=lambda: {ROBOT_TOKEN: ROBOT_SECRET})  # token → SEC secret
    monthly_quota: int | None = None  # metered calls allowed before 90020
    departments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id → {name, parent_id, managers}
    users: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # dept id → users
    ack_timeout: float = 2.0  # Stream: an un-ACKed frame is pushed again after this

    def __post_init__(self) -> None:
        self.requests: list[Recorded] = []
        self.messages: list[dict[str, Any]] = []  # batchSend, one entry per user
        self.group_messages: list[dict[str, Any]] = []
        self.robot_messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.session_messages: list[dict[str, Any]] = []
        self.cards: dict[str, dict[str, Any]] = {}  # outTrackId → createAndDeliver body
        self.card_updates: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.files: dict[str, bytes] = {}  # download code → bytes
        self.tokens: dict[str, float] = {}
        self.sessions: dict[str, float] = {}  # session id → expiry (epoch seconds)
        self.session_owners: dict[str, str] = {}
        self.faults: list[Fault] = []
        self.metered_calls = 0
        # Stream
        self.tickets: dict[str, float] = {}
        self.refuse_tickets = 0
        self.redeliver_every = 0  # extra copies of each frame, sent even after its ACK
        self.ack_delay = 0.0
        self.sockets: list[web.WebSocketResponse] = []
        self.pending: dict[str, str] = {}  # messageId → frame text, until ACKed
        self.acked: list[str] = []
        self.ack_waiters: dict[str, asyncio.Future[None]] = {}  # messageId → resolved at its first ACK
        self.pushed: list[str] = []  # messageIds, once per push (redeliveries included)
        self.ws_connections = 0
        self.pongs: list[dict[str, Any]] = []
        self._robot_sent: dict[str, deque[float]] = defaultdict(deque)
        self._robot_throttled_until: dict[str, float] = {}
        self._offset = 0.0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._redeliverer: asyncio.Task[None] | None = None
        self.base_url = ""
        self.port = 0

    # ------------------------------------------------------------------ control

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def inject(self, path: str, *, code: str | None = None, status: int | None = None,
               delay: float = 0.0, times: int = 1) -> None:
        self.faults.append(Fault(path, code, status, delay, times))

    def expire_tokens(self) -> None:
        for token in self.tokens:
            self.tokens[token] = self.now() - 1

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def add_file(self, data: bytes) -> str:
        """A picture or file a user sent; returns its download code."""
        code = f"dl-{next(self._ids)}-{secrets.token_hex(8)}"
        self.files[code] = data
        return code

    def session_webhook(self, owner: str, minutes: float = 90) -> tuple[str, int]:
        """(sessionWebhook URL, sessionWebhookExpiredTime ms) as DingTalk puts them in a message to
        the conversation ``owner`` (a staffId or a group id)."""
        session = secrets.token_urlsafe(12)
        expires = self.now() + minutes * 60
        self.sessions[session] = expires
        self.session_owners[session] = owner
        return f"{self.base_url}/robot/sendBySession?session={session}", int(expires * 1000)

    def all_texts(self, user: str | None = None) -> list[str]:
        """Every text or markdown that reached ``user`` (or anyone), whatever the channel."""
        out: list[str] = []
        for m in self.messages:
            if user is None or m["user"] == user:
                out.append(m["param"].get("content") or m["param"].get("text") or "")
        for m in self.session_messages:
            if user is None or m["_to"] == user:
                body = m.get(m["msgtype"]) or {}
                out.append(body.get("content") or body.get("text") or "")
        return out

    # ------------------------------------------------------------------ server

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/connect", self._connect)
        app.router.add_get("/files/{code}", self._file)
        app.router.add_route("*", "/{path:.+}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=tls().server)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"https://127.0.0.1:{self.port}"
        self._redeliverer = asyncio.create_task(self._redeliver_loop())
        return self.base_url

    async def close(self) -> None:
        if self._redeliverer is not None:
            self._redeliverer.cancel()
            await asyncio.gather(self._redeliverer, return_exceptions=True)
        for ws in list(self.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        body: Any = None
        form: dict[str, tuple[str | None, bytes]] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name:
                    form[part.name] = (part.filename, bytes(await part.read(decode=False)))  # type: ignore[union-attr]
            body = {name: {"filename": f, "size": len(d)} for name, (f, d) in form.items()}
        elif request.method in ("POST", "PUT"):
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return _api_error(400, "InvalidParameter", "body is not JSON")
        self.requests.append(Recorded(request.method, path, request.scheme, dict(request.query), body, self.now()))
        fault = self._take_fault(path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                return web.Response(status=fault.status, text="fault injected")
            if fault.code is not None:
                return self._error(path, fault.code, "fault injected")
        handler = self._handlers().get((request.method, path))
        if handler is None:
            return _api_error(404, "NotFound", f"unknown api {request.method} {path}")
        if path in _METERED_API or path in _METERED_OAPI:
            problem = self._check_token(path, request)
            if problem is not None:
                return problem
            self.metered_calls += 1
            if self.monthly_quota is not None and self.metered_calls > self.monthly_quota:
                return self._error(path, "90020", "您的企业本月api调用量已超过限制")
        return await handler(request, body, form)

    def _handlers(self) -> dict[tuple[str, str], Any]:
        return {
            ("POST", "/v1.0/oauth2/accessToken"): self._token,
            ("POST", "/v1.0/robot/oToMessages/batchSend"): self._batch_send,
            ("POST", "/v1.0/robot/groupMessages/send"): self._group_send,
            ("POST", "/v1.0/robot/messageFiles/download"): self._download,
            ("POST", "/media/upload"): self._media_upload,
            ("POST", "/v1.0/card/instances/createAndDeliver"): self._card_create,
            ("PUT", "/v1.0/card/instances"): self._card_update,
            ("POST", "/robot/send"): self._robot_send,
            ("POST", "/robot/sendBySession"): self._session_send,
            ("POST", "/topapi/v2/department/listsub"): self._listsub,
            ("POST", "/topapi/v2/department/get"): self._department_get,
            ("POST", "/topapi/v2/user/list"): self._user_list,
            ("POST", "/v1.0/gateway/connections/open"): self._open_connection,
        }

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path == path and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _error(self, path: str, code: str, message: str) -> web.Response:
        if path.startswith("/v1.0/"):
            if code == "90020":
                code = "Forbidden.AccessDenied.ApiCountLimitForOrg"
            status = 401 if code == "InvalidAuthentication" else 403 if code.startswith("Forbidden") else 400
            return _api_error(status, code, message)
        return _oapi_error(int(code) if code.lstrip("-").isdigit() else 1, message)

    def _check_token(self, path: str, request: web.Request) -> web.Response | None:
        if path.startswith("/v1.0/"):
            token = request.headers.get("x-acs-dingtalk-access-token", "")
        else:
            token = request.query.get("access_token", "")
        expiry = self.tokens.get(token)
        if expiry is None:
            return self._error(path, "InvalidAuthentication" if path.startswith("/v1.0/") else "40014", "不合法的access_token")
        if expiry <= self.now():
            return self._error(path, "InvalidAuthentication" if path.startswith("/v1.0/") else "42001", "access_token过期")
        return None

    # ------------------------------------------------------------------ token

    async def _token(self, request: web.Request, body: Any, form: dict) -> web.Response:
        if not isinstance(body, dict) or body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return _api_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.now() + self.token_ttl
        return web.json_response({"accessToken": token, "expireIn": self.token_ttl})

    # ------------------------------------------------------------------ robot messages

    def _check_msg(self, body: Any) -> tuple[dict[str, Any] | None, web.Response | None]:
        if not isinstance(body, dict):
            return None, _api_error(400, "InvalidParameter", "body must be an object")
        if body.get("robotCode") != self.robot_code:
            return None, _api_error(400, "robot.notExist", "robotCode is wrong")
        if body.get("msgKey") not in MSG_KEYS:
            return None, _api_error(400, "InvalidParameter.msgKey", "unknown msgKey")
        try:
            param = json.loads(body.get("msgParam") or "")
        except (TypeError, ValueError):
            return None, _api_error(400, "InvalidParameter.msgParam", "msgParam must be a JSON string")
        if not isinstance(param, dict):
            return None, _api_error(400, "InvalidParameter.msgParam", "msgParam must be an object")
        key = body["msgKey"]
        if key == "sampleText":
            text = param.get("content")
            if not isinstance(text, str) or not text.strip() or len(text.encode()) > TEXT_LIMIT:
                return None, _api_error(400, "InvalidParameter.content", "content empty or too long")
        if key == "sampleMarkdown" and not (param.get("title") and param.get("text")):
            return None, _api_error(400, "InvalidParameter.markdown", "title and text are required")
        if key == "sampleImageMsg" and param.get("photoURL") not in self.media:
            return None, _api_error(400, "InvalidParameter.photoURL", "photoURL is not a known media id")
        if key == "sampleFile" and param.get("mediaId") not in self.media:
            return None, _api_error(400, "InvalidParameter.mediaId", "unknown mediaId")
        return param, None

    async def _batch_send(self, request: web.Request, body: Any, form: dict) -> web.Response:
        param, problem = self._check_msg(body)
        if problem is not None:
            return problem
        users = body.get("userIds")
        if not isinstance(users, list) or not 1 <= len(users) <= 20:
            return _api_error(400, "InvalidParameter.userIds", "1-20 userIds")
        invalid = [u for u in users if self.known_users is not None and u not in self.known_users]
        for user in users:
            if user not in invalid:
                self.messages.append({"user": user, "msgKey": body["msgKey"], "param": param})
        return web.json_response({"processQueryKey": f"pqk-{next(self._ids)}", "invalidStaffIdList": invalid,
                                  "flowControlledStaffIdList": []})

    async def _group_send(self, request: web.Request, body: Any, form: dict) -> web.Response:
        param, problem = self._check_msg(body)
        if problem is not None:
            return problem
        if body.get("openConversationId") not in self.conversations:
            return _api_error(400, "resource.not.found", "openConversationId not found")
        self.group_messages.append({"cid": body["openConversationId"], "msgKey": body["msgKey"], "param": param})
        return web.json_response({"processQueryKey": f"pqk-{next(self._ids)}"})

    async def _download(self, request: web.Request, body: Any, form: dict) -> web.Response:
        if not isinstance(body, dict) or body.get("robotCode") != self.robot_code:
            return _api_error(400, "robot.notExist", "robotCode is wrong")
        if body.get("downloadCode") not in self.files:
            return _api_error(400, "downloadCode.invalid", "downloadCode expired or invalid")
        return web.json_response({"downloadUrl": f"{self.base_url}/files/{body['downloadCode']}"})

    async def _file(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded("GET", "/files", request.scheme, {}, None, self.now()))
        data = self.files.get(request.match_info["code"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    async def _media_upload(self, request: web.Request, body: Any, form: dict) -> web.Response:
        kind = request.query.get("type")
        if kind not in ("image", "file", "voice", "video") or "media" not in form:
            return _oapi_error(40004, "type and media are required")
        filename, data = form["media"]
        if len(data) <= 5 or len(data) > 20 * 1024 * 1024:
            return _oapi_error(40006, "invalid file size")
        media_id = f"@lA{next(self._ids)}{secrets.token_hex(6)}"
        self.media[media_id] = (data, filename or "upload")
        return web.json_response({"errcode": 0, "errmsg": "ok", "type": kind, "media_id": media_id,
                                  "created_at": int(self.now() * 1000)})

    # ------------------------------------------------------------------ cards

    async def _card_create(self, request: web.Request, body: Any, form: dict) -> web.Response:
        if not isinstance(body, dict) or body.get("cardTemplateId") != self.card_template:
            return _api_error(400, "param.cardTemplateId.invalid", "unknown cardTemplateId")
        track = body.get("outTrackId")
        if not isinstance(track, str) or not track or track in self.cards:
            return _api_error(400, "param.outTrackId.duplicate", "outTrackId missing or already used")
        space = str(body.get("openSpaceId") or "")
        if space.startswith("dtv1.card//IM_ROBOT."):
            deliver = body.get("imRobotOpenDeliverModel") or {}
            if deliver.get("spaceType") != "IM_ROBOT" or deliver.get("robotCode") != self.robot_code:
                return _api_error(400, "param.imRobotOpenDeliverModel.invalid", "IM_ROBOT needs robotCode")
        elif space.startswith("dtv1.card//IM_GROUP."):
            if space.removeprefix("dtv1.card//IM_GROUP.") not in self.conversations:
                return _api_error(400, "param.openSpaceId.invalid", "unknown group")
        else:
            return _api_error(400, "param.openSpaceId.invalid", "openSpaceId must be dtv1.card//IM_ROBOT.* or IM_GROUP.*")
        if body.get("callbackType") not in ("STREAM", "HTTP"):
            return _api_error(400, "param.callbackType.invalid", "callbackType must be STREAM or HTTP")
        params = (body.get("cardData") or {}).get("cardParamMap")
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return _api_error(400, "param.cardParamMap.invalid", "cardParamMap values must be strings")
        self.cards[track] = body
        return web.json_response({"success": True, "result": {"outTrackId": track}})

    async def _card_update(self, request: web.Request, body: Any, form: dict) -> web.Response:
        if not isinstance(body, dict) or body.get("outTrackId") not in self.cards:
            return _api_error(400, "card.notFound", "card instance not found")
        params = (body.get("cardData") or {}).get("cardParamMap")
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return _api_error(400, "param.cardParamMap.invalid", "cardParamMap values must be strings")
        self.card_updates.append(body)
        return web.json_response({"success": True, "result": True})

    def click(self, user: str, track_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """The card callback DingTalk sends when ``user`` presses a button of card ``track_id``."""
        return {
            "outTrackId": track_id, "userId": user, "corpId": "dingcorp", "type": "actionCallback",
            "content": json.dumps({"cardPrivateData": {"actionIds": ["act"], "params": params}}),
        }

    # ------------------------------------------------------------------ webhooks

    async def _robot_send(self, request: web.Request, body: Any, form: dict) -> web.Response:
        token = request.query.get("access_token", "")
        secret = self.robots.get(token)
        if secret is None:
            return _oapi_error(300001, "token is not exist")
        timestamp, signature = request.query.get("timestamp", ""), request.query.get("sign", "")
        if not timestamp.isdigit() or abs(int(timestamp) / 1000 - time.time()) > 3600:
            return _oapi_error(310000, "invalid timestamp")
        if not hmac.compare_digest(sign(secret, timestamp), signature):
            return _oapi_error(310000, "sign not match")
        if self._robot_throttled_until.get(token, 0) > self.now():
            return _oapi_error(410100, "send too fast, exceed 20 times per minute")
        sent = self._robot_sent[token]
        while sent and self.now() - sent[0] >= 60:
            sent.popleft()
        if len(sent) >= 20:
            self._robot_throttled_until[token] = self.now() + 600
            return _oapi_error(410100, "send too fast, exceed 20 times per minute")
        problem = _check_webhook_message(body)
        if problem:
            return _oapi_error(40035, problem)
        sent.append(self.now())
        self.robot_messages[token].append(body)
        return _oapi_error(0, "ok")

    async def _session_send(self, request: web.Request, body: Any, form: dict) -> web.Response:
        session = request.query.get("session", "")
        expiry = self.sessions.get(session)
        if expiry is None or expiry <= self.now():
            return _oapi_error(300001, "session expired")
        problem = _check_webhook_message(body)
        if problem:
            return _oapi_error(40035, problem)
        self.session_messages.append({**body, "_session": session, "_to": self.session_owners.get(session, "")})
        return _oapi_error(0, "ok")

    # ------------------------------------------------------------------ directory

    async def _listsub(self, request: web.Request, body: Any, form: dict) -> web.Response:
        parent = (body or {}).get("dept_id")
        if parent not in self.departments:
            return _oapi_error(60003, "部门不存在")
        children = [{"dept_id": d, "name": info["name"], "parent_id": parent}
                    for d, info in self.departments.items() if info.get("parent_id") == parent]
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": children})

    async def _department_get(self, request: web.Request, body: Any, form: dict) -> web.Response:
        dept = (body or {}).get("dept_id")
        if dept not in self.departments:
            return _oapi_error(60003, "部门不存在")
        info = self.departments[dept]
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": {
            "dept_id": dept, "name": info["name"], "parent_id": info.get("parent_id"),
            "dept_manager_userid_list": info.get("managers", [])}})

    async def _user_list(self, request: web.Request, body: Any, form: dict) -> web.Response:
        body = body or {}
        dept, cursor, size = body.get("dept_id"), body.get("cursor"), body.get("size")
        if dept not in self.departments:
            return _oapi_error(60003, "部门不存在")
        if not isinstance(cursor, int) or not isinstance(size, int) or not 1 <= size <= 100:
            return _oapi_error(40035, "cursor and size (1-100) are required")
        users = self.users.get(dept, [])
        page = users[cursor : cursor + size]
        more = cursor + size < len(users)
        return web.json_response({"errcode": 0, "errmsg": "ok", "result": {
            "has_more": more, "next_cursor": cursor + size if more else None, "list": page}})

    # ------------------------------------------------------------------ Stream gateway

    async def _open_connection(self, request: web.Request, body: Any, form: dict) -> web.Response:
        if not isinstance(body, dict) or body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return _api_error(401, "authFailed", "鉴权失败")
        if self.refuse_tickets > 0:
            self.refuse_tickets -= 1
            return _api_error(503, "ServiceUnavailable", "gateway busy (fault injected)")
        topics = [s.get("topic") for s in body.get("subscriptions") or [] if s.get("type") == "CALLBACK"]
        if not topics:
            return _api_error(400, "InvalidParameter.subscriptions", "no subscriptions")
        ticket = secrets.token_urlsafe(16)
        self.tickets[ticket] = self.now() + 90
        return web.json_response({"endpoint": f"wss://127.0.0.1:{self.port}/connect", "ticket": ticket})

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Recorded("GET", "/connect", request.scheme, dict(request.query), None, self.now()))
        expiry = self.tickets.pop(request.query.get("ticket", ""), None)
        if expiry is None or expiry <= self.now():
            return web.Response(status=401, text="ticket invalid or used")
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.ws_connections += 1
        self.sockets.append(ws)
        for frame in list(self.pending.values()):  # what the last connection left un-ACKed
            await self._send(ws, frame)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                reply = json.loads(msg.data)
                message_id = (reply.get("headers") or {}).get("messageId", "")
                if message_id.startswith("ping-"):
                    self.pongs.append(reply)
                elif message_id in self.pending and reply.get("code") == 200:
                    del self.pending[message_id]
                    self.acked.append(message_id)
                    waiter = self.ack_waiters.pop(message_id, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                elif reply.get("code") != 200:
                    self.pending.pop(message_id, None)
                    self.acked.append(message_id)
        finally:
            if ws in self.sockets:
                self.sockets.remove(ws)
        return ws

    async def _send(self, ws: web.WebSocketResponse, frame: str) -> None:
        if self.ack_delay:
            await asyncio.sleep(self.ack_delay)
        if ws.closed:
            return
        try:
            await ws.send_str(frame)
        except ConnectionError:
            return
        self.pushed.append(json.loads(frame)["headers"]["messageId"])

    async def push(self, topic: str, data: dict[str, Any], *, message_id: str | None = None) -> str:
        """DingTalk pushes a CALLBACK frame to one connected client; it stays pending until ACKed."""
        message_id = message_id or f"msg-{next(self._ids)}-{secrets.token_hex(4)}"
        frame = json.dumps({
            "specVersion": "1.0", "type": "CALLBACK",
            "headers": {"topic": topic, "messageId": message_id, "contentType": "application/json",
                        "time": str(int(self.now() * 1000)), "appId": "fake"},
            "data": json.dumps(data, ensure_ascii=False),
        }, ensure_ascii=False)
        self.pending[message_id] = frame
        if self.sockets:
            ws = self.sockets[len(self.pushed) % len(self.sockets)]
            await self._send(ws, frame)
            for _ in range(self.redeliver_every):
                await self._send(ws, frame)
        return message_id

    async def push_bot_message(self, body: dict[str, Any]) -> str:
        return await self.push("/v1.0/im/bot/messages/get", body)

    async def system(self, topic: str, data: str = "{}") -> str:
        message_id = f"ping-{next(self._ids)}" if topic == "ping" else f"sys-{next(self._ids)}"
        frame = json.dumps({"specVersion": "1.0", "type": "SYSTEM",
                            "headers": {"topic": topic, "messageId": message_id, "contentType": "application/json"},
                            "data": data})
        for ws in list(self.sockets):
            await ws.send_str(frame)
        return message_id

    async def send_raw(self, text: str) -> None:
        for ws in list(self.sockets):
            await ws.send_str(text)

    async def drop(self) -> None:
        """Close every Stream socket abruptly (as a network failure would)."""
        for ws in list(self.sockets):
            transport = ws._req.transport if ws._req is not None else None  # type: ignore[union-attr]
            if transport is not None:
                transport.abort()
            self.sockets.remove(ws)

    async def drop_mid_frame(self) -> None:
        """Start a text frame, send half of it, and cut the connection."""
        for ws in list(self.sockets):
            transport = ws._req.transport if ws._req is not None else None  # type: ignore[union-attr]
            if transport is not None:
                payload = b'{"specVersion":"1.0","type":"CALLBACK","headers":{"topic":"/v1.0/im/bot/me'
                transport.write(b"\x81\x7e\x01\x00" + payload)  # announces 256 bytes, sends fewer
                transport.abort()
            self.sockets.remove(ws)

    async def _redeliver_loop(self) -> None:
        seen: dict[str, float] = {}
        while True:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            for message_id, frame in list(self.pending.items()):
                first = seen.setdefault(message_id, now)
                if now - first >= self.ack_timeout and self.sockets:
                    seen[message_id] = now
                    await self._send(self.sockets[0], frame)


_METERED_API = {"/v1.0/robot/oToMessages/batchSend", "/v1.0/robot/groupMessages/send",
                "/v1.0/robot/messageFiles/download", "/v1.0/card/instances/createAndDeliver",
                "/v1.0/card/instances"}
_METERED_OAPI = {"/media/upload", "/topapi/v2/department/listsub", "/topapi/v2/department/get",
                 "/topapi/v2/user/list"}


def _check_webhook_message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be an object"
    msgtype = body.get("msgtype")
    content = body.get(msgtype) if isinstance(msgtype, str) else None
    if msgtype == "text":
        text = (content or {}).get("content")
        if not isinstance(text, str) or not text.strip() or len(text.encode()) > TEXT_LIMIT:
            return "text.content empty or too long"
    elif msgtype == "markdown":
        if not (content or {}).get("title") or not (content or {}).get("text"):
            return "markdown.title and markdown.text are required"
    elif msgtype not in ("actionCard", "link", "feedCard"):
        return f"unknown msgtype {msgtype!r}"
    return None


def _api_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "requestid": secrets.token_hex(8)}, status=status)


def _oapi_error(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


# ---------------------------------------------------------------------- callbacks as DingTalk sends them


def signed_headers(secret: str = APP_SECRET, *, timestamp_ms: int | None = None) -> dict[str, str]:
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    return {"timestamp": timestamp, "sign": sign(secret, timestamp), "Content-Type": "application/json"}


def bot_message(sender: str, msg_id: str, *, msgtype: str = "text", text: str = "", content: dict | None = None,
                group: str | None = None, session_webhook: tuple[str, int] | None = None,
                robot_code: str = ROBOT_CODE) -> dict[str, Any]:
    body: dict[str, Any] = {
        "msgId": msg_id, "msgtype": msgtype, "createAt": int(time.time() * 1000),
        "conversationType": "2" if group else "1", "conversationId": group or f"cid-1to1-{sender}",
        "senderStaffId": sender, "senderNick": sender, "senderId": f"$:LWCP_v1:${sender}",
        "robotCode": robot_code, "chatbotUserId": "$:LWCP_v1:$robot", "isInAtList": True,
    }
    if session_webhook:
        body["sessionWebhook"], body["sessionWebhookExpiredTime"] = session_webhook
    if msgtype == "text":
        body["text"] = {"content": text}
    if content is not None:
        body["content"] = content
    return body


def dingtalk_config(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A ``[dingtalk]`` table pointing at a fake server (and trusting its certificate)."""
    return {
        "enabled": True,
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "api_base": base_url,
        "oapi_base": base_url,
        "ca_file": tls().ca_file,
        "request_timeout_seconds": 5.0,
        **overrides,
    }

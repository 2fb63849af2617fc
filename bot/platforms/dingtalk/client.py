"""The DingTalk server APIs over one long-lived aiohttp session, HTTPS only.

Why not the ``alibabacloud-dingtalk`` SDK: its Tea runtime opens a new HTTP session (and TLS
handshake) for every call, defaults to plain HTTP unless told otherwise, and would still need
this module's token cache, error classification and quota metering around it. A thin client on
one ``aiohttp.ClientSession`` reuses connections, shares the event loop with the rest of Pacebot,
and refuses any URL that is not ``https://`` before a byte is sent — above all the token request,
which carries the app secret.

Two API families:

  ``api``   https://api.dingtalk.com/v1.0/... — JSON bodies, the token in the header
            ``x-acs-dingtalk-access-token``; failures are HTTP 4xx/5xx with ``{code, message}``.
  ``oapi``  https://oapi.dingtalk.com/... — the token in the query; failures are
            ``{errcode, errmsg}`` with HTTP 200.

The access token (``/v1.0/oauth2/accessToken``, 7,200 s) lives in the shared ``TokenCache``:
refreshed early, and once more when DingTalk answers with an invalid-token code.

Every call carrying an access token is metered by DingTalk (about 10,000 a month on the free
plan); each one is reported to ``meter`` before it is made. The token request, the Stream
gateway, session webhooks and custom robot webhooks are not metered.

Failures surface as ``DingTalkApiError`` (DingTalk refused) or ``DingTalkTransportError``
(timeout, connection, HTTP status without a DingTalk answer); both say whether trying again later
can help. Secrets, tokens and webhook tokens never appear in logs or exception messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.platforms.shared.errors import RemoteError, client_error_text, status_is_retryable
from bot.platforms.shared.tokens import TokenCache

log = logging.getLogger(__name__)

Meter = Callable[[str], Awaitable[None]]

# api.dingtalk.com codes / oapi errcodes meaning "this token is no good": fetch another, try once more.
TOKEN_CODES = frozenset({"InvalidAuthentication", "invalidAuthentication", "40014", "42001", "40001"})
# The organisation's monthly quota of metered calls is used up.
QUOTA_CODES = frozenset({"90020", "Forbidden.AccessDenied.ApiCountLimitForOrg"})
# Frequency limits and "busy": worth trying again shortly.
RETRYABLE_CODES = frozenset({"-1", "90002", "90005", "90006", "90008", "90010", "90018", "90019",
                             "ServiceUnavailable", "SystemBusy"})
ROBOT_THROTTLED = "410100"  # a custom robot sent more than 20 messages in a minute: 10 minutes' pause
RETRY_AFTER = {"90018": 2.0, "90019": 2.0, "90002": 60.0, "90005": 60.0, "90006": 60.0, ROBOT_THROTTLED: 600.0}


class DingTalkError(RemoteError):
    pass


class DingTalkApiError(DingTalkError):
    """DingTalk answered with an error code."""

    def __init__(self, api: str, code: str, message: str, *, status: int = 200) -> None:
        super().__init__(f"DingTalk {api}: {code}: {message}")
        self.api = api
        self.code = code
        self.message = message
        self.status = status
        self.retryable = code in RETRYABLE_CODES or code.startswith("Forbidden.AccessDenied.Qps") or status >= 500
        self.retry_after = RETRY_AFTER.get(code)
        if code == ROBOT_THROTTLED:
            self.retryable = True

    @property
    def token_rejected(self) -> bool:
        return self.code in TOKEN_CODES

    @property
    def quota_exhausted(self) -> bool:
        return self.code in QUOTA_CODES


class DingTalkTransportError(DingTalkError):
    """No usable answer: timeout, connection failure, an HTTP error status, or a refused URL."""

    def __init__(self, api: str, detail: str, *, retryable: bool = True) -> None:
        super().__init__(f"DingTalk {api}: {detail}")
        self.api = api
        self.retryable = retryable


class MediaTooLarge(DingTalkError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"media is larger than {limit} bytes ({size or 'unknown'} bytes)")


@dataclass(frozen=True)
class StreamTicket:
    endpoint: str
    ticket: str


def sign(secret: str, timestamp: str) -> str:
    """Base64(HmacSHA256(key = secret, msg = timestamp + "\\n" + secret)): DingTalk's signature of
    HTTP callbacks (secret = AppSecret) and of custom robot webhooks (secret = the robot's SEC…)."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def require_https(url: str, api: str) -> str:
    if urlsplit(url).scheme != "https":
        raise DingTalkTransportError(api, "refusing a URL that is not https://", retryable=False)
    return url


class DingTalkClient:
    def __init__(
        self,
        *,
        api_base: str,
        oapi_base: str,
        app_key: str,
        app_secret: str,
        robot_code: str,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        meter: Meter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.oapi_base = oapi_base.rstrip("/")
        self.app_key = app_key
        self.robot_code = robot_code
        self._secret = app_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl = ssl_context or ssl.create_default_context()
        self.ssl_context = self._ssl  # the Stream connection trusts the same CAs
        self._meter = meter
        self._session: aiohttp.ClientSession | None = None
        self._tokens = TokenCache(self._fetch_token, platform="dingtalk", monotonic=monotonic)

    @property
    def token_fetches(self) -> int:
        return self._tokens.fetches

    @property
    def oapi_host(self) -> str:
        return urlsplit(self.oapi_base).netloc

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"User-Agent": "Pacebot"},
                connector=aiohttp.TCPConnector(limit=32, ttl_dns_cache=300, ssl=self._ssl),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError("DingTalkClient.start() has not been called")
        return self._session

    # ------------------------------------------------------------------ token

    async def access_token(self) -> str:
        return await self._tokens.get()

    async def _fetch_token(self) -> tuple[str, float]:
        data = await self._request("POST", f"{self.api_base}/v1.0/oauth2/accessToken", "oauth2/accessToken",
                                   body={"appKey": self.app_key, "appSecret": self._secret})
        value = data.get("accessToken")
        if not isinstance(value, str) or not value:
            raise DingTalkTransportError("oauth2/accessToken", "answer has no accessToken")
        expires_in = float(data.get("expireIn") or 7200)
        log.info("DingTalk access token refreshed (valid for %ss)", int(expires_in))
        return value, expires_in

    def invalidate_token(self, value: str) -> None:
        self._tokens.invalidate(value)

    # ------------------------------------------------------------------ calls

    async def api(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A metered api.dingtalk.com call; an invalid-token answer refreshes and tries once more."""
        url = f"{self.api_base}{path}"
        for attempt in (1, 2):
            token = await self.access_token()
            await self._count(path)
            try:
                return await self._request(method, url, path, body=body, headers={"x-acs-dingtalk-access-token": token})
            except DingTalkApiError as exc:
                if not exc.token_rejected or attempt == 2:
                    raise
                log.warning("DingTalk %s: token rejected (%s); fetching a new one", path, exc.code)
                self.invalidate_token(token)
        raise AssertionError("unreachable")

    async def oapi(
        self,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any]:
        """A metered oapi.dingtalk.com POST; the token goes in the query."""
        url = f"{self.oapi_base}/{path}"
        for attempt in (1, 2):
            token = await self.access_token()
            await self._count(path)
            try:
                return await self._request("POST", url, path, params={**(params or {}), "access_token": token},
                                           body=body, data=form() if form else None)
            except DingTalkApiError as exc:
                if not exc.token_rejected or attempt == 2:
                    raise
                self.invalidate_token(token)
        raise AssertionError("unreachable")

    async def _count(self, api: str) -> None:
        if self._meter is not None:
            try:
                await self._meter(api)
            except Exception:  # counting must never stop a message
                log.exception("DingTalk API usage could not be counted")

    async def _request(
        self,
        method: str,
        url: str,
        api: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        require_https(url, api)
        payload = json.dumps(body, ensure_ascii=False).encode() if body is not None else data
        all_headers = dict(headers or {})
        if body is not None:
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            async with self.session.request(method, url, params=params, data=payload, headers=all_headers,
                                            allow_redirects=False) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError as exc:
            raise DingTalkTransportError(api, "timed out") from exc
        except aiohttp.ClientError as exc:
            raise DingTalkTransportError(api, client_error_text(exc)) from None
        return decode(api, status, raw)

    # ------------------------------------------------------------------ robot messages (metered)

    async def send_to_users(self, user_ids: list[str], msg_key: str, msg_param: dict[str, Any]) -> dict[str, Any]:
        return await self.api("POST", "/v1.0/robot/oToMessages/batchSend", {
            "robotCode": self.robot_code, "userIds": user_ids, "msgKey": msg_key,
            "msgParam": json.dumps(msg_param, ensure_ascii=False),
        })

    async def send_to_group(self, open_conversation_id: str, msg_key: str, msg_param: dict[str, Any]) -> dict[str, Any]:
        return await self.api("POST", "/v1.0/robot/groupMessages/send", {
            "robotCode": self.robot_code, "openConversationId": open_conversation_id, "msgKey": msg_key,
            "msgParam": json.dumps(msg_param, ensure_ascii=False),
        })

    async def upload_media(self, kind: str, filename: str, data: bytes, content_type: str) -> str:
        def form() -> aiohttp.FormData:
            safe = "".join(ch for ch in filename if ch >= " " and ch not in '"\\\x7f').strip() or "file"
            built = aiohttp.FormData(quote_fields=False)
            built.add_field("media", data, filename=safe[:128], content_type=content_type)
            return built

        answer = await self.oapi("media/upload", params={"type": kind}, form=form)
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise DingTalkTransportError("media/upload", "answer has no media_id", retryable=False)
        return media_id

    async def download_url(self, download_code: str) -> str:
        answer = await self.api("POST", "/v1.0/robot/messageFiles/download",
                                {"downloadCode": download_code, "robotCode": self.robot_code})
        url = answer.get("downloadUrl")
        if not isinstance(url, str) or not url:
            raise DingTalkTransportError("messageFiles/download", "answer has no downloadUrl", retryable=False)
        return url

    async def fetch(self, url: str, *, max_bytes: int) -> bytes:
        """The bytes behind a temporary download URL (not metered, no token), at most ``max_bytes``."""
        api = "download"
        require_https(url, api)
        try:
            async with self.session.get(url, allow_redirects=False) as resp:
                if resp.status >= 400:
                    raise DingTalkTransportError(api, f"HTTP {resp.status}", retryable=status_is_retryable(resp.status))
                declared = resp.content_length
                if declared is not None and declared > max_bytes:
                    raise MediaTooLarge(declared, max_bytes)
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(65_536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge(size, max_bytes)
                    chunks.append(chunk)
        except TimeoutError as exc:
            raise DingTalkTransportError(api, "timed out") from exc
        except aiohttp.ClientError as exc:
            raise DingTalkTransportError(api, client_error_text(exc)) from None
        return b"".join(chunks)

    # ------------------------------------------------------------------ interactive cards (metered)

    async def create_and_deliver_card(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.api("POST", "/v1.0/card/instances/createAndDeliver", body)

    async def update_card(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.api("PUT", "/v1.0/card/instances", body)

    # ------------------------------------------------------------------ webhooks (not metered)

    async def send_session_webhook(self, url: str, message: dict[str, Any]) -> dict[str, Any]:
        """Reply within a conversation through the webhook DingTalk handed over with a message."""
        return await self._request("POST", url, "sessionWebhook", body=message)

    async def send_custom_robot(self, access_token: str, secret: str, message: dict[str, Any]) -> dict[str, Any]:
        """A custom group robot (自定义机器人) with 加签 security: timestamp and signature in the query."""
        timestamp = str(int(time.time() * 1000))
        params = {"access_token": access_token, "timestamp": timestamp, "sign": sign(secret, timestamp)}
        return await self._request("POST", f"{self.oapi_base}/robot/send", "robot/send", params=params, body=message)

    # ------------------------------------------------------------------ Stream mode (not metered)

    async def open_stream(self, topics: list[str], *, ua: str = "pacebot/1") -> StreamTicket:
        answer = await self._request("POST", f"{self.api_base}/v1.0/gateway/connections/open", "gateway/open", body={
            "clientId": self.app_key, "clientSecret": self._secret, "ua": ua,
            "subscriptions": [{"type": "CALLBACK", "topic": topic} for topic in topics],
        })
        endpoint, ticket = answer.get("endpoint"), answer.get("ticket")
        if not isinstance(endpoint, str) or not isinstance(ticket, str) or not endpoint or not ticket:
            raise DingTalkTransportError("gateway/open", "answer has no endpoint and ticket")
        if urlsplit(endpoint).scheme != "wss":
            raise DingTalkTransportError("gateway/open", "the Stream endpoint is not wss://", retryable=False)
        return StreamTicket(endpoint, ticket)

    # ------------------------------------------------------------------ directory (metered)

    async def sub_departments(self, dept_id: int) -> list[dict[str, Any]]:
        answer = await self.oapi("topapi/v2/department/listsub", body={"dept_id": dept_id})
        return [d for d in answer.get("result") or [] if isinstance(d, dict)]

    async def department(self, dept_id: int) -> dict[str, Any]:
        answer = await self.oapi("topapi/v2/department/get", body={"dept_id": dept_id})
        result = answer.get("result")
        return result if isinstance(result, dict) else {}

    async def department_users(self, dept_id: int, *, page_size: int = 100) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = []
        cursor = 0
        for _ in range(10_000):  # a bound, should a server keep answering has_more
            answer = await self.oapi("topapi/v2/user/list",
                                     body={"dept_id": dept_id, "cursor": cursor, "size": page_size})
            result = answer.get("result") or {}
            users.extend(u for u in result.get("list") or [] if isinstance(u, dict))
            if not result.get("has_more"):
                break
            cursor = int(result.get("next_cursor") or 0)
        return users


def decode(api: str, status: int, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        data = None
    if isinstance(data, dict) and status >= 400 and data.get("code"):
        raise DingTalkApiError(api, str(data["code"]), str(data.get("message", ""))[:300], status=status)
    if status >= 400:
        raise DingTalkTransportError(api, f"HTTP {status}", retryable=status_is_retryable(status))
    if not isinstance(data, dict):
        raise DingTalkTransportError(api, "answer is not a JSON object")
    errcode = data.get("errcode", 0)
    if errcode:
        raise DingTalkApiError(api, str(errcode), str(data.get("errmsg", ""))[:300])
    return data

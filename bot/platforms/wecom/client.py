"""The WeCom server API over one long-lived aiohttp session: token cache and the calls Pacebot uses.

The access token (``gettoken``) is cached by the shared ``TokenCache`` (refreshed before it
expires; concurrent callers share one fetch). A call answered with a token error (40001, 40014,
42001) drops that token, fetches a new one and is tried once more.

Failures surface as ``WeComApiError`` (WeCom answered with an errcode) or ``WeComTransportError``
(timeout, connection error, HTTP status); both say whether trying again later can help. Access
tokens, secrets and robot keys never appear in logs or exception messages.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.platforms.shared.errors import RemoteError, client_error_text, status_is_retryable
from bot.platforms.shared.tokens import TokenCache

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid credential / invalid token / expired
RETRYABLE_ERRORS = frozenset({-1, 45009, 45033})  # system busy / frequency limit / concurrency limit
RETRY_AFTER = {45009: 60.0, 45033: 5.0}


class WeComError(RemoteError):
    pass


class WeComApiError(WeComError):
    """WeCom answered with a non-zero errcode."""

    def __init__(self, api: str, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeCom {api}: errcode {errcode}: {errmsg}")
        self.api = api
        self.errcode = errcode
        self.errmsg = errmsg
        # A token error reaching here outlasted one refresh (the call already fetched a new token and
        # tried again): the outbox retries it with back-off. One from gettoken itself is a wrong secret.
        self.retryable = errcode in RETRYABLE_ERRORS or (errcode in TOKEN_ERRORS and api != "gettoken")
        self.retry_after = RETRY_AFTER.get(errcode)


class WeComTransportError(WeComError):
    """No usable answer: timeout, connection failure or an HTTP error status."""

    def __init__(self, api: str, detail: str, *, retryable: bool = True) -> None:
        super().__init__(f"WeCom {api}: {detail}")
        self.api = api
        self.retryable = retryable


class MediaTooLarge(WeComError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"media is larger than {limit} bytes ({size or 'unknown'} bytes)")


@dataclass(frozen=True)
class Download:
    data: bytes
    filename: str
    content_type: str


class WeComClient:
    def __init__(
        self,
        *,
        api_base: str,
        corp_id: str,
        secret: str,
        agent_id: int,
        timeout: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._monotonic = monotonic
        self._session: aiohttp.ClientSession | None = None
        self._tokens = TokenCache(self._fetch_token, platform="wecom", monotonic=monotonic)

    @property
    def token_fetches(self) -> int:
        """For tests and support: how often gettoken was called."""
        return self._tokens.fetches

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"User-Agent": "Pacebot"},
                connector=aiohttp.TCPConnector(limit=32, ttl_dns_cache=300),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError("WeComClient.start() has not been called")
        return self._session

    # ------------------------------------------------------------------ token

    async def access_token(self) -> str:
        return await self._tokens.get()

    async def _fetch_token(self) -> tuple[str, float]:
        data = await self._request(
            "GET", "gettoken", "gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret}
        )
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise WeComTransportError("gettoken", "answer has no access_token", retryable=True)
        expires_in = float(data.get("expires_in") or 7200)
        log.info("WeCom access token refreshed (valid for %ss)", int(expires_in))
        return value, expires_in

    def invalidate_token(self, value: str) -> None:
        """Forget ``value`` (and only it: a newer token fetched meanwhile stays)."""
        self._tokens.invalidate(value)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any]:
        """An authenticated API call; token errors refresh the token and try once more."""
        for attempt in (1, 2):
            token = await self.access_token()
            try:
                return await self._request(
                    method, path, path, params={**(params or {}), "access_token": token}, body=body,
                    data=form() if form else None,
                )
            except WeComApiError as exc:
                if exc.errcode not in TOKEN_ERRORS or attempt == 2:
                    raise
                log.warning("WeCom %s: token rejected (errcode %s); fetching a new one", path, exc.errcode)
                self.invalidate_token(token)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ HTTP

    async def _request(
        self,
        method: str,
        path: str,
        api: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        url = f"{self.api_base}/cgi-bin/{path}"
        payload = json.dumps(body, ensure_ascii=False).encode() if body is not None else data
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else None
        try:
            async with self.session.request(method, url, params=params, data=payload, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError as exc:
            raise WeComTransportError(api, "timed out") from exc
        except aiohttp.ClientError as exc:
            raise WeComTransportError(api, _client_error(exc)) from None
        return _decode(api, status, raw)

    # ------------------------------------------------------------------ app messages

    async def send_message(self, message: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "message/send", body={**message, "agentid": self.agent_id})

    async def update_template_card(self, update: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "message/update_template_card", body={**update, "agentid": self.agent_id})

    async def send_appchat(self, message: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "appchat/send", body=message)

    async def upload_media(self, kind: str, filename: str, data: bytes, content_type: str) -> str:
        """Upload temporary media (valid three days); returns its media_id."""

        def form() -> aiohttp.FormData:
            return _media_form(filename, data, content_type)

        answer = await self.call("POST", "media/upload", params={"type": kind}, form=form)
        return _media_id("media/upload", answer)

    async def download_media(self, media_id: str, *, max_bytes: int) -> Download:
        for attempt in (1, 2):
            token = await self.access_token()
            try:
                return await self._download(media_id, token, max_bytes)
            except WeComApiError as exc:
                if exc.errcode not in TOKEN_ERRORS or attempt == 2:
                    raise
                self.invalidate_token(token)
        raise AssertionError("unreachable")

    async def _download(self, media_id: str, token: str, max_bytes: int) -> Download:
        url = f"{self.api_base}/cgi-bin/media/get"
        try:
            async with self.session.get(url, params={"access_token": token, "media_id": media_id}) as resp:
                ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if resp.status >= 400:
                    _decode("media/get", resp.status, await resp.content.read(65_536))
                declared = resp.content_length
                if declared is not None and declared > max_bytes:
                    raise MediaTooLarge(declared, max_bytes)
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(65_536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge(size, max_bytes)
                    chunks.append(chunk)
                disposition = resp.content_disposition
                filename = (disposition.filename if disposition else None) or ""
        except TimeoutError as exc:
            raise WeComTransportError("media/get", "timed out") from exc
        except aiohttp.ClientError as exc:
            raise WeComTransportError("media/get", _client_error(exc)) from None
        data = b"".join(chunks)
        if ctype in ("application/json", "text/plain") and len(data) < 4096 and data.lstrip().startswith(b"{"):
            # Errors come back as a small JSON document instead of the file (a .txt file does not
            # look like {"errcode": ...}).
            try:
                answer = json.loads(data)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and "errcode" in answer:
                _decode("media/get", 200, data)
                raise WeComTransportError("media/get", "answered with JSON instead of the file", retryable=False)
        return Download(data, filename, ctype)

    # ------------------------------------------------------------------ group robots (no token)

    async def send_robot(self, key: str, message: dict[str, Any]) -> dict[str, Any]:
        return await self._request("POST", "webhook/send", "webhook/send", params={"key": key}, body=message)

    async def upload_robot_file(self, key: str, filename: str, data: bytes) -> str:
        answer = await self._request(
            "POST", "webhook/upload_media", "webhook/upload_media", params={"key": key, "type": "file"},
            data=_media_form(filename, data, "application/octet-stream"),
        )
        return _media_id("webhook/upload_media", answer)

    # ------------------------------------------------------------------ directory

    async def departments(self) -> list[dict[str, Any]]:
        answer = await self.call("GET", "department/list")
        return list(answer.get("department") or [])

    async def department_users(self, department_id: int) -> list[dict[str, Any]]:
        answer = await self.call("GET", "user/list", params={"department_id": department_id})
        return list(answer.get("userlist") or [])


def _client_error(exc: aiohttp.ClientError) -> str:
    # Without the request URL: its query carries the access token, the secret or a robot key.
    return client_error_text(exc)


def _decode(api: str, status: int, raw: bytes) -> dict[str, Any]:
    if status >= 500:
        raise WeComTransportError(api, f"HTTP {status}")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        data = None
    if status >= 400 and not (isinstance(data, dict) and "errcode" in data):
        raise WeComTransportError(api, f"HTTP {status}", retryable=status_is_retryable(status))
    if not isinstance(data, dict):
        raise WeComTransportError(api, "answer is not a JSON object")
    errcode = data.get("errcode", 0)
    if errcode:
        raise WeComApiError(api, int(errcode), str(data.get("errmsg", ""))[:300])
    return data


def _media_form(filename: str, data: bytes, content_type: str) -> aiohttp.FormData:
    # WeCom shows the file name as sent: raw UTF-8 (percent-encoding would show up literally).
    safe = "".join(ch for ch in filename if ch >= " " and ch not in '"\\\x7f').strip() or "file"
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("media", data, filename=safe[:128], content_type=content_type)
    return form


def _media_id(api: str, answer: dict[str, Any]) -> str:
    media_id = answer.get("media_id")
    if not isinstance(media_id, str) or not media_id:
        raise WeComTransportError(api, "answer has no media_id", retryable=False)
    return media_id

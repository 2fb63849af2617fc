"""DingTalk Stream mode: one outgoing WebSocket instead of a public callback URL.

Written on aiohttp rather than with the ``dingtalk-stream`` package, which calls blocking
``requests`` on the event loop, swallows cancellation and spawns a task per frame without bound.

One connection's life:

  1. ``POST /v1.0/gateway/connections/open`` (clientId, clientSecret, subscriptions) → a wss
     endpoint and a one-time ticket valid 90 s;
  2. WebSocket to ``endpoint?ticket=…``; aiohttp sends a ping every ``heartbeat`` seconds and the
     connection is dropped when nothing arrives for ``idle_timeout`` seconds (inactivity watchdog);
  3. frames ``{specVersion, type: SYSTEM|EVENT|CALLBACK, headers{topic, messageId, …}, data}``:
     SYSTEM ``ping`` is echoed; SYSTEM ``disconnect`` (the server closes ~10 s later) reconnects
     at once with a fresh ticket; CALLBACK frames of a subscribed topic are handed to ``handle``
     and ACKed as soon as it returns — that is, once the event is stored. A frame whose handling
     fails is not ACKed, so DingTalk delivers it again; the inbox's de-duplication on msgId absorbs
     every redelivery, early or late.

Work is bounded: at most ``max_inflight`` frames are being handled at once; beyond that the loop
stops reading (WebSocket back-pressure) instead of piling up tasks. Any failure — a refused
ticket, a dropped socket, a timeout — reconnects after a back-off of 1, 2, 4 … 60 seconds with
jitter (reset after a healthy connection). ``stop`` cancels the loop, lets frames being stored
finish (bounded), and closes the socket; cancellation is never swallowed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.platforms.dingtalk.client import DingTalkClient, DingTalkError
from bot.platforms.dingtalk.parse import MalformedPayload

log = logging.getLogger(__name__)

BOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
TOPICS = [BOT_TOPIC, CARD_TOPIC]

# (topic, data) → None once stored; raises to leave the frame un-ACKed.
Handle = Callable[[str, dict[str, Any]], Awaitable[None]]


def backoff_delay(failures: int, base: float, ceiling: float, jitter: float) -> float:
    """Seconds before reconnect number ``failures + 1``: base · 2ⁿ up to ``ceiling``, scaled by a
    jitter in [0.5, 1) (``jitter`` in [0, 1)) so replicas do not reconnect in step, never below base."""
    delay = min(ceiling, base * float(2 ** min(failures, 16)))
    return max(base, delay * (0.5 + jitter / 2))


class StreamClient:
    def __init__(
        self,
        client: DingTalkClient,
        handle: Handle,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_inflight: int = 64,
        heartbeat: float = 30.0,
        idle_timeout: float = 90.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        healthy_after: float = 60.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.handle = handle
        self._ssl = ssl_context or ssl.create_default_context()
        self._slots = asyncio.Semaphore(max_inflight)
        self.heartbeat = heartbeat
        self.idle_timeout = idle_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.healthy_after = healthy_after
        self._rand = rand
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()
        self.connections = 0  # successful WebSocket handshakes, for tests and logs
        self.acks = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="dingtalk-stream")

    async def stop(self, *, drain_seconds: float = 5.0) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._inflight:
            # Frames being stored finish (their events are committed); their ACKs may not go out,
            # and DingTalk's redelivery is absorbed by the inbox.
            await asyncio.wait(self._inflight, timeout=drain_seconds)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self._connect_once()
                reason = "closed by the server"
            except asyncio.CancelledError:
                raise
            except (DingTalkError, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug must not end the connection for good
                log.exception("DingTalk Stream connection failed unexpectedly")
                reason = f"{type(exc).__name__}"
            finally:
                self.connected.clear()
            if loop.time() - started >= self.healthy_after:
                failures = 0
            delay = backoff_delay(failures, self.backoff_base, self.backoff_max, self._rand())
            failures += 1
            log.warning("DingTalk Stream connection ended (%s); reconnecting in %.1fs", reason, delay)
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ one connection

    def _ws_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No total timeout: the socket lives for hours; the watchdog below bounds silence.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=2),
            )
        return self._session

    async def _connect_once(self) -> None:
        ticket = await self.client.open_stream(TOPICS)
        url = f"{ticket.endpoint}{'&' if '?' in ticket.endpoint else '?'}ticket={quote(ticket.ticket, safe='')}"
        timeout = aiohttp.ClientWSTimeout(ws_receive=self.idle_timeout, ws_close=5.0)
        async with self._ws_session().ws_connect(url, heartbeat=self.heartbeat, timeout=timeout,
                                                 max_msg_size=2 * 1024 * 1024) as ws:
            self.connections += 1
            self.connected.set()
            log.info("DingTalk Stream connected (connection %s)", self.connections)
            while True:
                await self._slots.acquire()  # back-pressure: no more reads than free slots
                try:
                    msg = await ws.receive()
                except BaseException:
                    self._slots.release()
                    raise
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    self._slots.release()
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.ERROR):
                        return
                    continue
                if not self._frame(ws, msg.data):
                    return  # disconnect announced: reconnect now with a fresh ticket

    def _frame(self, ws: aiohttp.ClientWebSocketResponse, raw: str) -> bool:
        """Dispatch one frame; False when the server announced it will disconnect."""
        try:
            frame = json.loads(raw)
            if not isinstance(frame, dict):
                raise ValueError("not an object")
            headers = frame.get("headers") or {}
            if not isinstance(headers, dict):
                raise ValueError("headers is not an object")
        except (ValueError, RecursionError) as exc:
            self._slots.release()
            log.warning("DingTalk Stream frame ignored: not a JSON frame (%s)", str(exc)[:80])
            return True
        kind, topic = frame.get("type"), str(headers.get("topic") or "")
        if kind == "SYSTEM":
            self._slots.release()
            if topic == "disconnect":
                log.info("DingTalk Stream: the server announced a disconnect; reconnecting")
                return False
            if topic == "ping":
                self._spawn(self._ack(ws, headers, frame.get("data")))
            else:
                log.info("DingTalk Stream: SYSTEM %s ignored", topic[:64])
            return True
        if kind == "CALLBACK" and topic in TOPICS:
            self._spawn(self._callback(ws, topic, headers, frame.get("data")), holds_slot=True)
            return True
        self._slots.release()
        log.warning("DingTalk Stream: %s frame for unknown topic %r acknowledged and ignored", kind, topic[:64])
        self._spawn(self._ack(ws, headers, json.dumps({"response": None}), code=404, message="unknown topic"))
        return True

    def _spawn(self, work: Awaitable[None], *, holds_slot: bool = False) -> None:
        async def run() -> None:
            try:
                await work
            finally:
                if holds_slot:
                    self._slots.release()

        task = asyncio.get_running_loop().create_task(run())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _callback(self, ws: aiohttp.ClientWebSocketResponse, topic: str, headers: dict[str, Any], data: Any) -> None:
        try:
            body = json.loads(data) if isinstance(data, str) else data
            if not isinstance(body, dict):
                raise MalformedPayload("data is not a JSON object")
            await self.handle(topic, body)
        except (MalformedPayload, ValueError) as exc:
            # It will never parse: acknowledge, so it is not delivered again and again.
            log.warning("DingTalk Stream %s frame %s refused: %s", topic, headers.get("messageId"), exc)
        except Exception:
            log.exception("DingTalk Stream frame %s could not be stored; left for redelivery", headers.get("messageId"))
            return
        await self._ack(ws, headers, json.dumps({"response": None}))

    async def _ack(self, ws: aiohttp.ClientWebSocketResponse, headers: dict[str, Any], data: Any,
                   *, code: int = 200, message: str = "OK") -> None:
        reply = {
            "code": code,
            "headers": {"messageId": str(headers.get("messageId") or ""), "contentType": "application/json"},
            "message": message,
            "data": data if isinstance(data, str) else json.dumps(data),
        }
        if ws.closed:
            return
        try:
            await ws.send_str(json.dumps(reply))
            self.acks += 1
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            log.info("DingTalk Stream ACK of %s not sent (%s); DingTalk will redeliver", headers.get("messageId"), exc)

"""An unsigned flood: refused cheaply (from the query string or headers, before the body where it
can be), counted, logged at a bounded rate, held back by address, and never at a signed request's
expense."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import RUNTIME, create_app
from bot.clock import FrozenClock, ShiftableClock
from bot.observability import METRICS, RefusalLog
from bot.platforms.shared import refusals as refusal_module
from bot.platforms.shared.refusals import SIGNED, Decision, HeldBudget, RefusalGuard
from bot.platforms.wecom import parse
from bot.platforms.wecom.crypto import WeComCrypto
from storage.models import InboxItem
from tests.conftest import START, make_config
from tests.dingtalk_support import app_config as dingtalk_app_config
from tests.fakes import dingtalk as dingtalk_fakes
from tests.fakes import wecom as fakes
from tests.wecom_support import inbox_only_app

PATH = "/wecom/callback"
crypto = fakes.default_crypto()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Content:
    def __init__(self, eof: bool) -> None:
        self.eof = eof

    def is_eof(self) -> bool:
        return self.eof


class StubRequest(dict[Any, Any]):
    """What ``RefusalGuard.settle`` reads of a request."""

    def __init__(self, remote: str, *, eof: bool = True, content_length: int | None = 0) -> None:
        super().__init__()
        self.remote = remote
        self.content = Content(eof)
        self.content_length = content_length


class StubRefusal:
    def __init__(self) -> None:
        self.closed = False

    def force_close(self) -> None:
        self.closed = True


def held(scope: str) -> float:
    return METRICS.sample("pacebot_refusals_held_total", {"scope": scope})


def refused(platform: str, reason: str) -> float:
    return METRICS.sample("pacebot_callbacks_refused_total", {"platform": platform, "reason": reason})


# ---------------------------------------------------------------------- the guard itself


def test_an_address_is_refused_at_once_for_a_burst_then_held_until_its_allowance_refills():
    clock = Clock()
    guard = RefusalGuard("t", burst=3, per_second=2.0, clock=clock)
    assert [guard.decide("10.0.0.1") for _ in range(4)] == [Decision.ANSWER] * 3 + [Decision.HOLD]
    assert guard.decide("10.0.0.2") is Decision.ANSWER  # another address has its own allowance
    clock.now += 0.5  # one refusal's worth back
    assert guard.decide("10.0.0.1") is Decision.ANSWER
    assert guard.decide("10.0.0.1") is Decision.HOLD
    clock.now += 60  # refilled, but never beyond the burst
    assert [guard.decide("10.0.0.1") for _ in range(4)] == [Decision.ANSWER] * 3 + [Decision.HOLD]


async def test_refusals_held_at_once_are_bounded_across_routes_and_beyond_that_close_their_connection():
    budget = HeldBudget(limit=3)
    wecom = RefusalGuard("wecom", burst=0, hold_seconds=3600, budget=budget, clock=Clock())
    feedback = RefusalGuard("feedback", burst=0, hold_seconds=3600, budget=budget, clock=Clock())
    waiting = [asyncio.create_task(guard.settle(StubRequest(a), StubRefusal()))  # type: ignore[arg-type]
               for guard, a in ((wecom, "a"), (wecom, "a"), (feedback, "b"))]
    await asyncio.sleep(0)
    assert (wecom.held("a"), feedback.held("b"), budget.waiting) == (2, 1, 3)
    assert wecom.decide("c") is Decision.CLOSE
    refusal = StubRefusal()
    await asyncio.wait_for(wecom.settle(StubRequest("c"), refusal), 5)  # type: ignore[arg-type]
    assert refusal.closed
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert (wecom.held("a"), feedback.held("b"), budget.waiting) == (0, 0, 0)
    assert wecom.decide("c") is Decision.HOLD


def test_the_budget_leaves_most_file_descriptors_to_new_connections():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = HeldBudget().limit
    assert 16 <= limit <= 1024
    if soft != resource.RLIM_INFINITY:
        assert limit <= max(16, soft // 4)


async def test_a_signed_request_is_never_held_and_spends_no_allowance():
    guard = RefusalGuard("t", burst=1, hold_seconds=3600, budget=HeldBudget(4), clock=Clock())
    signed = StubRequest("10.0.0.1")
    signed[SIGNED] = True
    for _ in range(5):
        await asyncio.wait_for(guard.settle(signed, StubRefusal()), 5)  # type: ignore[arg-type]
    assert guard.decide("10.0.0.1") is Decision.ANSWER


async def test_a_refusal_leaving_a_large_body_unread_closes_its_connection():
    guard = RefusalGuard("t", clock=Clock())
    cases = [((True, 10), False), ((False, 1000), False), ((False, 1_000_000), True), ((False, None), True)]
    for (eof, length), closes in cases:
        refusal = StubRefusal()
        await guard.settle(StubRequest("x", eof=eof, content_length=length), refusal)  # type: ignore[arg-type]
        assert refusal.closed is closes, (eof, length)


def test_the_addresses_remembered_are_bounded():
    clock = Clock()
    guard = RefusalGuard("t", burst=2, clock=clock)
    guard.MAX_ADDRESSES = 10
    for i in range(100):
        guard.decide(f"10.0.{i}.1")
        guard.decide(f"10.0.{i}.1")
    assert len(guard._allowance) <= 10


# ---------------------------------------------------------------------- WeCom


@pytest.fixture
async def wecom_client(aiohttp_client: Any, tmp_path: Path) -> Any:
    return await aiohttp_client(inbox_only_app(tmp_path))


def route_guard(client: Any, path: str) -> RefusalGuard:
    for route in client.server.app.router.routes():
        if route.method == "POST" and route.resource.canonical == path:
            guard = route.handler.__self__.guard
            assert isinstance(guard, RefusalGuard)
            return guard
    raise AssertionError(path)


@pytest.fixture
def fresh_refusal_log(monkeypatch: pytest.MonkeyPatch) -> RefusalLog:
    """A refusal log with nothing logged yet (the process-wide one remembers earlier tests)."""
    log = RefusalLog(logging.getLogger("pacebot.refused"), interval=3600)
    for module in ("bot.platforms.wecom.routes", "bot.platforms.dingtalk.routes", "bot.webhooks.feedback"):
        monkeypatch.setattr(f"{module}.refusals", log)
    monkeypatch.setattr(refusal_module, "refusals", log)
    return log


async def inbox_count(client: Any) -> int:
    async with client.server.app[RUNTIME].sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(InboxItem)) or 0)


class Trickle:
    """A request body whose first part is sent at once and the rest only when released."""

    def __init__(self, head: bytes, tail: bytes = b" " * 200_000) -> None:
        self.head, self.tail = head, tail
        self.release = asyncio.Event()
        self.tail_sent = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        await self.release.wait()
        self.tail_sent = True
        yield self.tail


def fresh(**params: str) -> dict[str, str]:
    return {"msg_signature": "0" * 40, "timestamp": str(int(time.time())), "nonce": "1", **params}


QUERY_REFUSALS = [
    ({}, 400, "missing_params"),
    (fresh(nonce=""), 400, "missing_params"),
    (fresh(msg_signature="z" * 40), 403, "bad_signature"),
    (fresh(msg_signature="0" * 39), 403, "bad_signature"),
    (fresh(msg_signature="0" * 41), 403, "bad_signature"),
    (fresh(timestamp="12a"), 400, "bad_timestamp"),
    (fresh(timestamp="-5"), 400, "bad_timestamp"),
    (fresh(timestamp="١٢٣"), 400, "bad_timestamp"),  # digits, but not ASCII ones
    (fresh(timestamp=str(int(time.time()) - 90 * 86400)), 403, "stale_timestamp"),
    (fresh(timestamp=str(int(time.time()) + 2 * 86400)), 403, "stale_timestamp"),
]


@pytest.mark.parametrize(("params", "status", "reason"), QUERY_REFUSALS)
async def test_a_callback_is_refused_from_its_query_string_before_its_body_is_read(
    wecom_client, fresh_refusal_log, params, status, reason
):
    before = refused("wecom", reason)
    body = Trickle(b"<xml><Encrypt>")
    resp = await asyncio.wait_for(wecom_client.post(PATH, params=params, data=body), 30)
    assert resp.status == status
    assert resp.headers.get("Connection", "").lower() == "close"  # not read to its end, not drained
    assert not body.tail_sent
    body.release.set()
    assert refused("wecom", reason) - before == 1
    assert await inbox_count(wecom_client) == 0


async def test_a_wrong_signature_is_refused_as_soon_as_encrypt_has_arrived(wecom_client, fresh_refusal_log):
    params, envelope = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", "m-early"))
    head, _, rest = envelope.partition(b"</Encrypt>")
    before = refused("wecom", "bad_signature")
    body = Trickle(head + b"</Encrypt>", rest)
    resp = await asyncio.wait_for(wecom_client.post(PATH, params={**params, "msg_signature": "f" * 40}, data=body), 30)
    assert resp.status == 403
    assert not body.tail_sent
    body.release.set()
    assert refused("wecom", "bad_signature") - before == 1
    assert await inbox_count(wecom_client) == 0


async def test_a_signed_callback_arriving_in_pieces_is_accepted(wecom_client):
    params, envelope = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", "m-pieces"))
    head, _, rest = envelope.partition(b"</Encrypt>")
    body = Trickle(head + b"</Encrypt>", rest)
    body.release.set()
    resp = await wecom_client.post(PATH, params=params, data=body)
    assert resp.status == 200
    assert await inbox_count(wecom_client) == 1


async def test_a_flood_of_refusals_is_logged_once_per_reason_and_counted_each_time(
    wecom_client, fresh_refusal_log, caplog
):
    route_guard(wecom_client, PATH).hold_seconds = 0
    before = refused("wecom", "stale_timestamp")
    stale = fresh(timestamp=str(int(time.time()) - 90 * 86400))
    with caplog.at_level(logging.INFO):
        for _ in range(40):
            assert (await wecom_client.post(PATH, params=stale, data=b"<xml/>")).status == 403
    assert refused("wecom", "stale_timestamp") - before == 40
    lines = [r for r in caplog.records if r.name == "pacebot.refused"]
    assert [r.getMessage().split(":")[0] for r in lines] == [
        "WeCom callback from 127.0.0.1 refused with 403",
        "wecom refused more than 20 times at once from 127.0.0.1",  # once, when holding begins
    ]
    assert not [r for r in caplog.records if r.name.startswith("bot.platforms")]  # nothing per request


async def test_a_flood_is_held_back_but_signed_callbacks_from_the_same_address_never_are(wecom_client):
    guard = route_guard(wecom_client, PATH)
    guard.clock = Clock()  # no refill while the test runs
    guard.hold_seconds = 0
    before = held("wecom")
    for _ in range(guard.burst + 5):
        assert (await wecom_client.post(PATH, params=fresh(), data=b"<xml><Encrypt>AAAA</Encrypt></xml>")).status == 403
    assert held("wecom") - before == 5
    # The address's allowance is spent: a signed callback from it is still answered and stored ...
    params, envelope = fakes.encrypted_callback(crypto, fakes.text_xml("LiMing", "你好", "m-signed"))
    assert (await wecom_client.post(PATH, params=params, data=envelope)).status == 200
    assert await inbox_count(wecom_client) == 1
    # ... and one that is signed but refused later (addressed to another corp) is not held either.
    other = WeComCrypto(fakes.TOKEN, fakes.AES_KEY, "another-corp")
    params, envelope = fakes.encrypted_callback(other, fakes.text_xml("LiMing", "你好", "m-other"))
    assert (await wecom_client.post(PATH, params=params, data=envelope)).status == 403
    assert held("wecom") - before == 5
    assert await inbox_count(wecom_client) == 1


# ---------------------------------------------------------------------- DingTalk HTTP callbacks


async def test_dingtalk_refusals_are_judged_from_the_headers_counted_and_logged_once(
    aiohttp_client, tmp_path, fresh_refusal_log, caplog
):
    config = dingtalk_app_config(tmp_path, "https://127.0.0.1:9", mode="http")
    client = await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START)), workers=False))
    route_guard(client, "/dingtalk/callback").hold_seconds = 0
    before = refused("dingtalk", "bad_signature")
    body = Trickle(b'{"msgId": "m-1"')
    resp = await asyncio.wait_for(client.post("/dingtalk/callback", data=body, headers={"sign": "AAAA"}), 30)
    assert resp.status == 403
    assert resp.headers.get("Connection", "").lower() == "close"
    assert not body.tail_sent
    body.release.set()
    with caplog.at_level(logging.INFO):
        for _ in range(30):
            resp = await client.post("/dingtalk/callback", data=b"{}", headers={"timestamp": "1", "sign": "x"})
            assert resp.status == 403
            assert json.loads(await resp.text()) == {"error": "Forbidden"}
    assert refused("dingtalk", "bad_signature") - before == 31
    lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert [r.getMessage().split(":")[0] for r in lines] == [
        "DingTalk callback from 127.0.0.1 refused with 403",
        "dingtalk refused more than 20 times at once from 127.0.0.1",
    ]
    assert {r.name for r in lines} == {"pacebot.refused"}
    async with client.server.app[RUNTIME].sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboxItem)) == 0


async def test_a_signed_dingtalk_callback_is_accepted_while_its_address_is_held_back(aiohttp_client, tmp_path):
    config = dingtalk_app_config(tmp_path, "https://127.0.0.1:9", mode="http")
    client = await aiohttp_client(create_app(config, clock=ShiftableClock(base=FrozenClock(START)), workers=False))
    guard = route_guard(client, "/dingtalk/callback")
    guard.clock, guard.hold_seconds = Clock(), 0
    before = held("dingtalk")
    for _ in range(guard.burst + 2):
        assert (await client.post("/dingtalk/callback", data=b"{}", headers={"sign": "x"})).status == 403
    assert held("dingtalk") - before == 2
    message = json.dumps(dingtalk_fakes.bot_message("0110", "m-1", text="/帮助")).encode()
    resp = await client.post("/dingtalk/callback", data=message, headers=dingtalk_fakes.signed_headers())
    assert resp.status == 200
    assert held("dingtalk") - before == 2
    async with client.server.app[RUNTIME].sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboxItem)) == 1


# ---------------------------------------------------------------------- the feedback webhook

SECRET = "feedback-secret-for-tests"


async def test_feedback_without_the_secret_is_refused_before_its_body_is_read_and_held_back_by_address(
    aiohttp_client, tmp_path, fresh_refusal_log, caplog
):
    client = await aiohttp_client(create_app(make_config(tmp_path, feedback={"secret": SECRET}), workers=False))
    guard = route_guard(client, "/feedback")
    guard.clock, guard.hold_seconds = Clock(), 0
    before_held, before = held("feedback"), refused("feedback", "bad_secret")
    body = Trickle(b'{"id": "f1"')
    resp = await asyncio.wait_for(client.post("/feedback", data=body, headers={"X-Pacebot-Secret": "wrong"}), 30)
    assert resp.status == 403
    assert resp.headers.get("Connection", "").lower() == "close"
    assert not body.tail_sent
    body.release.set()
    with caplog.at_level(logging.INFO):
        for _ in range(guard.burst + 2):
            resp = await client.post("/feedback", data=b"{}", headers={"X-Pacebot-Secret": "wrong"})
            assert resp.status == 403
    assert refused("feedback", "bad_secret") - before == guard.burst + 3
    assert held("feedback") - before_held == 3
    assert len([r for r in caplog.records if r.name == "pacebot.refused" and "refused with" in r.getMessage()]) == 1
    # Authenticated but refused (no such customer): answered, never held.
    unknown = json.dumps({"id": "f2", "customer": {"id": 999}, "options": ["a"]}).encode()
    resp = await client.post("/feedback", data=unknown, headers={"X-Pacebot-Secret": SECRET})
    assert resp.status == 404
    assert held("feedback") - before_held == 3
    async with client.server.app[RUNTIME].sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboxItem)) == 0


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"<xml><Encrypt>", None),
        (b"<xml><Encrypt>QUJD</Encr", None),
        (b"<xml><Encrypt> QUJD </Encrypt>", "QUJD"),
        (b"<xml><Encrypt><![CDATA[QUJD]]></Encrypt>", "QUJD"),
        (b"<xml><Encrypt>QU<!-- x -->JD</Encrypt>", None),  # not one value: judged when all is in
        (b"<xml><Encrypt>QU<![CDATA[JD]]></Encrypt>", None),
        (b"<xml><Encrypt>QU&#74;D</Encrypt>", None),
    ],
)
def test_encrypt_is_peeked_only_when_it_is_one_plain_value(data, value):
    assert parse.peek_encrypt(data) == value

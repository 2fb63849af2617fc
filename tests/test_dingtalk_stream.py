"""The Stream client on its own against the fake gateway: bounded work, ACK only once stored,
reconnect back-off, and a clean stop."""

from __future__ import annotations

import asyncio

import pytest

from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.stream import BOT_TOPIC, StreamClient, backoff_delay
from tests.dingtalk_support import until
from tests.fakes import dingtalk as fakes


@pytest.fixture
async def fake():
    server = fakes.FakeDingTalk(ack_timeout=0.5)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def client(fake):
    api = DingTalkClient(api_base=fake.base_url, oapi_base=fake.base_url, app_key=fakes.APP_KEY,
                         app_secret=fakes.APP_SECRET, robot_code=fakes.ROBOT_CODE, ssl_context=fakes.tls().client())
    await api.start()
    yield api
    await api.close()


def stream_client(client: DingTalkClient, handle, **kw) -> StreamClient:
    return StreamClient(client, handle, ssl_context=fakes.tls().client(), backoff_base=0.05, backoff_max=0.2, **kw)


@pytest.mark.parametrize(("failures", "jitter", "delay"), [
    (0, 0.0, 1.0), (0, 0.999, 1.0), (1, 0.0, 1.0), (1, 1.0, 2.0), (3, 0.0, 4.0), (3, 1.0, 8.0),
    (6, 1.0, 60.0), (6, 0.0, 30.0), (40, 1.0, 60.0),
])
def test_reconnects_back_off_from_1_to_60_seconds_with_jitter(failures, jitter, delay):
    assert backoff_delay(failures, 1.0, 60.0, jitter) == pytest.approx(delay)


async def test_work_is_bounded_by_max_inflight(client, fake):
    release = asyncio.Event()
    running = 0
    most = 0
    stored: list[str] = []

    async def handle(topic: str, data: dict) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        stored.append(data["msgId"])
        running -= 1

    stream = stream_client(client, handle, max_inflight=2)
    stream.start()
    try:
        await asyncio.wait_for(stream.connected.wait(), 10)
        for i in range(10):
            await fake.push_bot_message(fakes.bot_message("0110", f"b-{i}", text="x"))
        await until(lambda: running == 2)
        await asyncio.sleep(0.2)
        assert running == 2 and fake.acked == []  # nothing ACKed before it is stored
        release.set()
        await until(lambda: len(set(stored)) == 10)
        await until(lambda: not fake.pending)
    finally:
        await stream.stop()
    assert most == 2


async def test_a_frame_that_could_not_be_stored_is_not_acked_and_comes_again(client, fake):
    attempts: list[str] = []

    async def handle(topic: str, data: dict) -> None:
        attempts.append(data["msgId"])
        if len(attempts) == 1:
            raise OSError("database unavailable")

    stream = stream_client(client, handle)
    stream.start()
    try:
        await asyncio.wait_for(stream.connected.wait(), 10)
        message_id = await fake.push_bot_message(fakes.bot_message("0110", "f-1", text="x"))
        await until(lambda: message_id in fake.acked)
    finally:
        await stream.stop()
    assert attempts == ["f-1", "f-1"] and fake.acked == [message_id]


async def test_stop_while_connected_cancels_cleanly_and_closes_the_socket(client, fake):
    async def handle(topic: str, data: dict) -> None:
        return None

    stream = stream_client(client, handle)
    stream.start()
    await asyncio.wait_for(stream.connected.wait(), 10)
    task = stream._task
    await asyncio.wait_for(stream.stop(), 10)
    assert task is not None and task.cancelled()
    await until(lambda: not fake.sockets)
    assert not stream._inflight


async def test_stop_during_the_back_off_returns_at_once(client, fake):
    async def handle(topic: str, data: dict) -> None:
        return None

    fake.refuse_tickets = 1000
    stream = StreamClient(client, handle, ssl_context=fakes.tls().client(), backoff_base=30, backoff_max=60)
    stream.start()
    await until(lambda: len(fake.calls("/v1.0/gateway/connections/open")) >= 1)
    await asyncio.wait_for(stream.stop(), 5)  # cancels the 30 s sleep
    assert stream.connections == 0


async def test_frames_being_stored_finish_when_stopping(client, fake):
    release = asyncio.Event()
    stored: list[str] = []

    async def handle(topic: str, data: dict) -> None:
        await release.wait()
        stored.append(data["msgId"])

    stream = stream_client(client, handle)
    stream.start()
    await asyncio.wait_for(stream.connected.wait(), 10)
    await fake.push(BOT_TOPIC, fakes.bot_message("0110", "s-1", text="x"))
    await until(lambda: len(stream._inflight) == 1)
    stopping = asyncio.create_task(stream.stop())
    await asyncio.sleep(0.1)
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert stored == ["s-1"]

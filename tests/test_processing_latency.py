"""pacebot_inbox_processing_latency_seconds: an inbox item's arrival to the commit that finished it."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.app import create_app
from bot.events import Event, EventKind
from bot.observability import METRICS
from tests.conftest import Console, make_config

NAME = "pacebot_inbox_processing_latency_seconds"


def text_event(member: str, msg_id: str) -> Event:
    return Event(platform="console", platform_msg_id=msg_id, kind=EventKind.TEXT, sender=member,
                 conversation=member, text="你好")


@pytest.fixture
async def runtime(aiohttp_client, tmp_path, clock):
    config = make_config(tmp_path)
    return Console(await aiohttp_client(create_app(config, clock=clock, workers=False))).runtime


def observed(bucket: str | None = None) -> float:
    labels = {"platform": "console"}
    if bucket is None:
        return METRICS.sample(f"{NAME}_count", labels)
    return METRICS.sample(f"{NAME}_bucket", {**labels, "le": bucket})


async def test_each_processed_item_is_observed_once_with_its_time_since_arrival(runtime, clock):
    count, total = observed(), METRICS.sample(f"{NAME}_sum", {"platform": "console"})
    within_5s, within_1s = observed("5.0"), observed("1.0")
    await runtime.inbox.accept(text_event("rep.li", "latency-1"))
    await runtime.inbox.accept(text_event("rep.zhao", "latency-2"))
    clock.set_now(clock.now() + dt.timedelta(seconds=3))

    while await runtime.inbox.process_due():
        pass

    assert observed() == count + 2
    assert METRICS.sample(f"{NAME}_sum", {"platform": "console"}) == pytest.approx(total + 6.0)
    assert observed("5.0") == within_5s + 2
    assert observed("1.0") == within_1s
    # Nothing left to process: nothing more is observed.
    await runtime.inbox.process_due()
    assert observed() == count + 2


async def test_the_histogram_is_exposed_on_metrics(runtime):
    assert f"# TYPE {NAME} histogram".encode() in METRICS.render()

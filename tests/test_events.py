"""An event's JSON form: what the inbox stores before a callback is acknowledged."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, fields

import pytest

from bot.events import Event, EventKind, MediaRef

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
EVENTS = [
    Event(platform="wecom", platform_msg_id="m1", kind=EventKind.TEXT, sender="ZhangSan", conversation="ZhangSan",
          occurred_at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=SHANGHAI), text="华东建材 张总 电话20分钟"),
    Event(platform="dingtalk", platform_msg_id="m2", kind=EventKind.IMAGE, sender="u2", conversation="cid",
          media=MediaRef(filename="a.jpg", mime="image/jpeg", size=123, platform_media_id="@lADP", unavailable=True)),
    Event(platform="wecom", platform_msg_id="m3", kind=EventKind.ACTION, sender="u3", action="pick:7", task_id="pick-1",
          action_values=("a", "b"), response_code="rc", location=(31.2, 121.5)),
    Event(platform="schedule", platform_msg_id="digest:2026-12-01", kind=EventKind.SCHEDULE, job="digest",
          job_args={"as_of": "2026-12-01T09:00:00+08:00", "teams": [1, 2], "nested": {"k": ["v"]}}),
]


def _by_asdict(event: Event) -> dict:
    data = asdict(event)
    data["kind"] = event.kind.value
    data["occurred_at"] = event.occurred_at.isoformat() if event.occurred_at else None
    data["action_values"] = list(event.action_values)
    data["location"] = list(event.location) if event.location else None
    return data


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.platform_msg_id)
def test_an_events_json_is_what_asdict_gives_and_reads_back_as_the_event(event):
    data = event.to_json()
    assert data == _by_asdict(event)
    assert list(data) == [f.name for f in fields(Event)]  # every field, none added
    assert Event.from_json(data) == event


def test_the_json_shares_nothing_mutable_with_the_event():
    event = EVENTS[3]
    data = event.to_json()
    data["job_args"]["nested"]["k"].append("changed")
    assert event.job_args["nested"]["k"] == ["v"]
